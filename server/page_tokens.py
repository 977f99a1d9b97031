"""Opaque page tokens (AIP-158): a signed, serialized keyset cursor.

The signature (HMAC-SHA256 with a key kept in the database, so every replica
shares it) makes a token that was altered, forged, or issued to another
account or for another request fail as INVALID_ARGUMENT.
"""

import base64
import binascii
import hashlib
import hmac
import json

from .errors import InvalidArgument

_MAX_TOKEN_CHARS = 1024


def _sign(key: bytes, body: bytes) -> str:
    return base64.urlsafe_b64encode(hmac.new(key, body, hashlib.sha256).digest()[:16]).decode()


def _payload(body: bytes) -> str:
    return base64.urlsafe_b64encode(body).decode().rstrip("=")


def encode(key: bytes, scope: dict, cursor: list) -> str:
    """A token for the page after `cursor`, valid only for `scope`."""
    body = json.dumps({"s": scope, "c": cursor}, separators=(",", ":"), sort_keys=True).encode()
    return _payload(body) + "." + _sign(key, body)


def decode(key: bytes, token: str, scope: dict) -> list:
    """The cursor in `token`, checked against its signature and `scope`."""
    invalid = InvalidArgument(
        "page_token is not valid for this request: pass back next_page_token unchanged, "
        "with the same request parameters",
        field="page_token",
        reason="INVALID_PAGE_TOKEN",
    )
    if len(token) > _MAX_TOKEN_CHARS or token.count(".") != 1:
        raise invalid
    payload, signature = token.split(".")
    try:
        body = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    except (binascii.Error, ValueError):
        raise invalid from None
    # base64 decoding skips characters outside its alphabet, takes the other
    # alphabet's + and /, and ignores a last digit's unused bits, so many
    # strings decode to the same body: only the one encode() writes is taken.
    if payload != _payload(body):
        raise invalid
    if not hmac.compare_digest(signature.encode(), _sign(key, body).encode()):
        raise invalid
    # The signature proves the body is ours; its shape is checked anyway, so
    # that a token of another format under the same key is INVALID_ARGUMENT,
    # not an internal error.
    try:
        data = json.loads(body)
    except ValueError:
        raise invalid from None
    if not isinstance(data, dict) or data.get("s") != scope or not isinstance(data.get("c"), list):
        raise invalid
    return data["c"]

"""Dashboard sessions: a signed cookie that names the API key by its id.

The cookie never holds the key: it holds the key's id, the account's id, a
random session id and an expiry, signed with HMAC-SHA256 under a secret every
replica shares (derived from the database's page-token key), so a session
made by one replica is good on all of them and no server keeps sessions in
memory. Every request checks the key is still active, so revoking a key ends
its sessions at once. A visitor who has not signed in gets an anonymous
session too: its id is what the sign-in form's CSRF token is bound to.

CSRF tokens are the synchronizer-token pattern without server state: an HMAC
of the session id, in a hidden field of every form, checked on every POST.
"""

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

COOKIE = "promptgauge_session"
SIGNED_IN_SECONDS = 8 * 3600
ANONYMOUS_SECONDS = 3600
_PURPOSE = b"promptgauge dashboard session v1"


def derive_secret(page_token_key: bytes) -> bytes:
    """The session secret: its own key, not the page-token key itself."""
    return hmac.new(page_token_key, _PURPOSE, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    """One browser's session; `key_id` empty until it signs in."""

    sid: str
    expires: int
    key_id: str = ""
    account_id: int = 0

    @property
    def signed_in(self) -> bool:
        return bool(self.key_id)

    @classmethod
    def anonymous(cls, now: float | None = None) -> "Session":
        return cls(secrets.token_hex(16), int(now or time.time()) + ANONYMOUS_SECONDS)

    @classmethod
    def for_key(cls, key_id: str, account_id: int, now: float | None = None) -> "Session":
        """A fresh session (a new id: none chosen before sign-in survives it)."""
        return cls(secrets.token_hex(16), int(now or time.time()) + SIGNED_IN_SECONDS, key_id, account_id)


def encode(secret: bytes, session: Session) -> str:
    body = _b64(json.dumps(
        {"s": session.sid, "e": session.expires, "k": session.key_id, "a": session.account_id},
        separators=(",", ":"),
    ).encode())
    return body + "." + _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())


def decode(secret: bytes, value: str | None, now: float | None = None) -> Session | None:
    """The session in a cookie value, or None if it is missing, forged,
    malformed or expired."""
    if not value or value.count(".") != 1:
        return None
    body, signature = value.split(".")
    expected = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return None
    try:
        fields = json.loads(_unb64(body))
        session = Session(str(fields["s"]), int(fields["e"]), str(fields["k"]), int(fields["a"]))
    except (ValueError, KeyError, TypeError):
        return None
    return session if session.expires > (now or time.time()) else None


def csrf_token(secret: bytes, session: Session) -> str:
    return _b64(hmac.new(secret, b"csrf:" + session.sid.encode(), hashlib.sha256).digest())


def csrf_ok(secret: bytes, session: Session | None, token: str | None) -> bool:
    return (
        session is not None
        and bool(token)
        and hmac.compare_digest(token.encode(), csrf_token(secret, session).encode())
    )

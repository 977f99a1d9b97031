"""Page tokens without a server: a token round-trips, and anything altered, forged,
issued for another request or under another key is INVALID_ARGUMENT."""

import base64
import hashlib
import hmac
import json

import pytest

from promptgauge.server import page_tokens
from promptgauge.server.errors import InvalidArgument

KEY = bytes(range(32))
SCOPE = {"op": "ListPrompts", "account": 7}
CURSOR = ["support-classifier", 3]


def _token(cursor=CURSOR, scope=SCOPE, key=KEY) -> str:
    return page_tokens.encode(key, scope, cursor)


def _rejected(token: str, scope=SCOPE, key=KEY) -> None:
    with pytest.raises(InvalidArgument) as caught:
        page_tokens.decode(key, token, scope)
    assert caught.value.field == "page_token"
    assert caught.value.reason == "INVALID_PAGE_TOKEN"
    assert "pass back next_page_token unchanged" in caught.value.message


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _signed(body: bytes, key=KEY) -> str:
    """A token over any body, signed with the real key: what only the server can make."""
    signature = base64.urlsafe_b64encode(hmac.new(key, body, hashlib.sha256).digest()[:16]).decode()
    return _b64(body) + "." + signature


@pytest.mark.parametrize("cursor", [CURSOR, [12], ["a.b_c-9", 2_147_483_647], ["ümlaut", 1]])
def test_a_token_round_trips_its_cursor(cursor):
    assert page_tokens.decode(KEY, _token(cursor), SCOPE) == cursor


def test_a_token_is_one_opaque_url_safe_line():
    token = _token()
    assert token.count(".") == 1
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=")
    assert "support-classifier" not in token


def test_the_same_cursor_and_scope_give_the_same_token():
    assert _token() == _token()


def test_a_body_with_another_cursor_under_the_old_signature_is_rejected():
    payload, signature = _token().split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["c"] = ["support-classifier", 300]
    forged = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    _rejected(forged + "." + signature)


@pytest.mark.parametrize("position", [0, 10, -1])
def test_a_changed_character_of_the_body_is_rejected(position):
    payload, signature = _token().split(".")
    chars = list(payload)
    chars[position] = "A" if chars[position] != "A" else "B"
    _rejected("".join(chars) + "." + signature)


@pytest.mark.parametrize(
    "alter",
    [
        lambda p: p + "!!!!",             # characters outside the alphabet, which base64 skips
        lambda p: p[:4] + " \n" + p[4:] + "  ",
        lambda p: p + "====",             # padding the token never had
        lambda p: p.replace("-", "+").replace("_", "/"),  # the other base64 alphabet
    ],
    ids=["junk", "whitespace", "padding", "alphabet"],
)
def test_a_body_written_differently_but_decoding_the_same_is_rejected(alter):
    payload, signature = _token(["~~~???>>>", 1]).split(".")
    assert "-" in payload and "_" in payload
    altered = alter(payload)
    assert altered != payload
    _rejected(altered + "." + signature)


def test_a_non_canonical_last_base64_digit_is_rejected():
    token = _token([1])
    payload, signature = token.split(".")
    assert len(payload) % 4, "this cursor's body must not fill whole base64 quads"
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # The last digit of a partial quad carries unused low bits: set one of them.
    last = alphabet[alphabet.index(payload[-1]) | 1]
    assert last != payload[-1]
    _rejected(payload[:-1] + last + "." + signature)


@pytest.mark.parametrize(
    "alter",
    [
        lambda s: ("B" if s[0] == "A" else "A") + s[1:],
        lambda s: s[:-3],
        lambda s: s + "A",
        lambda s: "",
    ],
    ids=["changed", "truncated", "extended", "empty"],
)
def test_a_tampered_signature_is_rejected(alter):
    payload, signature = _token().split(".")
    _rejected(payload + "." + alter(signature))


@pytest.mark.parametrize(
    "scope",
    [
        {"op": "ListPrompts", "account": 8},
        {"op": "ListPromptVersions", "account": 7},
        {"op": "ListPrompts", "account": 7, "name": "x"},
        {},
    ],
    ids=["other-account", "other-call", "other-request", "empty"],
)
def test_a_token_for_another_scope_is_rejected(scope):
    _rejected(_token(), scope=scope)


def test_a_token_under_another_key_is_rejected():
    _rejected(_token(), key=bytes(reversed(KEY)))
    _rejected(_token(key=b"another key"))


def _token_of_length(length: int) -> tuple[str, list]:
    """A genuine token of exactly `length` characters, and its cursor."""
    for n in range(1000):
        cursor = ["x" * n, 1]
        token = _token(cursor)
        if len(token) == length:
            return token, cursor
    raise AssertionError(f"no token of {length} characters")


def test_the_longest_token_accepted_is_1024_characters():
    token, cursor = _token_of_length(1024)
    assert page_tokens.decode(KEY, token, SCOPE) == cursor
    # Even correctly signed, a longer one is refused before anything is decoded.
    _rejected(_token_of_length(1025)[0])
    _rejected("A" * 100_000 + "." + "B" * 24)


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "nodot",
        "a.b.c",
        "A.AAAAAAAAAAAAAAAAAAAAAA==",     # a body of 1 base64 digit cannot be decoded
        "é.AAAAAAAAAAAAAAAAAAAAAA==",     # not ASCII
        "\x00\x01.\x02",
        "e30.AAAAAAAAAAAAAAAAAAAAAA==",   # valid base64 of {}, an unsigned body
    ],
)
def test_malformed_tokens_are_rejected(token):
    _rejected(token)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"\xff\xfe", b"[1, 2]", b'"s"', b'{"s": {"op": "ListPrompts", "account": 7}}', b"{}"],
    ids=["text", "not-utf8", "list", "string", "no-cursor", "empty-object"],
)
def test_a_signed_body_that_is_not_a_token_is_rejected_not_a_crash(body):
    _rejected(_signed(body))

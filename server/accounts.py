"""Accounts and their API keys.

A key is 32 random bytes, shown once when made; only its SHA-256 is stored.
A hash that fast is enough here because the key is random, not a password:
there is nothing to guess from a leaked hash.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from peewee import JOIN, IntegrityError, fn

from . import storage
from .backends.base import Store
from .errors import AlreadyExists, NotFound, Unauthenticated
from .keycache import KeyCache, revoked_here
from .models import Account, ApiKey, db, utcnow
from .validation import check_name

KEY_PREFIX = "pgk_"


@dataclass(frozen=True)
class Caller:
    """Who is calling: the account whose data a call may touch, and the key."""

    account_id: int
    key_id: str


@dataclass(frozen=True)
class KeyInfo:
    id: str
    account: str
    create_time: datetime
    revoke_time: datetime | None


@dataclass(frozen=True)
class AccountInfo:
    name: str
    create_time: datetime
    active_keys: int
    revoked_keys: int


def _hash(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


def _new_key(account: Account) -> tuple[str, str]:
    key_id = "key_" + secrets.token_hex(8)
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    ApiKey.create(id=key_id, account=account, key_hash=_hash(plain))
    return key_id, plain


def create_account(name: str) -> tuple[int, str, str]:
    """Make an account and its first key; return (account id, key id, plain key)."""
    check_name(name, "account name")
    try:
        with db.atomic():
            account = Account.create(name=name)
            key_id, plain = _new_key(account)
    except IntegrityError:
        raise AlreadyExists(f"account {name!r} exists already") from None
    return account.id, key_id, plain


def _account(name: str) -> Account:
    account = Account.get_or_none(Account.name == name)
    if account is None:
        raise NotFound(f"no account named {name!r}")
    return account


def create_key(account_name: str) -> tuple[str, str]:
    """Make another key for an account; return (key id, plain key)."""
    with db.atomic():
        return _new_key(_account(account_name))


def list_keys(account_name: str) -> list[KeyInfo]:
    account = _account(account_name)
    return [
        KeyInfo(k.id, account.name, k.create_time, k.revoke_time)
        for k in ApiKey.select().where(ApiKey.account == account).order_by(ApiKey.create_time)
    ]


def list_accounts() -> list[AccountInfo]:
    """Every account, by name, with how many of its keys are active and revoked."""
    # COUNT of a column skips NULLs: COUNT(revoke_time) counts the revoked keys.
    query = (
        Account.select(Account.name, Account.create_time, fn.COUNT(ApiKey.id), fn.COUNT(ApiKey.revoke_time))
        .join(ApiKey, JOIN.LEFT_OUTER)
        .group_by(Account.id, Account.name, Account.create_time)
        .order_by(Account.name)
        .tuples()
    )
    return [
        AccountInfo(name, create_time, keys - revoked, revoked)
        for name, create_time, keys, revoked in query
    ]


def revoke_key(key_id: str) -> KeyInfo:
    """Revoke a key at once; revoking it again changes nothing."""
    with db.atomic():
        key = ApiKey.get_or_none(ApiKey.id == key_id)
        if key is None:
            raise NotFound(f"no API key with id {key_id!r}")
        if key.revoke_time is None:
            key.revoke_time = utcnow()
            key.save()
            # Replicas cache keys: tell them, once this commits.
            storage.store().keys_changed()
        info = KeyInfo(key.id, key.account.name, key.create_time, key.revoke_time)
    revoked_here()
    return info


def key_holder(key_id: str) -> tuple[Caller, str]:
    """The caller and account name behind a key id (a dashboard session holds
    the id, never the key); Unauthenticated once the key is revoked or gone."""
    row = (
        ApiKey.select(ApiKey.id, ApiKey.revoke_time, Account.id, Account.name)
        .join(Account)
        .where(ApiKey.id == key_id)
        .tuples()
        .first()
    )
    if row is None or row[1] is not None:
        raise Unauthenticated("invalid or revoked API key")
    return Caller(account_id=row[2], key_id=row[0]), row[3]


def authenticate(store: Store, authorization: str | None, keys: KeyCache | None = None) -> Caller:
    """The caller behind an `authorization: Bearer <key>` value; `keys`, the
    replica's key cache, if it has one."""
    if not authorization:
        raise Unauthenticated("missing authorization metadata: send 'authorization: Bearer <api key>'")
    scheme, _, plain = authorization.partition(" ")
    if scheme.lower() != "bearer" or not plain.strip():
        raise Unauthenticated("authorization metadata must be 'Bearer <api key>'")
    digest = _hash(plain.strip())
    # Every call runs this: SQL written once (backends/sql.py), not built by peewee.
    row = keys.lookup(store, digest) if keys is not None else store.api_key(digest)
    # The index lookup compares hashes, which tells a timing attacker nothing
    # about the key; the final comparison is constant-time all the same. A
    # cached key is dropped when any key is revoked (keycache.py), so a
    # revoked key fails on every replica within the feed's delay. One message for
    # unknown and revoked keys, never echoing the key: a caller learns nothing
    # about which keys exist.
    if row is None:
        raise Unauthenticated("invalid or revoked API key")
    if not hmac.compare_digest(row.key_hash, digest) or row.revoke_time is not None:
        raise Unauthenticated("invalid or revoked API key")
    return Caller(account_id=row.account_id, key_id=row.id)

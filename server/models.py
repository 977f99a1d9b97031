"""Peewee models: the tables, their keys and indexes, nothing about gRPC.

`db` is a proxy bound at start-up (storage.open_database) so the same models
serve SQLite and PostgreSQL. Uniqueness lives in indexes, never in a
read-then-write.
"""

import datetime

from peewee import (
    AutoField,
    BooleanField,
    CharField,
    DatabaseProxy,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
    UUIDField,
)

db = DatabaseProxy()


def utcnow() -> datetime.datetime:
    """Naive UTC, the form every timestamp column holds."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False


class Setting(BaseModel):
    """Server-wide values every replica must share: schema version, token key."""

    key = CharField(primary_key=True, max_length=64)
    value = TextField()


class Account(BaseModel):
    id = AutoField()
    name = CharField(max_length=128, unique=True)
    create_time = DateTimeField(default=utcnow)


class ApiKey(BaseModel):
    """An API key, stored as the SHA-256 of the plain key (shown once)."""

    id = CharField(primary_key=True, max_length=32)
    account = ForeignKeyField(Account, backref="api_keys", on_delete="CASCADE")
    key_hash = CharField(max_length=64, unique=True)
    create_time = DateTimeField(default=utcnow)
    revoke_time = DateTimeField(null=True)


class Prompt(BaseModel):
    """A prompt name of an account. `active_version` is the single source of
    which version is active, so "exactly one active" holds by construction."""

    id = AutoField()
    account = ForeignKeyField(Account, backref="prompts", on_delete="CASCADE")
    name = CharField(max_length=128)
    active_version = IntegerField(null=True)
    create_time = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("account", "name"), True),)


class PromptVersion(BaseModel):
    """One immutable version of a prompt template."""

    id = UUIDField(primary_key=True)
    prompt = ForeignKeyField(Prompt, backref="versions", on_delete="CASCADE")
    version = IntegerField()
    template_text = TextField()
    description = TextField(default="")
    parent_version = IntegerField(null=True)
    created_by = CharField(max_length=64)
    create_time = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("prompt", "version"), True),)


MODELS = [Setting, Account, ApiKey, Prompt, PromptVersion]

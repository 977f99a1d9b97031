"""The schema: created on start, its version recorded, old databases migrated."""

import pytest
from peewee import SqliteDatabase

from promptgauge.server import storage
from promptgauge.server.models import (
    ANALYTICS_MODELS,
    MODELS,
    Account,
    Prompt,
    PromptVersion,
    Setting,
    VersionCheckpoint,
)


@pytest.fixture
def own_database(tmp_path):
    """Bind the models to a database of this test's own, then back."""
    previous = storage.db.obj
    yield f"sqlite:///{tmp_path / 'schema.db'}"
    own = storage.db.obj
    storage.db.initialize(previous)
    # Only the idle connections: the in-process test server's health probe
    # may be in a statement on this database right now (closing a connection
    # under it crashed sqlite3, and the whole test run with it).
    own.close_idle()


def _schema_version() -> int:
    with storage.db.connection_context():
        return int(Setting.get_by_id("schema_version").value)


def test_new_database_gets_every_table_and_the_current_version(own_database):
    storage.open_database(own_database)
    assert storage.init_schema() == storage.SCHEMA_VERSION
    with storage.db.connection_context():
        assert all(m.table_exists() for m in MODELS + ANALYTICS_MODELS)
    assert _schema_version() == storage.SCHEMA_VERSION


def test_schema_version_1_database_is_migrated_keeping_its_data(own_database, tmp_path):
    # A database as the first release left it: registry tables only, version 1.
    old = SqliteDatabase(str(tmp_path / "schema.db"))
    with old.bind_ctx(MODELS):
        old.create_tables(MODELS)
        Setting.insert_many(
            [{"key": "schema_version", "value": "1"}, {"key": "page_token_key", "value": "ab" * 32}]
        ).execute()
        account = Account.create(name="old")
        prompt = Prompt.create(account=account, name="kept", active_version=1)
        PromptVersion.create(id="8c2c5f0e-4b8e-4a55-9d0c-0c1f3e6b2a11", prompt=prompt, version=1,
                             template_text="t", created_by="key_x")
    old.close()

    storage.open_database(own_database)
    assert storage.init_schema() == storage.SCHEMA_VERSION == 2
    assert _schema_version() == 2
    with storage.db.connection_context():
        assert PromptVersion.get().template_text == "t"
        # Every existing version got the checkpoint that ingestion locks.
        assert VersionCheckpoint.select().count() == 1
        assert storage.setting("page_token_key") == "ab" * 32
    # Starting again finds nothing to do.
    assert storage.init_schema() == 2


def test_database_from_a_newer_server_is_refused(own_database):
    storage.open_database(own_database)
    storage.init_schema()
    with storage.db.connection_context():
        Setting.update(value="99").where(Setting.key == "schema_version").execute()
    with pytest.raises(RuntimeError, match="newer than this server"):
        storage.init_schema()

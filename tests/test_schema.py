"""The schema: created on start, its version recorded, old databases migrated,
on both backends. Every step runs the real command in a process of its own:
rebinding this process's database would pull it from under the in-process
servers of the other tests."""

import subprocess
import sys

import pytest
from conftest import database_url, read_sql, write_sql
from peewee import PostgresqlDatabase, SqliteDatabase
from playhouse.db_url import parse

from promptgauge.server import storage
from promptgauge.server.models import ANALYTICS_MODELS, MODELS, Account, Prompt, PromptVersion, Setting


def _accounts_list(url: str) -> subprocess.CompletedProcess:
    """A command that opens the database, creating or migrating its schema."""
    return subprocess.run(
        [sys.executable, "-m", "promptgauge.server.cli", "keys", "list", "nobody", "--database-url", url],
        capture_output=True, text=True, timeout=120,
    )


def _tables(url: str) -> set[str]:
    if url.startswith("sqlite"):
        rows = read_sql(url, "SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        rows = read_sql(url, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    return {name for (name,) in rows}


def _schema_version(url: str) -> int:
    return int(read_sql(url, "SELECT value FROM setting WHERE key = 'schema_version'")[0][0])


@pytest.fixture
def url(backend, tmp_path):
    with database_url(backend, tmp_path) as url:
        yield url


def test_new_database_gets_every_table_and_the_current_version(url):
    _accounts_list(url)
    assert {m._meta.table_name for m in MODELS + ANALYTICS_MODELS} <= _tables(url)
    assert _schema_version(url) == storage.SCHEMA_VERSION


def _first_release(url: str) -> None:
    """A database as the first release left it: registry tables only, version 1."""
    params = parse(url)
    old = SqliteDatabase(params["database"]) if url.startswith("sqlite") else PostgresqlDatabase(**params)
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


def test_schema_version_1_database_is_migrated_keeping_its_data(url):
    _first_release(url)
    assert "version_checkpoint" not in _tables(url)
    _accounts_list(url)
    assert _schema_version(url) == storage.SCHEMA_VERSION == 4
    assert read_sql(url, "SELECT template_text FROM prompt_version") == [("t",)]
    # Every existing version got the checkpoint that ingestion locks.
    assert read_sql(url, "SELECT COUNT(*) FROM version_checkpoint")[0][0] == 1
    assert read_sql(url, "SELECT value FROM setting WHERE key = 'page_token_key'") == [("ab" * 32,)]
    # Starting again finds nothing to do.
    _accounts_list(url)
    assert read_sql(url, "SELECT COUNT(*) FROM version_checkpoint")[0][0] == 1


def test_database_from_a_newer_server_is_refused(url):
    _accounts_list(url)
    write_sql(url, "UPDATE setting SET value = '99' WHERE key = 'schema_version'")
    done = _accounts_list(url)
    assert done.returncode != 0
    assert "newer than this server" in done.stderr and "Traceback" not in done.stderr

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


# The columns, indexes and table that migration 4 adds, to take a database
# back to schema version 2 as that release left it (data included).
_V4_COLUMNS = {
    "trace": ("end_time", "input_tokens", "output_tokens"),
    "observation": ("input_tokens", "output_tokens", "event_time", "link_time"),
    "version_checkpoint": ("outcome_n", "cost_squares", "duration_squares", "input_tokens_n",
                           "input_tokens_sum", "output_tokens_n", "output_tokens_sum", "cost_sketch"),
}


def _back_to_version_2(url: str) -> None:
    write_sql(url, 'DROP INDEX IF EXISTS "observation_version_id_event_time"')
    write_sql(url, 'DROP INDEX IF EXISTS "observation_version_id_link_time"')
    write_sql(url, 'DROP TABLE "version_bucket"')
    for table, columns in _V4_COLUMNS.items():
        for column in columns:
            write_sql(url, f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
    write_sql(url, "UPDATE setting SET value = '2' WHERE key = 'schema_version'")


def test_schema_version_2_database_with_data_is_migrated_to_the_same_comparison(url):
    from conftest import create_account, in_batches, new_trace, serve_process, usage_record

    from promptgauge.client import PromptGaugeClient
    from promptgauge.v1 import analytics_pb2

    traces = [new_trace() for _ in range(700)]  # past FOLD_AT: checkpoints hold most of it
    outcomes = [
        analytics_pb2.TraceOutcome(trace_id=t, success=i % 3 != 0, total_cost_usd=(i % 8) / 8,
                                   duration_ms=float(1 + (i * 37) % 500))
        for i, t in enumerate(traces)
    ]
    with serve_process(url) as (_, target):
        key = create_account(url)
        with PromptGaugeClient(target, key) as pg:
            pg.create_prompt_version("migrated", "one")
            pg.create_prompt_version("migrated", "two")
            usage = [usage_record("migrated", 1 + i % 2, t) for i, t in enumerate(traces)]
            pg.stream_usage(in_batches(usage, 100))
            pg.stream_trace_outcomes(in_batches(outcomes, 100))
            before = pg.compare_prompt_versions("migrated")
    _back_to_version_2(url)
    assert "version_bucket" not in _tables(url)
    with serve_process(url) as (_, target), PromptGaugeClient(target, key) as pg:
        after = pg.compare_prompt_versions("migrated")
        fields = ("version", "total_traces", "success_rate", "avg_cost_usd", "avg_latency_ms",
                  "p95_latency_ms")
        assert [[getattr(m, f) for f in fields] for m in after.versions] == [
            [getattr(m, f) for f in fields] for m in before.versions
        ]
        # What only the rows could give: counts of outcomes, sums of squares
        # (the t-test), the cost sketch, and the hours of the buckets.
        assert [m.outcome_count for m in after.versions] == [350, 350]
        (other,) = [m for m in after.versions if not m.is_baseline]
        assert other.vs_baseline.HasField("avg_cost_p_value")
        assert after.versions[0].HasField("p50_cost_usd")
        hours = pg.get_version_time_series("migrated", analytics_pb2.GRANULARITY_HOUR)
        assert sum(b.total_traces for b in hours.series[0].buckets) == 350
    assert _schema_version(url) == storage.SCHEMA_VERSION

"""The schema: created on start, its version recorded, old databases migrated,
on both backends. Every step runs the real command in a process of its own:
rebinding this process's database would pull it from under the in-process
servers of the other tests."""

import subprocess
import sys

import pytest
from conftest import database_url, read_sql, write_sql
from peewee import (
    BigAutoField,
    BigIntegerField,
    BlobField,
    BooleanField,
    CharField,
    DateTimeField,
    DoubleField,
    ForeignKeyField,
    Model,
    PostgresqlDatabase,
    SmallIntegerField,
    SqliteDatabase,
)
from playhouse.db_url import parse

from promptgauge.server import storage
from promptgauge.server.models import (
    AGENT_MODELS,
    ANALYTICS_MODELS,
    MODELS,
    RELEASE_MODELS,
    Account,
    Prompt,
    PromptVersion,
    Setting,
    Trace,
    utcnow,
)


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
    every = MODELS + ANALYTICS_MODELS + AGENT_MODELS + RELEASE_MODELS
    assert {m._meta.table_name for m in every} <= _tables(url)
    assert _schema_version(url) == storage.SCHEMA_VERSION


def _old_database(url: str):
    params = parse(url)
    return SqliteDatabase(params["database"]) if url.startswith("sqlite") else PostgresqlDatabase(**params)


# Columns that schema version 3 added to prompt_version.
_VERSION_3_COLUMNS = ("model_config", "input_schema", "output_schema", "change", "source")


def _first_release(url: str) -> None:
    """A database as the first release left it: registry tables only, version 1."""
    old = _old_database(url)
    with old.bind_ctx(MODELS):
        old.create_tables(MODELS)
        for column in _VERSION_3_COLUMNS:
            old.execute_sql(f'ALTER TABLE prompt_version DROP COLUMN "{column}"')
        Setting.insert_many(
            [{"key": "schema_version", "value": "1"}, {"key": "page_token_key", "value": "ab" * 32}]
        ).execute()
        account = Account.create(name="old")
        prompt = Prompt.create(account=account, name="kept", active_version=1)
        # Only the columns of the time: the model's defaults would name newer ones.
        p = old.param
        old.execute_sql(
            "INSERT INTO prompt_version (id, prompt_id, version, template_text, description, created_by, "
            f"create_time) VALUES ({p}, {p}, 1, 't', '', 'key_x', {p})",
            ["8c2c5f0e-4b8e-4a55-9d0c-0c1f3e6b2a11", prompt.id, utcnow()],
        )
    old.close()


def test_schema_version_1_database_is_migrated_keeping_its_data(url):
    _first_release(url)
    assert "version_checkpoint" not in _tables(url)
    _accounts_list(url)
    assert _schema_version(url) == storage.SCHEMA_VERSION
    assert read_sql(url, "SELECT template_text FROM prompt_version") == [("t",)]
    # The first version of a prompt was its creation; nothing else is known.
    assert read_sql(url, "SELECT change, source, model_config, input_schema FROM prompt_version") == [
        (1, "", None, None)
    ]
    assert {m._meta.table_name for m in AGENT_MODELS} <= _tables(url)
    # Every existing version got the checkpoint that ingestion locks.
    assert read_sql(url, "SELECT COUNT(*) FROM version_checkpoint")[0][0] == 1
    assert read_sql(url, "SELECT value FROM setting WHERE key = 'page_token_key'") == [("ab" * 32,)]
    # Starting again finds nothing to do.
    _accounts_list(url)
    assert read_sql(url, "SELECT COUNT(*) FROM version_checkpoint")[0][0] == 1


class _Version2(Model):
    """The analytics tables as schema version 2 made them: `version_id` a
    foreign key to prompt_version."""

    class Meta:
        legacy_table_names = False


class _Link2(_Version2):
    id = BigAutoField()
    version = ForeignKeyField(PromptVersion, on_delete="CASCADE")
    trace = ForeignKeyField(Trace, on_delete="CASCADE")
    span_id = CharField(max_length=128, default="")
    create_time = DateTimeField(default=utcnow)

    class Meta:
        table_name = "usage_link"
        indexes = ((("version", "trace", "span_id"), True), (("trace",), False))


class _Observation2(_Version2):
    id = BigAutoField()
    version = ForeignKeyField(PromptVersion, on_delete="CASCADE")
    trace = ForeignKeyField(Trace, on_delete="CASCADE")
    kind = SmallIntegerField()
    success = BooleanField(null=True)
    total_cost_usd = DoubleField(null=True)
    duration_ms = DoubleField(null=True)

    class Meta:
        table_name = "observation"
        indexes = ((("version", "trace", "kind"), True), (("version", "id"), False))


class _Checkpoint2(_Version2):
    version = ForeignKeyField(PromptVersion, primary_key=True, on_delete="CASCADE")
    last_observation_id = BigIntegerField(default=0)
    total_traces = BigIntegerField(default=0)
    success_n = BigIntegerField(default=0)
    success_true = BigIntegerField(default=0)
    cost_n = BigIntegerField(default=0)
    cost_sum = DoubleField(default=0.0)
    duration_n = BigIntegerField(default=0)
    duration_sum = DoubleField(default=0.0)
    sketch = BlobField(null=True)

    class Meta:
        table_name = "version_checkpoint"


_VERSION_ID = "8c2c5f0e-4b8e-4a55-9d0c-0c1f3e6b2a11"


def _second_release(url: str) -> None:
    """A database as schema version 2 left it, holding a link, its
    observations and a checkpoint."""
    _first_release(url)
    old = _old_database(url)
    with old.bind_ctx([Account, Trace, _Link2, _Observation2, _Checkpoint2]):
        old.create_tables([Trace, _Link2, _Observation2, _Checkpoint2])
        trace = Trace.create(account=Account.get().id, trace_id="ab" * 16, has_outcome=True, success=True)
        _Link2.create(version=_VERSION_ID, trace=trace)
        _Observation2.create(id=7, version=_VERSION_ID, trace=trace, kind=1)
        _Observation2.create(id=9, version=_VERSION_ID, trace=trace, kind=2, success=True)
        _Checkpoint2.create(version=_VERSION_ID, last_observation_id=7, total_traces=1)
    old.close()
    write_sql(url, "UPDATE setting SET value = '2' WHERE key = 'schema_version'")


def _foreign_keys_to_prompt_version(url: str, table: str) -> list:
    if url.startswith("sqlite"):
        keys = read_sql(url, f"PRAGMA foreign_key_list({table})")
        return [row for row in keys if row[2] == "prompt_version"]
    return read_sql(url, "SELECT conname FROM pg_constraint WHERE contype = 'f' "
                         f"AND conrelid = '{table}'::regclass AND confrelid = 'prompt_version'::regclass")


def test_schema_version_2_database_is_migrated_keeping_its_analytics(url):
    _second_release(url)
    assert _foreign_keys_to_prompt_version(url, "observation")
    _accounts_list(url)
    assert _schema_version(url) == storage.SCHEMA_VERSION
    for table in ("usage_link", "observation", "version_checkpoint"):
        # A measured version may be an agent version now: no key to prompt_version.
        assert _foreign_keys_to_prompt_version(url, table) == [], table
    assert read_sql(url, "SELECT id, kind FROM observation ORDER BY id") == [(7, 1), (9, 2)]
    # Migration 5 folds every checkpoint again from its rows: both observations.
    assert read_sql(url, "SELECT last_observation_id, total_traces FROM version_checkpoint") == [(9, 1)]
    assert read_sql(url, "SELECT COUNT(*) FROM usage_link")[0][0] == 1
    # The unique keys that make ingestion idempotent are still there.
    with pytest.raises(Exception, match="(?i)unique"):
        write_sql(url, "INSERT INTO observation (version_id, trace_id, kind) "
                       "SELECT version_id, trace_id, kind FROM observation WHERE id = 7")
    _accounts_list(url)  # starting again finds nothing to do
    assert read_sql(url, "SELECT COUNT(*) FROM observation")[0][0] == 2


def test_database_from_a_newer_server_is_refused(url):
    _accounts_list(url)
    write_sql(url, "UPDATE setting SET value = '99' WHERE key = 'schema_version'")
    done = _accounts_list(url)
    assert done.returncode != 0
    assert "newer than this server" in done.stderr and "Traceback" not in done.stderr


def test_schema_version_2_database_gets_the_release_tables_keeping_its_data(url):
    """Migration 4: labels, splits and the history arrive empty beside the old data."""
    _first_release(url)
    _accounts_list(url)
    write_sql(url, "UPDATE setting SET value = '2' WHERE key = 'schema_version'")
    for model in reversed(RELEASE_MODELS):
        write_sql(url, f"DROP TABLE {model._meta.table_name}")
    _accounts_list(url)
    assert _schema_version(url) == storage.SCHEMA_VERSION
    assert {m._meta.table_name for m in RELEASE_MODELS} <= _tables(url)
    assert read_sql(url, "SELECT COUNT(*) FROM prompt_event")[0][0] == 0
    assert read_sql(url, "SELECT template_text FROM prompt_version") == [("t",)]


# The columns, indexes and table that migration 5 adds, to take a database
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


def test_schema_version_5_buckets_get_their_digests(url):
    """Migration 6 adds each bucket's digests: the bytes a fold would have
    written, so a long window reads what it would have read."""
    import datetime

    from conftest import create_account, in_batches, new_trace, serve_process, usage_record

    from promptgauge.client import PromptGaugeClient
    from promptgauge.v1 import analytics_pb2

    start = datetime.datetime(2026, 11, 3, 8, 0)
    outcomes = []
    for i in range(1500):  # past FOLD_AT, ~250 an hour over 6 hours
        outcome = analytics_pb2.TraceOutcome(trace_id=new_trace(), success=i % 3 != 0,
                                             total_cost_usd=(1 + i % 17) / 100,
                                             duration_ms=float(1 + (i * 37) % 997))
        outcome.end_time.FromDatetime(start + datetime.timedelta(seconds=14 * i))
        outcomes.append(outcome)
    window = {"start_time": start, "end_time": start + datetime.timedelta(hours=6)}
    with serve_process(url) as (_, target):
        key = create_account(url)
        with PromptGaugeClient(target, key) as pg:
            pg.create_prompt_version("digested", "one")
            pg.stream_trace_outcomes(in_batches(outcomes, 100))
            pg.stream_usage(in_batches([usage_record("digested", 1, o.trace_id) for o in outcomes], 100))
            before = pg.compare_prompt_versions("digested", **window)
    digests = ('SELECT start_time, digest, cost_digest, day_digest, day_cost_digest FROM version_bucket '
               'ORDER BY start_time')
    written = [tuple(bytes(x) if isinstance(x, (bytes, memoryview)) else x for x in row)
               for row in read_sql(url, digests)]
    assert sum(row[1] is not None for row in written) >= 6
    assert sum(row[3] is not None for row in written) == 1  # one day
    for column in ("digest", "cost_digest", "day_digest", "day_cost_digest"):
        write_sql(url, f'ALTER TABLE "version_bucket" DROP COLUMN "{column}"')
    write_sql(url, "UPDATE setting SET value = '5' WHERE key = 'schema_version'")
    with serve_process(url) as (_, target), PromptGaugeClient(target, key) as pg:
        after = pg.compare_prompt_versions("digested", **window)
    assert [tuple(bytes(x) if isinstance(x, (bytes, memoryview)) else x for x in row)
            for row in read_sql(url, digests)] == written
    assert after.versions == before.versions
    assert _schema_version(url) == storage.SCHEMA_VERSION

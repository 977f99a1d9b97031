"""The database handle: open it from a URL, pick its backend's Store, create
or migrate the schema, and scope connections.

SQLite is the zero-setup default (one file, WAL mode); PostgreSQL is for
production and for several replicas. Both are pooled, so a worker thread
reuses a connection instead of opening one per RPC. What differs between
them lives in backends/; nothing above this module asks which one it has.
"""

import secrets
from collections.abc import Callable
from contextlib import contextmanager
from urllib.parse import urlparse

from peewee import Database, InterfaceError, OperationalError, fn
from playhouse.migrate import SchemaMigrator, migrate
from playhouse.pool import MaxConnectionsExceeded

from .backends import postgres, sqlite
from .backends.base import Store
from .models import (
    AGENT_MODELS,
    ANALYTICS_MODELS,
    MODELS,
    RELEASE_MODELS,
    Observation,
    PromptVersion,
    Setting,
    Trace,
    UsageLink,
    VersionBucket,
    VersionCheckpoint,
    db,
)
from .tally import OBSERVATION_LINKED, OBSERVATION_OUTCOME

_BACKENDS = (
    (sqlite.SCHEMES, sqlite.open_database, sqlite.SqliteStore),
    (postgres.SCHEMES, postgres.open_database, postgres.PostgresStore),
)
_store: Store | None = None


def _add_analytics() -> None:
    db.create_tables(ANALYTICS_MODELS)
    # Every version has a checkpoint from birth: ingestion locks it.
    ids = [v.id for v in PromptVersion.select(PromptVersion.id)]
    for start in range(0, len(ids), 500):
        VersionCheckpoint.insert_many([{"version": i} for i in ids[start : start + 500]]).execute()


# Plain DDL that SQLite and PostgreSQL both take: a NOT NULL column with a
# default is added in place (peewee's migrator would rebuild the table on
# SQLite). A database made by _add_analytics after this release has them.
_VERSION_COLUMNS_3 = (
    ("model_config", "TEXT NULL"),
    ("input_schema", "TEXT NULL"),
    ("output_schema", "TEXT NULL"),
    ("change", "SMALLINT NOT NULL DEFAULT 0"),
    ("source", "VARCHAR(64) NOT NULL DEFAULT ''"),
)
_CHANGE_CREATE, _CHANGE_WRITE = 1, 2  # registry.CHANGE_CREATE, CHANGE_WRITE


def _add_versions_that_reproduce_and_agents() -> None:
    table = PromptVersion._meta.table_name
    have = {column.name for column in db.get_columns(table)}
    for name, ddl in _VERSION_COLUMNS_3:
        if name not in have:
            db.execute_sql(f'ALTER TABLE "{table}" ADD COLUMN "{name}" {ddl}')
    # What made the versions that exist: the first of each prompt created it;
    # the rest cannot be told apart any more, so each counts as a new text.
    first = PromptVersion.alias()
    lowest = (first.select(first.version).where(first.prompt == PromptVersion.prompt)
              .order_by(first.version).limit(1))
    PromptVersion.update(change=_CHANGE_WRITE).where(PromptVersion.change == 0).execute()
    PromptVersion.update(change=_CHANGE_CREATE).where(PromptVersion.version == lowest).execute()
    # A measured version may now be an agent version too.
    for model in (UsageLink, Observation, VersionCheckpoint):
        store().drop_foreign_keys(model, PromptVersion)
    db.create_tables(AGENT_MODELS)


def _add_releases() -> None:
    db.create_tables(RELEASE_MODELS)


def _add_event_time() -> None:
    """Event times, tokens, sums of squares, cost sketches and hourly buckets.

    Old rows get the times they would have had: a trace ends when its
    outcome was received, a link observation counts at its first link, and
    an outcome moves its trace from there to its end. Then every checkpoint
    (and its buckets) is folded again from the observations, since the sums
    of squares and the cost sketch can only come from the rows."""
    migrator = SchemaMigrator.from_database(db.obj)
    added = []
    # Migration 2 made its tables from today's models: add only what is missing.
    for model, names in (
        (Trace, ("end_time", "input_tokens", "output_tokens")),
        (Observation, ("input_tokens", "output_tokens", "event_time", "link_time")),
        (VersionCheckpoint, ("outcome_n", "cost_squares", "duration_squares", "input_tokens_n",
                             "input_tokens_sum", "output_tokens_n", "output_tokens_sum", "cost_sketch")),
    ):
        have = {column.name for column in db.get_columns(model._meta.table_name)}
        added += [migrator.add_column(model._meta.table_name, name, model._meta.fields[name])
                  for name in names if model._meta.fields[name].column_name not in have]
    migrate(*added)
    db.create_tables([VersionBucket])
    for fields in ((Observation.version, Observation.event_time),
                   (Observation.version, Observation.link_time)):
        name = "observation_" + "_".join(f.column_name for f in fields)
        db.execute_sql(f'CREATE INDEX IF NOT EXISTS "{name}" ON "observation" '
                       f'({", ".join(chr(34) + f.column_name + chr(34) for f in fields)})')
    Trace.update(end_time=Trace.outcome_time).where(Trace.has_outcome & Trace.end_time.is_null()).execute()
    link = UsageLink.alias()
    first_link = link.select(fn.MIN(link.create_time)).where(
        (link.version == Observation.version) & (link.trace == Observation.trace)
    )
    ended = Trace.select(Trace.outcome_time).where(Trace.id == Observation.trace)
    Observation.update(event_time=first_link).where(Observation.kind == OBSERVATION_LINKED).execute()
    Observation.update(event_time=ended, link_time=first_link).where(
        Observation.kind == OBSERVATION_OUTCOME
    ).execute()
    from .analytics import Analytics  # the fold is the domain's; it needs the open store

    analytics = Analytics(store())
    for (version_id,) in VersionCheckpoint.select(VersionCheckpoint.version).tuples():
        analytics.rebuild(version_id)


def _add_bucket_digests() -> None:
    """Each bucket's digests (sketch.digest) and each day's (on its first
    hour's bucket), which a long window reads instead of every value: every
    checkpoint and its buckets folded again, so they are the bytes a fold
    writes."""
    migrator = SchemaMigrator.from_database(db.obj)
    have = {column.name for column in db.get_columns(VersionBucket._meta.table_name)}
    # Migration 5 made the table from today's model: add only what is missing.
    migrate(*[migrator.add_column(VersionBucket._meta.table_name, name, VersionBucket._meta.fields[name])
              for name in ("digest", "cost_digest", "day_digest", "day_cost_digest") if name not in have])
    from .analytics import Analytics  # the fold is the domain's; it needs the open store

    analytics = Analytics(store())
    for (version_id,) in VersionCheckpoint.select(VersionCheckpoint.version).tuples():
        analytics.rebuild(version_id)


# Migrations from version N-1 to N, run in order inside the start-up
# transaction. An existing database at an older version is brought forward.
MIGRATIONS: dict[int, Callable[[], None]] = {
    2: _add_analytics,
    3: _add_versions_that_reproduce_and_agents,
    4: _add_releases,
    5: _add_event_time,
    6: _add_bucket_digests,
}
SCHEMA_VERSION = max(MIGRATIONS, default=1)


def open_database(url: str, max_connections: int = 32, timeout: float = 10.0) -> Database:
    """Connect the models to the database at `url` and return the handle.

    `timeout` bounds every wait on the database: a locked SQLite file, a
    PostgreSQL connection being made, a free connection in the pool. Past it
    a call fails (UNAVAILABLE) instead of hanging."""
    global _store
    scheme = urlparse(url).scheme
    for schemes, open_backend, store_class in _BACKENDS:
        if scheme in schemes:
            database = open_backend(url, max_connections, timeout)
            db.initialize(database)
            _store = store_class()
            return database
    raise ValueError(f"unsupported database URL scheme {scheme!r}: use sqlite:// or postgresql://")


def store() -> Store:
    """The Store of the database opened last."""
    if _store is None:
        raise RuntimeError("no database is open: call open_database first")
    return _store


def init_schema() -> int:
    """Create the tables on a new database or migrate an old one; return the
    schema version. Safe to run from several replicas at once."""
    with db.connection_context(), db.atomic():
        store().lock_schema()
        row = None
        if db.table_exists(Setting._meta.table_name):
            row = Setting.get_or_none(Setting.key == "schema_version")
        if row is None:
            db.create_tables(MODELS + ANALYTICS_MODELS + AGENT_MODELS + RELEASE_MODELS)
            Setting.insert_many(
                [
                    {"key": "schema_version", "value": str(SCHEMA_VERSION)},
                    # Signs page tokens; shared through the database so that
                    # a token from one replica is valid on every other.
                    {"key": "page_token_key", "value": secrets.token_hex(32)},
                ]
            ).execute()
            return SCHEMA_VERSION
        current = int(row.value)
        if current > SCHEMA_VERSION:
            raise RuntimeError(
                f"database schema version {current} is newer than this server's "
                f"{SCHEMA_VERSION}: upgrade promptgauge"
            )
        for version in sorted(v for v in MIGRATIONS if v > current):
            MIGRATIONS[version]()
            Setting.update(value=str(version)).where(Setting.key == "schema_version").execute()
        return SCHEMA_VERSION


def setting(key: str) -> str:
    return Setting.get_by_id(key).value


# What a connection meets when the database cannot serve: try again later.
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, MaxConnectionsExceeded)


@contextmanager
def connection():
    """A pooled connection for the span of one unit of work (an RPC, a
    stream's batch, a probe). One that met a database error is closed rather
    than pooled: it may be dead (a restarted PostgreSQL) or stuck as it was
    opened (a SQLite file that was read-only)."""
    opened = db.connect(reuse_if_open=True)
    try:
        yield
    except UNAVAILABLE_ERRORS:
        if opened:
            try:
                db.manual_close()
            except Exception:  # noqa: BLE001 - best effort; the original error matters
                pass
        raise
    finally:
        if opened and not db.is_closed():
            db.close()

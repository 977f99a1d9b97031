"""The database handle: open it from a URL, create or migrate the schema.

SQLite is the zero-setup default (one file, WAL mode); PostgreSQL is for
production and for several replicas. Both are pooled, so a worker thread
reuses a connection instead of opening one per RPC.
"""

import secrets
import select
from collections.abc import Callable
from contextlib import contextmanager
from urllib.parse import urlparse

from peewee import Database, InterfaceError, OperationalError, PostgresqlDatabase
from playhouse.db_url import connect, parse
from playhouse.pool import MaxConnectionsExceeded, PooledPostgresqlDatabase

from .models import ANALYTICS_MODELS, MODELS, PromptVersion, Setting, VersionCheckpoint, db


def _add_analytics() -> None:
    db.create_tables(ANALYTICS_MODELS)
    # Every version has a checkpoint from birth: ingestion locks it.
    ids = [v.id for v in PromptVersion.select(PromptVersion.id)]
    for start in range(0, len(ids), 500):
        VersionCheckpoint.insert_many([{"version": i} for i in ids[start : start + 500]]).execute()


# Migrations from version N-1 to N, run in order inside the start-up
# transaction. An existing database at an older version is brought forward.
MIGRATIONS: dict[int, Callable[[], None]] = {2: _add_analytics}
SCHEMA_VERSION = max(MIGRATIONS, default=1)

# WAL lets readers run beside the one writer; synchronous=FULL makes every
# acknowledged commit survive a power cut, not only a crash of the process;
# IMMEDIATE transactions take the write lock up front, so two writers queue
# on busy_timeout instead of failing when a read lock cannot be upgraded.
# The WAL is copied back into the database every 10,000 pages (~40 MB)
# rather than SQLite's 1,000: a unary call's commit appends a few pages, so
# the default ran a checkpoint (writes and an fsync of the database file)
# inside every ~150th call; each commit still fsyncs the WAL.
SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "full",
    "foreign_keys": 1,
    "wal_autocheckpoint": 10000,
}


class _PooledPostgres(PooledPostgresqlDatabase):
    """Peewee's PostgreSQL pool, checking a pooled connection without a round trip.

    Peewee runs `SELECT 1` on every connection it hands out: one more round
    trip for every RPC (a tenth of a unary call's time). An idle connection
    has nothing to read, so a readable socket means the server closed it or
    sent its termination notice (a restart, a terminated backend): that
    connection is dropped. One that died with no word (a cut network) fails
    its first statement instead; the call is UNAVAILABLE and connection()
    drops it."""

    def _is_closed(self, conn) -> bool:
        if conn.closed or conn.get_transaction_status() != self._adapter.txn_idle:
            return super()._is_closed(conn)  # closed, or rolled back if it can be
        readable, _, _ = select.select([conn], [], [], 0)
        return bool(readable)


def open_database(url: str, max_connections: int = 32, timeout: float = 10.0) -> Database:
    """Connect the models to the database at `url` and return the handle.

    `timeout` bounds every wait on the database: a locked SQLite file, a
    PostgreSQL connection being made, a free connection in the pool. Past it
    a call fails (UNAVAILABLE) instead of hanging."""
    scheme = urlparse(url).scheme
    params: dict = {"max_connections": max_connections, "timeout": timeout}
    if scheme in ("sqlite", "sqlite+pool"):
        url = url.replace("sqlite://", "sqlite+pool://", 1) if scheme == "sqlite" else url
        params |= {
            "pragmas": {**SQLITE_PRAGMAS, "busy_timeout": int(timeout * 1000)},
            "lock_type": "IMMEDIATE",
            "check_same_thread": False,
            "stale_timeout": 3600,
        }
        database = connect(url, **params)
    elif scheme in ("postgres", "postgresql", "postgres+pool", "postgresql+pool"):
        params |= {"stale_timeout": 300, "connect_timeout": max(1, round(timeout))}
        connect_args = parse(url)
        # The statements we prepare (statements.py) plan well for any batch
        # size, so always their generic plan: left to choose, PostgreSQL
        # judges by the first five calls' sizes and may re-plan every call
        # (~0.5 ms, as long as running a unary call's statement).
        connect_args["options"] = " ".join(
            filter(None, [connect_args.get("options"), "-c plan_cache_mode=force_generic_plan"])
        )
        database = _PooledPostgres(**connect_args, **params)  # connect() would pick peewee's pool
    else:
        raise ValueError(f"unsupported database URL scheme {scheme!r}: use sqlite:// or postgresql://")
    db.initialize(database)
    return database


def is_postgres(database: Database | None = None) -> bool:
    return isinstance(database or db.obj, PostgresqlDatabase)


def init_schema() -> int:
    """Create the tables on a new database or migrate an old one; return the
    schema version. Safe to run from several replicas at once."""
    with db.connection_context(), db.atomic():
        if is_postgres():
            # Replicas starting together must not race on CREATE TABLE.
            db.execute_sql("SELECT pg_advisory_xact_lock(7310101)")
        row = None
        if db.table_exists(Setting._meta.table_name):
            row = Setting.get_or_none(Setting.key == "schema_version")
        if row is None:
            db.create_tables(MODELS + ANALYTICS_MODELS)
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
        for version in range(current + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[version]()
            Setting.update(value=str(version)).where(Setting.key == "schema_version").execute()
        return SCHEMA_VERSION


def setting(key: str) -> str:
    return Setting.get_by_id(key).value


# What a connection meets when the database cannot serve: try again later.
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, MaxConnectionsExceeded)


@contextmanager
def connection():
    """A pooled connection for the span of one RPC or probe. One that met a
    database error is closed rather than pooled: it may be dead (a restarted
    PostgreSQL) or stuck as it was opened (a SQLite file that was read-only)."""
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

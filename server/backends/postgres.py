"""PostgreSQL: many writers, row locks, one round trip where it counts.

Lock order, the same for every writer, so that none deadlocks another:
1. trace rows, in trace_id order (one sorted upsert locks old and new alike);
2. then checkpoints, FOR SHARE, in version order (a fold takes one FOR UPDATE).
A version's observation ids are drawn only while its checkpoint is held FOR
SHARE, so a fold, which takes it FOR UPDATE, never passes over an id that is
not committed yet.

On PostgreSQL every statement is a round trip (~0.1 ms idle, ~0.25 ms beside
a busy gRPC server on the same cores), so a usage batch is three prepared
statements sent as one query string: PostgreSQL runs the statements of one
simple query in order, as one transaction (protocol docs, "Multiple
Statements in a Simple Query"), so the lock order above holds by
construction, in one round trip.
"""

import hashlib
import re
import select
import uuid
import weakref
from collections.abc import Sequence
from datetime import datetime

from peewee import Database
from playhouse.db_url import parse
from playhouse.pool import PooledPostgresqlDatabase

from ..models import Agent, Observation, Prompt, PromptVersion, Trace, UsageLink, VersionCheckpoint, db
from ..settings import POSTGRES_SCHEMES
from ..tally import OBSERVATION_LINKED, OBSERVATION_OUTCOME, Signals
from .base import Checkpoint, TraceRow, Usage
from .sql import OBSERVATION_COLUMNS, TRACE_COLUMNS, SqlStore, c, chunks, cols, flat, q, table

SCHEMES = POSTGRES_SCHEMES


class _PooledPostgres(PooledPostgresqlDatabase):
    """Peewee's PostgreSQL pool, checking a pooled connection without a round trip.

    Peewee runs `SELECT 1` on every connection it hands out: one more round
    trip for every RPC (a tenth of a unary call's time). An idle connection
    has nothing to read, so a readable socket means the server closed it or
    sent its termination notice (a restart, a terminated backend): that
    connection is dropped. One that died with no word (a cut network) fails
    its first statement instead; the call is UNAVAILABLE and
    storage.connection() drops it."""

    def _is_closed(self, conn) -> bool:
        if conn.closed or conn.get_transaction_status() != self._adapter.txn_idle:
            return super()._is_closed(conn)  # closed, or rolled back if it can be
        readable, _, _ = select.select([conn], [], [], 0)
        return bool(readable)


def open_database(url: str, max_connections: int, timeout: float) -> Database:
    connect_args = parse(url)
    # The statements we prepare plan well for any batch size, so always their
    # generic plan: left to choose, PostgreSQL judges by the first five calls'
    # sizes and may re-plan every call (~0.5 ms, as long as running a unary
    # call's statements).
    connect_args["options"] = " ".join(
        filter(None, [connect_args.get("options"), "-c plan_cache_mode=force_generic_plan"])
    )
    return _PooledPostgres(
        **connect_args, max_connections=max_connections, timeout=timeout,
        stale_timeout=300, connect_timeout=max(1, round(timeout)),
    )


# The names of the statements prepared on each connection (a prepared
# statement lives as long as its connection, which the pool reuses).
_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _numbered(sql: str) -> str:
    """psycopg2's %s placeholders as PREPARE's $1, $2, ..."""
    number = iter(range(1, sql.count("%s") + 1))
    return re.sub("%s", lambda _: f"${next(number)}", sql)


def _link_key(version, trace, span) -> str:
    return f"concat_ws(' ', {version}, {trace}, {span})"


_TRACES, _VERSIONS = "promptgauge.usage_traces", "promptgauge.usage_versions"


def _usage_statements() -> dict[str, str]:
    """The three statements of a usage batch, by name. Their parameters are
    taken from the batch's (account, names, versions, trace ids, span ids,
    now, fold_at) as _USAGE_PARAMS says.

    Only the first reads prompt, prompt_version and trace: it hands the later
    ones what they need (each record's version id, each trace's row) through
    two settings local to the transaction (set_config(..., true)). A prepared
    statement keeps the generic plan it was first given, and one made while
    the trace table was small scans it whole: 24 ms a unary call at 60k
    traces, where reading the rows the upsert returns costs nothing."""
    t, link, o, cp, v, p = Trace, UsageLink, Observation, VersionCheckpoint, PromptVersion, Prompt
    trace_row = f"jsonb_build_array({cols(TRACE_COLUMNS[:1] + TRACE_COLUMNS[2:])})"
    lock_traces = f"""
WITH found AS MATERIALIZED (
    SELECT i.n, i.trace_id, v.{c(v.id)} AS version_id
    FROM unnest($2::text[], $3::integer[], $4::text[]) WITH ORDINALITY AS i (name, version, trace_id, n)
    JOIN {table(p)} AS p ON p.{c(p.account)} = $1 AND p.{c(p.name)} = i.name
    JOIN {table(v)} AS v ON v.{c(v.prompt)} = p.{c(p.id)} AND v.{c(v.version)} = i.version
), t AS (
    -- DO UPDATE, not DO NOTHING: it locks an existing row too, in the same
    -- sorted pass that creates the new ones (inserting first and locking the
    -- rest after could deadlock two writers on each other's new rows).
    INSERT INTO {table(t)} ({cols((t.account, t.trace_id, t.has_outcome))})
    SELECT DISTINCT $1::integer, trace_id COLLATE "C", FALSE FROM found ORDER BY 2
    ON CONFLICT ({cols((t.account, t.trace_id))})
    DO UPDATE SET {c(t.has_outcome)} = {table(t)}.{c(t.has_outcome)}
    RETURNING {cols(TRACE_COLUMNS)}
)
SELECT set_config('{_TRACES}', (SELECT COALESCE(jsonb_object_agg({c(t.trace_id)}, {trace_row}), '{{}}')
                                 FROM t)::text, TRUE),
       set_config('{_VERSIONS}', (SELECT COALESCE(jsonb_object_agg(n::text, version_id::text), '{{}}')
                                  FROM found)::text, TRUE)
"""
    share_checkpoints = (
        f"SELECT k.{c(cp.version)} FROM {table(cp)} AS k WHERE k.{c(cp.version)} IN ("
        f"SELECT value::uuid FROM jsonb_each_text(current_setting('{_VERSIONS}')::jsonb)) "
        f"ORDER BY k.{c(cp.version)} FOR SHARE OF k"
    )
    signals = ", ".join(f"CASE WHEN k.kind = {OBSERVATION_OUTCOME} THEN r.{c(f)} END"
                        for f in (t.success, t.total_cost_usd, t.duration_ms, t.input_tokens,
                                  t.output_tokens))
    store = f"""
WITH maps (versions, traces) AS MATERIALIZED (
    SELECT current_setting('{_VERSIONS}')::jsonb, current_setting('{_TRACES}')::jsonb
), resolved AS MATERIALIZED (
    SELECT i.n, i.span_id, (m.versions ->> i.n::text)::uuid AS version_id, (x ->> 0)::bigint AS trace_pk,
           (x ->> 1)::boolean AS {c(t.has_outcome)}, (x ->> 2)::boolean AS {c(t.success)},
           (x ->> 3)::double precision AS {c(t.total_cost_usd)},
           (x ->> 4)::double precision AS {c(t.duration_ms)}, (x ->> 5)::timestamp AS {c(t.end_time)},
           (x ->> 6)::bigint AS {c(t.input_tokens)}, (x ->> 7)::bigint AS {c(t.output_tokens)}
    FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS i (trace_id, span_id, n)
    CROSS JOIN maps AS m CROSS JOIN LATERAL (SELECT m.traces -> i.trace_id) AS j (x)
    WHERE m.versions ? i.n::text
), l AS (
    INSERT INTO {table(link)} ({cols((link.version, link.trace, link.span_id, link.create_time))})
    SELECT version_id, trace_pk, span_id, $3 FROM resolved
    ON CONFLICT DO NOTHING
    RETURNING {cols((link.version, link.trace, link.span_id))}
), o AS (
    -- The unique (version, trace, kind) key counts a trace once per version.
    INSERT INTO {table(o)} ({cols(OBSERVATION_COLUMNS)})
    -- A trace counts at its end time once it has one, else when linked.
    SELECT r.version_id, r.trace_pk, k.kind, {signals},
           CASE WHEN r.{c(t.has_outcome)} THEN r.{c(t.end_time)} ELSE $3::timestamp END, NULL::timestamp
    FROM (SELECT DISTINCT ON (version_id, trace_pk) * FROM resolved) AS r
    CROSS JOIN (VALUES ({OBSERVATION_LINKED}::smallint), ({OBSERVATION_OUTCOME}::smallint)) AS k (kind)
    WHERE k.kind = {OBSERVATION_LINKED} OR r.{c(t.has_outcome)}
    ORDER BY r.trace_pk, r.version_id, k.kind
    ON CONFLICT DO NOTHING
    RETURNING {c(o.id)}, {c(o.version)}
), new_links (keys) AS MATERIALIZED (
    -- A map, not a join of two CTEs: the planner takes a CTE for a row or
    -- ten and would nested-loop them, n² steps for a 500-record batch.
    SELECT COALESCE(jsonb_object_agg({_link_key(c(link.version), c(link.trace), c(link.span_id))}, TRUE),
                    '{{}}')
    FROM l
)
SELECT r.n, new_links.keys ? {_link_key('r.version_id', 'r.trace_pk', 'r.span_id')}, NULL
FROM resolved AS r CROSS JOIN new_links
UNION ALL
SELECT NULL, NULL, o.{c(o.version)} FROM o JOIN {table(cp)} AS k ON k.{c(cp.version)} = o.{c(o.version)}
GROUP BY o.{c(o.version)}, k.{c(cp.last_observation_id)}
HAVING max(o.{c(o.id)}) - k.{c(cp.last_observation_id)} >= $4
"""
    return {
        "promptgauge_usage_lock_traces": lock_traces,
        "promptgauge_usage_share_checkpoints": share_checkpoints,
        "promptgauge_usage_store": store,
    }


_USAGE = _usage_statements()
_USAGE_PARAMS = {  # which of the batch's values each statement takes, as $1, $2, ...
    "promptgauge_usage_lock_traces": slice(0, 4),  # account, names, versions, trace ids
    "promptgauge_usage_share_checkpoints": slice(0, 0),
    "promptgauge_usage_store": slice(3, 7),  # trace ids, span ids, now, fold_at
}


def feed_channel(schema: str) -> str:
    """The NOTIFY channel of the promptgauge whose tables are in `schema`:
    channels are database-wide, and deployments (or test runs) in other
    schemas of the database must not hear each other."""
    return "promptgauge_feed_" + hashlib.sha256(schema.encode()).hexdigest()[:16]


KEYS_CHANGED = "keys"  # the payload of a revocation; any other is an account id
_EVENT_LOCK = 7310102  # advisory lock class of an account's event writers


class PostgresStore(SqlStore):
    param = "%s"
    blob_concat = "string_agg({}, ''::bytea)"
    share_lock = "FOR SHARE"

    def __init__(self):
        self._channel: str | None = None

    def channel(self) -> str:
        if self._channel is None:
            self._channel = feed_channel(self.execute("SELECT current_schema()").fetchone()[0])
        return self._channel

    def append_event(self, account_id: int, prompt_id: int, kind: int, created_by: str, **fields) -> int:
        # An account's event writers queue here until commit, so the ids
        # they draw from the sequence commit in order: a watcher that read up
        # to id n never finds a smaller id committed after. Taken last in
        # every writer (after the prompt's row), so it adds no lock cycle.
        self.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_EVENT_LOCK, account_id])
        sequence = super().append_event(account_id, prompt_id, kind, created_by, **fields)
        # Delivered to every listener when (and only if) the transaction commits.
        self.execute("SELECT pg_notify(%s, %s)", [self.channel(), str(account_id)])
        return sequence

    def keys_changed(self) -> None:
        self.execute("SELECT pg_notify(%s, %s)", [self.channel(), KEYS_CHANGED])

    def _prepare(self, name: str, sql: str) -> None:
        """PREPARE `sql` ($n placeholders) once per pooled connection: planning
        the usage statement took as long as running it (~0.5 ms)."""
        names = _prepared.setdefault(db.connection(), set())
        if name not in names:
            self.execute(f"PREPARE {name} AS {sql}")
            names.add(name)

    def version_key(self, version_id):
        return version_id if isinstance(version_id, uuid.UUID) else uuid.UUID(str(version_id))

    def execute_prepared(self, name: str, sql: str, params: Sequence):
        self._prepare(name, _numbered(sql))
        return self.execute(f"EXECUTE {name} ({', '.join(['%s'] * len(params))})", params)

    def lock_schema(self) -> None:
        # Replicas starting together must not race on CREATE TABLE.
        self.execute("SELECT pg_advisory_xact_lock(7310101)")

    def drop_foreign_keys(self, model, parent) -> None:
        rows = self.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid = %s::regclass "
            "AND confrelid = %s::regclass",
            [q(model._meta.table_name), q(parent._meta.table_name)],
        ).fetchall()
        for (name,) in rows:
            self.execute(f"ALTER TABLE {table(model)} DROP CONSTRAINT {q(name)}")

    def lock_prompt(self, account_id: int, name: str) -> Prompt | None:
        return (Prompt.select().where((Prompt.account == account_id) & (Prompt.name == name))
                .for_update().first())

    def lock_agent(self, account_id: int, name: str) -> Agent | None:
        return (Agent.select().where((Agent.account == account_id) & (Agent.name == name))
                .for_update().first())

    def by_code_point(self, field):
        # A database with a linguistic collation (en_US...) would order "a_a"
        # before "a-c" before "a0", unlike SQLite.
        return field.collate('"C"')

    # -- ingestion ------------------------------------------------------------

    def store_usage(
        self, account_id: int, usages: Sequence[Usage], now: datetime, fold_at: int
    ) -> tuple[list[bool | None], set]:
        for name, sql in _USAGE.items():
            self._prepare(name, sql)
        values = [
            account_id,
            [u.prompt_name for u in usages], [u.prompt_version for u in usages],
            [u.trace_id for u in usages], [u.span_id for u in usages],
            UsageLink.create_time.db_value(now), fold_at,
        ]
        taken = {name: values[which] for name, which in _USAGE_PARAMS.items()}
        batch = "; ".join(f"EXECUTE {name} ({', '.join(['%s'] * len(v))})" if v else f"EXECUTE {name}"
                          for name, v in taken.items())
        params = flat(taken.values())
        linked: list[bool | None] = [None] * len(usages)
        due = set()
        # One round trip: psycopg2 hands back the last statement's rows.
        for n, new, version_id in self.execute(batch, params):
            if n is None:
                due.add(version_id)
            else:
                linked[n - 1] = new
        return linked, due

    def lock_traces(self, account_id: int, trace_ids: Sequence[str]) -> tuple[dict[str, TraceRow], set[str]]:
        t = Trace
        sql = (
            f"INSERT INTO {table(t)} ({cols((t.account, t.trace_id, t.has_outcome))}) "
            f"SELECT %s::integer, trace_id COLLATE \"C\", FALSE FROM unnest(%s::text[]) AS s (trace_id) "
            f"ORDER BY 2 ON CONFLICT ({cols((t.account, t.trace_id))}) DO UPDATE SET "
            f"{c(t.has_outcome)} = {table(t)}.{c(t.has_outcome)} RETURNING {cols(TRACE_COLUMNS)}"
        )
        rows = self.execute_prepared("promptgauge_lock_traces", sql, [account_id, sorted(set(trace_ids))])
        # The upsert does not tell new rows from old: none is said to be new.
        return {row[1]: TraceRow(*row) for row in rows}, set()

    def set_outcomes(self, outcomes: Sequence[tuple[int, Signals]], now: datetime) -> None:
        t = Trace
        rows = [(pk, s.success, s.total_cost_usd, s.duration_ms, s.input_tokens, s.output_tokens,
                 s.event_time or now) for pk, s in outcomes]
        # psycopg2's executemany is a round trip per row: one UPDATE ... FROM VALUES instead.
        for chunk in chunks(rows):
            values = ", ".join(["(%s::bigint, %s::boolean, %s::double precision, %s::double precision, "
                                "%s::bigint, %s::bigint, %s::timestamp)"] * len(chunk))
            sql = (f"UPDATE {table(t)} AS t SET {c(t.has_outcome)} = TRUE, {c(t.success)} = v.success, "
                   f"{c(t.total_cost_usd)} = v.cost, {c(t.duration_ms)} = v.duration, "
                   f"{c(t.input_tokens)} = v.input_tokens, {c(t.output_tokens)} = v.output_tokens, "
                   f"{c(t.end_time)} = v.end_time, {c(t.outcome_time)} = %s "
                   f"FROM (VALUES {values}) AS v (id, success, cost, duration, input_tokens, output_tokens, "
                   f"end_time) WHERE t.{c(t.id)} = v.id")
            self.execute(sql, [now, *flat(chunk)])

    # -- checkpoints ------------------------------------------------------------

    def lock_checkpoint(self, version_id) -> Checkpoint | None:
        return self.read_checkpoint(version_id, "FOR UPDATE")

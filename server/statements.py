"""The hot path's SQL: the statements that every ingested batch and every call
runs, written once per shape instead of built by peewee on each call.

Peewee builds a statement value by value in Python (Insert.__sql__): ~40% of
a 500-record batch's time and 50-100 µs for each of a unary call's small
statements. Here each statement's text is made once per shape (and per
number of rows), from the models' own table and column names, so the models
stay the schema's single source of truth; it runs through the same peewee
connection and transaction (db.execute_sql). Placeholders are the backend's
(`db.param`: `?` on SQLite, `%s` for psycopg2).

Multi-row statements take up to CHUNK rows: one statement and one round trip
per chunk on both backends (psycopg2's executemany is a round trip per row).
"""

import re
import weakref
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import NamedTuple

from .models import (
    OBSERVATION_LINKED,
    OBSERVATION_OUTCOME,
    ApiKey,
    Observation,
    Prompt,
    PromptVersion,
    Trace,
    UsageLink,
    VersionCheckpoint,
    db,
)

CHUNK = 500  # rows per statement: at most 7 x 500 parameters, well under SQLite's limit

_TRACE_COLUMNS = (Trace.id, Trace.trace_id, Trace.has_outcome, Trace.success, Trace.total_cost_usd,
                  Trace.duration_ms)
_LINK_COLUMNS = (UsageLink.version, UsageLink.trace, UsageLink.span_id, UsageLink.create_time)
OBSERVATION_COLUMNS = (Observation.version, Observation.trace, Observation.kind, Observation.success,
                       Observation.total_cost_usd, Observation.duration_ms)


class TraceRow(NamedTuple):
    id: int
    trace_id: str
    has_outcome: bool
    success: bool | None
    total_cost_usd: float | None
    duration_ms: float | None


def _q(name: str) -> str:
    return f'"{name}"'


def _table(model) -> str:
    return _q(model._meta.table_name)


def _cols(fields: Iterable) -> str:
    return ", ".join(_q(f.column_name) for f in fields)


def chunks(rows: Sequence, size: int = CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


@lru_cache(maxsize=1024)
def _insert_sql(param: str, table: str, columns: str, width: int, rows: int, returning: str) -> str:
    one = "(" + ", ".join([param] * width) + ")"
    sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join([one] * rows)} ON CONFLICT DO NOTHING"
    return sql + (f" RETURNING {returning}" if returning else "")


@lru_cache(maxsize=1024)
def _in(param: str, n: int) -> str:
    return "(" + ", ".join([param] * n) + ")"


def _flat(rows: Sequence[Sequence]) -> list:
    return [value for row in rows for value in row]


def _version(version_id) -> str:
    """A version id as a parameter: a uuid.UUID (from a peewee model) is not
    one that sqlite3 takes."""
    return PromptVersion.id.db_value(version_id)


def _execute(sql: str, params: Sequence = ()):
    return db.execute_sql(sql, params)


# The names of the statements prepared on each PostgreSQL connection (a
# prepared statement lives as long as its connection, which the pool reuses).
_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _execute_prepared(name: str, sql: str, params: Sequence):
    """Run `sql` (with the backend's placeholders) as a statement the
    database plans once per connection, not on every call. sqlite3 keeps its
    own cache of prepared statements; PostgreSQL needs PREPARE and EXECUTE."""
    if db.param == "?":  # SQLite
        return _execute(sql, params)
    names = _prepared.setdefault(db.connection(), set())
    if name not in names:
        number = iter(range(1, len(params) + 1))
        _execute(f"PREPARE {name} AS " + re.sub("%s", lambda _: f"${next(number)}", sql))
        names.add(name)
    return _execute(f"EXECUTE {name} ({', '.join(['%s'] * len(params))})", params)


def insert_ignore(model, fields: tuple, rows: Sequence[Sequence], returning: tuple = ()) -> list[tuple]:
    """INSERT the rows (tuples in `fields` order), skipping those that break a
    unique key; the `returning` columns of the rows inserted."""
    out: list[tuple] = []
    # The cache is keyed by strings: peewee fields compare with == into
    # expressions, not booleans.
    table, columns, back = _table(model), _cols(fields), _cols(returning)
    for chunk in chunks(rows):
        cursor = _execute(_insert_sql(db.param, table, columns, len(fields), len(chunk), back), _flat(chunk))
        if returning:
            out.extend(cursor.fetchall())
    return out


def new_traces(account_id: int, trace_ids: Sequence[str]) -> dict[str, TraceRow]:
    """Create the trace rows that do not exist yet, in the order given; the new ones."""
    rows = insert_ignore(Trace, (Trace.account, Trace.trace_id, Trace.has_outcome),
                         [(account_id, t, False) for t in trace_ids], returning=(Trace.id, Trace.trace_id))
    return {trace_id: TraceRow(pk, trace_id, False, None, None, None) for pk, trace_id in rows}


def traces(account_id: int, trace_ids: Sequence[str]) -> dict[str, TraceRow]:
    """Trace rows by trace_id, unlocked (SQLite's writer holds the whole
    database; PostgreSQL locks its rows with lock_traces)."""
    out: dict[str, TraceRow] = {}
    p = db.param
    for chunk in chunks(trace_ids):
        sql = (f"SELECT {_cols(_TRACE_COLUMNS)} FROM {_table(Trace)} "
               f"WHERE {_q(Trace.account.column_name)} = {p} AND {_q(Trace.trace_id.column_name)} IN "
               f"{_in(p, len(chunk))}")
        for pk, trace_id, has_outcome, success, cost, duration in _execute(sql, [account_id, *chunk]):
            # SQLite hands booleans back as 0/1.
            out[trace_id] = TraceRow(pk, trace_id, bool(has_outcome),
                                     None if success is None else bool(success), cost, duration)
    return out


def links(trace_pks: Sequence[int], with_span: bool = True) -> list[tuple]:
    """(version_id, trace pk[, span_id]) of every link of these traces."""
    fields = _LINK_COLUMNS[:3] if with_span else _LINK_COLUMNS[:2]
    out: list[tuple] = []
    for chunk in chunks(trace_pks):
        sql = (f"SELECT {'' if with_span else 'DISTINCT '}{_cols(fields)} FROM {_table(UsageLink)} "
               f"WHERE {_q(UsageLink.trace.column_name)} IN {_in(db.param, len(chunk))}")
        out.extend(_execute(sql, list(chunk)).fetchall())
    return out


def insert_links(rows: Sequence[tuple], now) -> None:
    """Insert (version_id, trace pk, span_id) links made at `now`."""
    create_time = UsageLink.create_time.db_value(now)
    insert_ignore(UsageLink, _LINK_COLUMNS, [(*row, create_time) for row in rows])


def insert_observations(rows: Sequence[tuple]) -> list[tuple]:
    """Insert observations (in OBSERVATION_COLUMNS order); (id, version_id) of the new ones."""
    return insert_ignore(Observation, OBSERVATION_COLUMNS, rows,
                         returning=(Observation.id, Observation.version))


def last_folded(version_ids: Sequence, share: bool) -> dict:
    """Each version's last folded observation id; with `share` (PostgreSQL),
    its checkpoint held FOR SHARE, in version order, against a fold."""
    p = db.param
    out: dict = {}
    for chunk in chunks(version_ids):
        sql = (f"SELECT {_cols((VersionCheckpoint.version, VersionCheckpoint.last_observation_id))} "
               f"FROM {_table(VersionCheckpoint)} WHERE {_q(VersionCheckpoint.version.column_name)} IN "
               f"{_in(p, len(chunk))} ORDER BY {_q(VersionCheckpoint.version.column_name)}"
               + (" FOR SHARE" if share else ""))
        out.update(_execute(sql, list(chunk)).fetchall())
    return out


def set_outcomes(rows: Sequence[tuple], now, postgres: bool) -> None:
    """Store (trace pk, success, cost, duration) outcomes on their trace rows."""
    t = Trace
    if not postgres:
        # sqlite3's executemany steps one prepared statement, in C.
        sql = (f"UPDATE {_table(t)} SET {_q(t.has_outcome.column_name)} = 1, "
               f"{_q(t.success.column_name)} = ?, {_q(t.total_cost_usd.column_name)} = ?, "
               f"{_q(t.duration_ms.column_name)} = ?, "
               f"{_q(t.outcome_time.column_name)} = ? WHERE {_q(t.id.column_name)} = ?")
        when = t.outcome_time.db_value(now)
        db.cursor().executemany(sql, [(ok, cost, ms, when, pk) for pk, ok, cost, ms in rows])
        return
    # psycopg2's executemany is a round trip per row: one UPDATE ... FROM VALUES instead.
    for chunk in chunks(rows):
        values = ", ".join(["(%s::bigint, %s::boolean, %s::double precision, %s::double precision)"]
                           * len(chunk))
        sql = (f"UPDATE {_table(t)} AS t SET {_q(t.has_outcome.column_name)} = TRUE, "
               f"{_q(t.success.column_name)} = v.success, {_q(t.total_cost_usd.column_name)} = v.cost, "
               f"{_q(t.duration_ms.column_name)} = v.duration, {_q(t.outcome_time.column_name)} = %s "
               f"FROM (VALUES {values}) AS v (id, success, cost, duration) "
               f"WHERE t.{_q(t.id.column_name)} = v.id")
        _execute(sql, [now, *_flat(chunk)])


@lru_cache(maxsize=4)
def _tail_sql(param: str) -> str:
    o, cp = Observation, VersionCheckpoint
    return (
        f"SELECT COUNT(*) FROM (SELECT 1 FROM {_table(o)} WHERE {_q(o.version.column_name)} = {param} "
        f"AND {_q(o.id.column_name)} > (SELECT {_q(cp.last_observation_id.column_name)} "
        f"FROM {_table(cp)} WHERE {_q(cp.version.column_name)} = {param}) LIMIT {param}) AS tail"
    )


def tail_size(version_id, limit: int) -> int:
    """Observations after a version's checkpoint, counting at most `limit`."""
    vid = _version(version_id)
    return _execute(_tail_sql(db.param), [vid, vid, limit]).fetchone()[0]


@lru_cache(maxsize=64)
def _versions_sql(param: str, names: int) -> str:
    v, pr = PromptVersion, Prompt
    return (
        f"SELECT p.{_q(pr.name.column_name)}, v.{_q(v.version.column_name)}, v.{_q(v.id.column_name)} "
        f"FROM {_table(v)} AS v JOIN {_table(pr)} AS p ON v.{_q(v.prompt.column_name)} = "
        f"p.{_q(pr.id.column_name)} WHERE p.{_q(pr.account.column_name)} = {param} "
        f"AND p.{_q(pr.name.column_name)} IN {_in(param, names)}"
    )


def version_ids(account_id: int, names: Sequence[str]) -> dict[tuple[str, int], object]:
    """(prompt name, version) -> version id, for these prompt names of an account."""
    out: dict = {}
    for chunk in chunks(names):
        rows = _execute(_versions_sql(db.param, len(chunk)), [account_id, *chunk])
        out.update(((name, version), vid) for name, version, vid in rows)
    return out


@lru_cache(maxsize=4)
def _key_sql(param: str) -> str:
    k = ApiKey
    return (f"SELECT {_cols((k.id, k.account, k.key_hash, k.revoke_time))} FROM {_table(k)} "
            f"WHERE {_q(k.key_hash.column_name)} = {param}")


def api_key(key_hash: str) -> tuple | None:
    """(id, account_id, key_hash, revoke_time) of the key with this hash, or None."""
    return _execute_prepared("promptgauge_api_key", _key_sql(db.param), [key_hash]).fetchone()


# -- checkpoints and comparisons ------------------------------------------------

# A checkpoint's state in _Tally's order, then its sketch.
CHECKPOINT_COLUMNS = (
    VersionCheckpoint.last_observation_id, VersionCheckpoint.total_traces, VersionCheckpoint.success_n,
    VersionCheckpoint.success_true, VersionCheckpoint.cost_n, VersionCheckpoint.cost_sum,
    VersionCheckpoint.duration_n, VersionCheckpoint.duration_sum, VersionCheckpoint.sketch,
)
_SIGNAL_COLUMNS = (Observation.kind, Observation.success, Observation.total_cost_usd, Observation.duration_ms)
_OR_MAX = 100  # version ranges in one statement's OR


def checkpoint(version_id, lock: bool) -> tuple | None:
    """A version's checkpoint, as CHECKPOINT_COLUMNS; with `lock`, FOR UPDATE."""
    cp = VersionCheckpoint
    sql = (f"SELECT {_cols(CHECKPOINT_COLUMNS)} FROM {_table(cp)} WHERE {_q(cp.version.column_name)} = "
           f"{db.param}" + (" FOR UPDATE" if lock else ""))
    return _execute(sql, [_version(version_id)]).fetchone()


def tail(version_id, after: int, limit: int) -> list[tuple]:
    """(id, kind, success, cost, duration) of a version's observations after
    id `after`, in id order, at most `limit`."""
    o, p = Observation, db.param
    sql = (f"SELECT {_cols((o.id, *_SIGNAL_COLUMNS))} FROM {_table(o)} WHERE {_q(o.version.column_name)} = "
           f"{p} AND {_q(o.id.column_name)} > {p} ORDER BY {_q(o.id.column_name)} LIMIT {p}")
    return _execute(sql, [_version(version_id), after, limit]).fetchall()


def advance(version_id, was: int, state: Sequence) -> bool:
    """Set a checkpoint to `state` (CHECKPOINT_COLUMNS' values) if its last
    folded id is still `was`; whether it was."""
    cp, p = VersionCheckpoint, db.param
    sets = ", ".join(f"{_q(f.column_name)} = {p}" for f in CHECKPOINT_COLUMNS)
    sql = (f"UPDATE {_table(cp)} SET {sets} WHERE {_q(cp.version.column_name)} = {p} "
           f"AND {_q(cp.last_observation_id.column_name)} = {p}")
    return _execute(sql, [*state, _version(version_id), was]).rowcount == 1


@lru_cache(maxsize=4)
def _comparison_sql(param: str) -> str:
    p, v, cp = Prompt, PromptVersion, VersionCheckpoint
    checkpoint_columns = ", ".join(f"c.{_q(f.column_name)}" for f in CHECKPOINT_COLUMNS)
    return (
        f"SELECT v.{_q(v.id.column_name)}, v.{_q(v.version.column_name)}, "
        f"v.{_q(v.template_text.column_name)}, {checkpoint_columns} FROM {_table(p)} AS p "
        f"LEFT JOIN {_table(v)} AS v ON v.{_q(v.prompt.column_name)} = p.{_q(p.id.column_name)} "
        f"LEFT JOIN {_table(cp)} AS c ON c.{_q(cp.version.column_name)} = v.{_q(v.id.column_name)} "
        f"WHERE p.{_q(p.account.column_name)} = {param} AND p.{_q(p.name.column_name)} = {param} "
        f"ORDER BY v.{_q(v.version.column_name)}"
    )


def comparison(account_id: int, name: str) -> list[tuple]:
    """A prompt's versions by version, each (id, version, template_text, then
    its checkpoint's CHECKPOINT_COLUMNS): no rows if there is no such prompt,
    one row of None if it has no version."""
    return _execute(_comparison_sql(db.param), [account_id, name]).fetchall()


@lru_cache(maxsize=128)
def _tails_sql(param: str, versions: int) -> str:
    o = Observation
    one = f"({_q(o.version.column_name)} = {param} AND {_q(o.id.column_name)} > {param})"
    # In id order, as a fold adds them: the same floating-point sums on
    # every replica, and the same as once the tail is folded.
    where = " OR ".join([one] * versions)
    return (f"SELECT {_cols((o.version, *_SIGNAL_COLUMNS))} FROM {_table(o)} WHERE {where} "
            f"ORDER BY {_q(o.id.column_name)}")


def tails(after: Sequence[tuple]) -> list[tuple]:
    """(version_id, kind, success, cost, duration) of the observations after
    each (version_id, last folded id). An OR of ranges: PostgreSQL plans it
    as a BitmapOr of (version_id, id) index scans, SQLite as one index range
    per term; a UNION ALL of per-version selects took longer to plan than to run."""
    out: list[tuple] = []
    for chunk in chunks(after, _OR_MAX):
        out.extend(_execute(_tails_sql(db.param, len(chunk)), _flat(chunk)).fetchall())
    return out


# -- PostgreSQL: a usage batch in one statement ----------------------------------
#
# On PostgreSQL every statement is a round trip, ~0.1 ms idle and ~0.25 ms
# beside a busy gRPC server on the same cores, and a unary RecordUsage ran
# nine of them. Here a whole usage batch (version lookup, trace rows, links,
# checkpoint locks, observations) is one statement in its own implicit
# transaction: data-modifying CTEs, ordered by what each reads. SQLite has no
# data-modifying CTEs; it runs the same steps one by one (analytics.py).


@lru_cache(maxsize=4)
def _upsert_traces_sql(source: str) -> str:
    """Trace rows for the distinct trace ids of `source` (a SELECT of a
    `trace_id` column), created if new, locked FOR UPDATE either way, in
    trace_id order (one lock order for every writer: no deadlocks).

    DO UPDATE, not DO NOTHING: it locks and returns a row that another
    transaction committed after this statement's snapshot was taken (a
    trace created at the same moment by an outcome), where a SELECT in the
    same statement would not see it."""
    t = Trace
    return (
        f"INSERT INTO {_table(t)} ({_cols((t.account, t.trace_id, t.has_outcome))}) "
        f"SELECT DISTINCT %s::integer, trace_id COLLATE \"C\", FALSE FROM ({source}) AS s ORDER BY 2 "
        f"ON CONFLICT ({_cols((t.account, t.trace_id))}) DO UPDATE SET "
        f"{_q(t.has_outcome.column_name)} = {_table(t)}.{_q(t.has_outcome.column_name)} "
        f"RETURNING {_cols(_TRACE_COLUMNS)}"
    )


def lock_traces(account_id: int, trace_ids: Sequence[str]) -> dict[str, TraceRow]:
    """PostgreSQL: the rows of these traces, created if new, locked for this transaction."""
    sql = _upsert_traces_sql("SELECT unnest(%s::text[]) AS trace_id")
    return {row[1]: TraceRow(*row) for row in _execute(sql, [account_id, list(trace_ids)])}


def _c(field) -> str:
    return _q(field.column_name)


@lru_cache(maxsize=1)
def _store_usage_sql() -> str:
    p, v, t, link, o, cp = Prompt, PromptVersion, Trace, UsageLink, Observation, VersionCheckpoint
    linked, outcome = OBSERVATION_LINKED, OBSERVATION_OUTCOME
    signals = ", ".join(f"CASE WHEN k.kind = {outcome} THEN r.{_c(f)} END"
                        for f in (t.success, t.total_cost_usd, t.duration_ms))
    link_key = f"concat_ws(' ', {_c(link.version)}, {_c(link.trace)}, {_c(link.span_id)})"
    return f"""
WITH input (name, version, trace_id, span_id, n) AS (
    SELECT * FROM unnest(%s::text[], %s::integer[], %s::text[], %s::text[]) WITH ORDINALITY
), found AS MATERIALIZED (
    SELECT i.n, i.trace_id, i.span_id, v.{_c(v.id)} AS version_id
    FROM input AS i
    JOIN {_table(p)} AS p ON p.{_c(p.account)} = %s AND p.{_c(p.name)} = i.name
    JOIN {_table(v)} AS v ON v.{_c(v.prompt)} = p.{_c(p.id)} AND v.{_c(v.version)} = i.version
), t AS (
    {_upsert_traces_sql("SELECT trace_id FROM found")}
), traces (by_id) AS MATERIALIZED (
    -- A map, not a join: the planner takes a CTE over an array for a row or
    -- ten and joins two in a nested loop, n² steps for a 500-record batch.
    SELECT jsonb_object_agg({_c(t.trace_id)}, jsonb_build_array({_cols(_TRACE_COLUMNS)})) FROM t
), resolved AS MATERIALIZED (
    SELECT f.n, f.version_id, f.span_id, (x ->> 0)::bigint AS {_c(link.trace)},
           (x ->> 2)::boolean AS {_c(t.has_outcome)}, (x ->> 3)::boolean AS {_c(t.success)},
           (x ->> 4)::double precision AS {_c(t.total_cost_usd)},
           (x ->> 5)::double precision AS {_c(t.duration_ms)}
    FROM found AS f CROSS JOIN traces CROSS JOIN LATERAL (SELECT traces.by_id -> f.trace_id) AS j (x)
), l AS (
    INSERT INTO {_table(link)} ({_cols(_LINK_COLUMNS)})
    SELECT version_id, {_c(link.trace)}, span_id, %s FROM resolved
    ON CONFLICT DO NOTHING
    RETURNING {_cols(_LINK_COLUMNS[:3])}
), cp AS MATERIALIZED (
    -- Every trace row is locked before the first checkpoint is, the order of
    -- the steps on SQLite: count(*) runs t to its end first.
    SELECT {_c(cp.version)}, {_c(cp.last_observation_id)} FROM {_table(cp)}
    WHERE {_c(cp.version)} IN (SELECT version_id FROM found) AND (SELECT count(*) FROM t) >= 0
    ORDER BY {_c(cp.version)} FOR SHARE
), o AS (
    -- Joined with cp: a version's observations are numbered only once its
    -- checkpoint is held FOR SHARE, so a fold never passes an id that is not
    -- committed yet. The unique (version, trace, kind) key counts a trace once.
    INSERT INTO {_table(o)} ({_cols(OBSERVATION_COLUMNS)})
    SELECT r.version_id, r.{_c(link.trace)}, k.kind, {signals}
    FROM (SELECT DISTINCT ON (version_id, {_c(link.trace)}) * FROM resolved) AS r
    LEFT JOIN cp ON cp.{_c(cp.version)} = r.version_id
    CROSS JOIN (VALUES ({linked}::smallint), ({outcome}::smallint)) AS k (kind)
    WHERE k.kind = {linked} OR r.{_c(t.has_outcome)}
    ORDER BY r.{_c(link.trace)}, r.version_id, k.kind
    ON CONFLICT DO NOTHING
    RETURNING {_c(o.id)}, {_c(o.version)}
), new_links (keys) AS MATERIALIZED (
    SELECT COALESCE(jsonb_object_agg({link_key}, TRUE), '{{}}') FROM l
)
SELECT r.n, new_links.keys ? concat_ws(' ', r.version_id, r.{_c(link.trace)}, r.span_id), NULL
FROM resolved AS r CROSS JOIN new_links
UNION ALL
SELECT NULL, NULL, o.{_c(o.version)} FROM o JOIN cp ON cp.{_c(cp.version)} = o.{_c(o.version)}
GROUP BY o.{_c(o.version)}, cp.{_c(cp.last_observation_id)}
HAVING max(o.{_c(o.id)}) - cp.{_c(cp.last_observation_id)} >= %s
"""


def store_usage(account_id: int, usages: Sequence, now, fold_at: int) -> tuple[list, set]:
    """PostgreSQL: store usage links (objects with prompt_name, prompt_version,
    trace_id, span_id) in one statement. Returns, for each, None if its
    version does not exist, else whether its link is new; and the versions
    whose tail may have reached fold_at."""
    params = [
        [u.prompt_name for u in usages], [u.prompt_version for u in usages],
        [u.trace_id for u in usages], [u.span_id for u in usages],
        account_id, account_id, UsageLink.create_time.db_value(now), fold_at,
    ]
    linked: list = [None] * len(usages)
    due = set()
    # Planning this statement took as long as running it (~0.5 ms each).
    for n, new, version_id in _execute_prepared("promptgauge_store_usage", _store_usage_sql(), params):
        if n is None:
            due.add(version_id)
        else:
            linked[n - 1] = new
    return linked, due

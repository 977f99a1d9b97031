"""The SQL both backends run alike, written once per shape.

Peewee builds a statement value by value in Python (Insert.__sql__): ~40% of
a 500-record batch's time and 50-100 µs for each of a unary call's small
statements. Here each statement's text is made once per shape (and per
number of rows), from the models' own table and column names, so the models
stay the schema's single source of truth; it runs through the same peewee
connection and transaction (db.execute_sql). `SqlStore.param` is the
backend's placeholder (`?` for sqlite3, `%s` for psycopg2).

Multi-row statements take up to CHUNK rows: one statement and one round trip
per chunk on both backends (psycopg2's executemany is a round trip per row).
"""

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache

from ..models import (
    Agent,
    AgentVersion,
    ApiKey,
    Observation,
    Prompt,
    PromptEvent,
    PromptVersion,
    Trace,
    UsageLink,
    VersionBucket,
    VersionCheckpoint,
    db,
)
from ..tally import OBSERVATION_LINKED, OBSERVATION_OUTCOME, TALLY_FIELDS, Signals, Tally
from .base import ApiKeyRow, Bucket, Checkpoint, ComparedVersion, NewObservation, Store, TraceRow

CHUNK = 500  # rows per statement: at most 10 x 500 parameters, well under SQLite's limit

TRACE_COLUMNS = (Trace.id, Trace.trace_id, Trace.has_outcome, Trace.success, Trace.total_cost_usd,
                 Trace.duration_ms, Trace.end_time, Trace.input_tokens, Trace.output_tokens)
LINK_COLUMNS = (UsageLink.version, UsageLink.trace, UsageLink.span_id, UsageLink.create_time)
# In tally.Signals' order after (version, trace).
SIGNAL_COLUMNS = (Observation.kind, Observation.success, Observation.total_cost_usd, Observation.duration_ms,
                  Observation.input_tokens, Observation.output_tokens, Observation.event_time,
                  Observation.link_time)
OBSERVATION_COLUMNS = (Observation.version, Observation.trace, *SIGNAL_COLUMNS)
# A checkpoint's columns, named as the Tally's fields: state moves by name.
CHECKPOINT_TALLY = tuple(getattr(VersionCheckpoint, name) for name in TALLY_FIELDS)
CHECKPOINT_COLUMNS = (VersionCheckpoint.last_observation_id, *CHECKPOINT_TALLY, VersionCheckpoint.sketch,
                      VersionCheckpoint.cost_sketch)
BUCKET_TALLY = tuple(getattr(VersionBucket, name) for name in TALLY_FIELDS)
BUCKET_COLUMNS = (VersionBucket.version, VersionBucket.start_time, *BUCKET_TALLY, VersionBucket.sketch,
                  VersionBucket.cost_sketch, VersionBucket.digest, VersionBucket.cost_digest)
# int() or float() per Tally field: PostgreSQL sums bigints as numeric.
_TALLY_TYPES = tuple(type(getattr(Tally(), name)) for name in TALLY_FIELDS)
_OR_MAX = 100  # version ranges in one statement's OR


def q(name: str) -> str:
    return f'"{name}"'


def c(field) -> str:
    """A field's quoted column name."""
    return q(field.column_name)


def table(model) -> str:
    return q(model._meta.table_name)


def cols(fields: Iterable) -> str:
    return ", ".join(c(f) for f in fields)


def chunks(rows: Sequence, size: int = CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def flat(rows: Sequence[Sequence]) -> list:
    return [value for row in rows for value in row]


@lru_cache(maxsize=1024)
def placeholders(param: str, n: int) -> str:
    return "(" + ", ".join([param] * n) + ")"


@lru_cache(maxsize=1024)
def _insert_sql(param: str, table_name: str, columns: str, width: int, rows: int, returning: str) -> str:
    one = placeholders(param, width)
    sql = f"INSERT INTO {table_name} ({columns}) VALUES {', '.join([one] * rows)} ON CONFLICT DO NOTHING"
    return sql + (f" RETURNING {returning}" if returning else "")


def checkpoint_of(row: Sequence) -> Checkpoint:
    """A Checkpoint from CHECKPOINT_COLUMNS' values."""
    last, *counters, sketch, cost_sketch = row
    return Checkpoint(last, Tally(**dict(zip(TALLY_FIELDS, counters, strict=True))), sketch, cost_sketch)


def time_value(value):
    # SQLite hands timestamps back as text, PostgreSQL as datetimes. The text
    # is ISO 8601 with a space: fromisoformat, in C, is many times faster
    # than peewee's strptime formats, and a window's edge reads many.
    if not isinstance(value, str):
        return value
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return Observation.event_time.python_value(value)


LINKED = Signals(OBSERVATION_LINKED, None, None, None)


def outcome_signals(row: TraceRow) -> Signals:
    return Signals(OBSERVATION_OUTCOME, row.success, row.total_cost_usd, row.duration_ms, row.input_tokens,
                   row.output_tokens, row.end_time)


def signals_of(kind, success, cost, duration, input_tokens=None, output_tokens=None, event_time=None,
               link_time=None) -> Signals:
    # SQLite hands booleans back as 0/1.
    return Signals(kind, None if success is None else bool(success), cost, duration, input_tokens,
                   output_tokens, time_value(event_time), time_value(link_time))


class SqlStore(Store):
    """The statements both backends run alike."""

    param = "?"
    # An aggregate that concatenates blobs ({} is the column): digests have
    # no tag, so a version's concatenate into one, read in one row. SQLite
    # passes a blob's bytes through text and back unchanged in a UTF-8
    # database (SQLite's default; nothing here changes it).
    blob_concat = "CAST(group_concat({}, '') AS BLOB)"

    def execute(self, sql: str, params: Sequence = ()):
        return db.execute_sql(sql, params)

    def execute_prepared(self, name: str, sql: str, params: Sequence):
        """Run `sql` as a statement the database plans once per connection
        where it needs telling (PostgreSQL); sqlite3 caches its own."""
        return self.execute(sql, params)

    def version_param(self, version_id):
        """A version id as a parameter: a uuid.UUID (from a peewee model) is
        not one that sqlite3 takes."""
        return PromptVersion.id.db_value(version_id)

    def insert_ignore(
        self, model, fields: tuple, rows: Sequence[Sequence], returning: tuple = ()
    ) -> list[tuple]:
        """INSERT the rows (tuples in `fields` order), skipping those that
        break a unique key; the `returning` columns of the rows inserted."""
        out: list[tuple] = []
        # Cached by strings: peewee fields compare with == into expressions.
        name, columns, back = table(model), cols(fields), cols(returning)
        for chunk in chunks(rows):
            sql = _insert_sql(self.param, name, columns, len(fields), len(chunk), back)
            cursor = self.execute(sql, flat(chunk))
            if returning:
                out.extend(cursor.fetchall())
        return out

    # -- accounts --------------------------------------------------------------

    def api_key(self, key_hash: str) -> ApiKeyRow | None:
        row = self.execute_prepared("promptgauge_api_key", _api_key_sql(self.param), [key_hash]).fetchone()
        return ApiKeyRow(*row) if row else None

    # -- prompts ----------------------------------------------------------------

    def append_event(self, account_id: int, prompt_id: int, kind: int, created_by: str, *,
                     version: int | None = None, previous_version: int | None = None, label: str = "",
                     split: str | None = None) -> int:
        return PromptEvent.insert(
            account=account_id, prompt=prompt_id, kind=kind, version=version,
            previous_version=previous_version, label=label, split=split, created_by=created_by,
        ).execute()

    # -- ingestion ------------------------------------------------------------

    def version_key(self, version_id):
        """A version id in the form the database hands back (sqlite3: the
        hex text peewee stores), so that ids from a model and from a
        statement compare equal."""
        return self.version_param(version_id)

    def store_links(self, account_id, links, now, fold_at) -> tuple[list[bool], set]:
        links = [(self.version_key(vid), trace_id, span_id) for vid, trace_id, span_id in links]
        # Lock order as every writer's: trace rows in trace_id order
        # (lock_traces), then checkpoints in version order (append_observations).
        linked: list[bool] = [False] * len(links)
        if not links:
            return linked, set()
        with self.transaction():
            traces, created = self.lock_traces(account_id, [trace_id for _, trace_id, _ in links])
            known = set(self.links([t.id for t in traces.values() if t.trace_id not in created]))
            pairs = {(version, trace) for version, trace, _ in known}
            new_links, observations = [], []
            for n, (version_id, trace_id, span_id) in enumerate(links):
                trace = traces[trace_id]
                key = (version_id, trace.id, span_id)
                linked[n] = key not in known
                if key in known:
                    continue
                known.add(key)
                new_links.append(key)
                if (version_id, trace.id) in pairs:  # a trace counts once per version
                    continue
                pairs.add((version_id, trace.id))
                # A trace counts at its end time once it has one, else when linked.
                linked_at = trace.end_time if trace.has_outcome else now
                link = LINKED._replace(event_time=linked_at)
                observations.append(NewObservation(version_id, trace.id, link))
                if trace.has_outcome:
                    observations.append(NewObservation(version_id, trace.id, outcome_signals(trace)))
            create_time = UsageLink.create_time.db_value(now)
            self.insert_ignore(UsageLink, LINK_COLUMNS, [(*key, create_time) for key in new_links])
            due = self.append_observations(observations, fold_at)
        return linked, due

    def linked_versions(self, trace_pks: Sequence[int]) -> list[tuple[object, int, object]]:
        out: list[tuple] = []
        for chunk in chunks(trace_pks):
            rows = self.execute(_first_links_sql(self.param, len(chunk)), list(chunk)).fetchall()
            out.extend((vid, pk, time_value(first)) for vid, pk, first in rows)
        return out

    def links(self, trace_pks: Sequence[int], with_span: bool = True) -> list[tuple]:
        """(version_id, trace pk[, span_id]) of every link of these traces."""
        out: list[tuple] = []
        for chunk in chunks(trace_pks):
            out.extend(self.execute(_links_sql(self.param, len(chunk), with_span), list(chunk)).fetchall())
        return out

    def last_folded(self, version_ids: Sequence, lock: str = "") -> dict:
        """Each version's last folded observation id, the checkpoints taken
        in version order with `lock` (a row-locking clause, or "")."""
        out: dict = {}
        for chunk in chunks(version_ids):
            out.update(self.execute(_last_folded_sql(self.param, len(chunk), lock), list(chunk)).fetchall())
        return out

    def insert_observations(self, rows: Sequence[NewObservation]) -> list[tuple]:
        """(id, version_id) of the observations inserted (a repeat of a unique
        (version, trace, kind) is skipped)."""
        values = [(row.version_id, row.trace_pk, *row.signals) for row in rows]
        return self.insert_ignore(Observation, OBSERVATION_COLUMNS, values,
                                  returning=(Observation.id, Observation.version))

    def append_observations(self, rows: Sequence[NewObservation], fold_at: int) -> set:
        if not rows:
            return set()
        last = self.last_folded(sorted({row.version_id for row in rows}, key=str), self.share_lock)
        # Observation ids only grow, so a tail holds at most (newest id - last
        # folded id) rows: below fold_at, no need to count it. A version
        # without a checkpoint (none should be) has nothing to fold into.
        return {vid for obs_id, vid in self.insert_observations(rows)
                if vid in last and obs_id - last[vid] >= fold_at}

    share_lock = ""  # how append_observations holds checkpoints against a fold

    # -- checkpoints and comparisons ------------------------------------------

    def tail_size(self, version_id, limit: int) -> int:
        vid = self.version_param(version_id)
        return self.execute(_tail_size_sql(self.param), [vid, vid, limit]).fetchone()[0]

    def read_checkpoint(self, version_id, lock: str = "") -> Checkpoint | None:
        row = self.execute(_checkpoint_sql(self.param, lock), [self.version_param(version_id)]).fetchone()
        return checkpoint_of(row) if row else None

    def tail(self, version_id, after: int, limit: int) -> list[tuple[int, Signals]]:
        rows = self.execute(_tail_sql(self.param), [self.version_param(version_id), after, limit]).fetchall()
        return [(row[0], signals_of(*row[1:])) for row in rows]

    def advance_checkpoint(self, version_id, was: int, checkpoint: Checkpoint) -> bool:
        tally = checkpoint.tally.as_dict()
        values = [checkpoint.last_observation_id, *(tally[name] for name in TALLY_FIELDS), checkpoint.sketch,
                  checkpoint.cost_sketch]
        params = [*values, self.version_param(version_id), was]
        return self.execute(_advance_sql(self.param), params).rowcount == 1

    def reset_checkpoint(self, version_id) -> None:
        VersionCheckpoint.update(
            last_observation_id=0, sketch=None, cost_sketch=None, **Tally().as_dict()
        ).where(VersionCheckpoint.version == version_id).execute()
        VersionBucket.delete().where(VersionBucket.version == version_id).execute()

    # -- buckets ----------------------------------------------------------------

    def time_param(self, value):
        return Observation.event_time.db_value(value)

    def buckets(self, version_ids: Sequence, start=None, end=None, starts: Sequence = ()) -> list[Bucket]:
        out: list[Bucket] = []
        for chunk in chunks(list(version_ids), _OR_MAX):
            params = [self.version_param(v) for v in chunk]
            if starts:
                params += [self.time_param(t) for t in starts]
            params += [self.time_param(t) for t in (start, end) if t is not None]
            sql = _buckets_sql(self.param, len(chunk), len(starts), start is not None, end is not None)
            for vid, begin, *counters, sketch, cost_sketch, digest, cost_digest in self.execute(sql, params):
                tally = Tally(**dict(zip(TALLY_FIELDS, counters, strict=True)))
                out.append(Bucket(vid, time_value(begin), tally, sketch, cost_sketch, digest, cost_digest))
        return out

    def bucket_tallies(self, version_ids: Sequence, start, end) -> dict:
        out: dict = {}
        for chunk in chunks(list(version_ids), _OR_MAX):
            params = [self.version_param(v) for v in chunk]
            params += [self.time_param(t) for t in (start, end) if t is not None]
            sql = _bucket_sums_sql(self.param, len(chunk), start is not None, end is not None)
            for vid, *sums in self.execute(sql, params):
                out[vid] = _tally_of(sums)
        return out

    def bucket_sketches(self, version_ids: Sequence, start, end, kind: str, days: tuple | None = None
                        ) -> list[tuple]:
        out: list[tuple] = []
        day_params = [self.time_param(t) for t in days] * 2 if days else []
        for chunk in chunks(list(version_ids), _OR_MAX):
            params = [*day_params, *(self.version_param(v) for v in chunk)]
            params += [self.time_param(t) for t in (start, end) if t is not None]
            sql = _bucket_sketches_sql(self.param, len(chunk), start is not None, end is not None, kind,
                                       self.blob_concat, bool(days))
            out.extend(self.execute(sql, params))
        return out

    def hour_digests(self, version_id, start, end) -> list[tuple]:
        b = VersionBucket
        sql = (f"SELECT {cols((b.digest, b.cost_digest))} FROM {table(b)} "
               f"WHERE {_bucket_where(self.param, 1, True, True)} ORDER BY {c(b.start_time)}")
        return list(self.execute(sql, [self.version_param(version_id), self.time_param(start),
                                       self.time_param(end)]))

    def store_day_digests(self, version_id, day, digest, cost_digest) -> None:
        key = [self.version_param(version_id), self.time_param(day)]
        self.execute(_day_row_sql(self.param), [*key, *(0 for _ in TALLY_FIELDS)])
        b = VersionBucket
        self.execute(f"UPDATE {table(b)} SET {c(b.day_digest)} = {self.param}, {c(b.day_cost_digest)} = "
                     f"{self.param} WHERE {c(b.version)} = {self.param} AND {c(b.start_time)} = {self.param}",
                     [digest, cost_digest, *key])

    def edge(self, version_ids: Sequence, start, end) -> tuple[dict, list[tuple]]:
        tallies: dict = {}
        values: list[tuple] = []
        bounds = [self.time_param(start), self.time_param(end)]
        for chunk in chunks(list(version_ids), _OR_MAX):
            params = [*(self.version_param(v) for v in chunk), *bounds]
            for vid, *sums, moved_in in self.execute(_edge_sums_sql(self.param, len(chunk)), params):
                tally = tallies[vid] = _tally_of(sums)
                tally.total_traces += int(moved_in)
            for vid, moved_out in self.execute(_edge_moved_out_sql(self.param, len(chunk)), params):
                tallies.setdefault(vid, Tally()).total_traces -= int(moved_out)
            values.extend(self.execute(_edge_values_sql(self.param, len(chunk)), params))
        return tallies, values

    def store_buckets(self, buckets: Sequence[Bucket]) -> None:
        for b in buckets:
            tally = b.tally.as_dict()
            params = [self.version_param(b.version_id), self.time_param(b.start_time),
                      *(tally[name] for name in TALLY_FIELDS), b.sketch, b.cost_sketch, b.digest,
                      b.cost_digest]
            self.execute(_store_bucket_sql(self.param), params)

    def observed_between(self, version_ids: Sequence, ranges: Sequence[tuple]) -> bool:
        for chunk in chunks(list(version_ids), _OR_MAX):
            versions = [self.version_param(v) for v in chunk]
            params = flat([*versions, self.time_param(a), self.time_param(b)]
                          for a, b in ranges for _ in range(2))
            (found,) = self.execute(_observed_sql(self.param, len(chunk), len(ranges)), params).fetchone()
            if found:
                return True
        return False

    def comparison(self, account_id: int, name: str) -> list[ComparedVersion] | None:
        rows = self.execute(_comparison_sql(self.param), [account_id, name]).fetchall()
        if not rows:
            return None
        # A prompt without versions is one row of NULLs.
        return [
            ComparedVersion(vid, version, text, checkpoint_of(state) if state[0] is not None else None)
            for vid, version, text, _, *state in rows
            if vid is not None
        ], rows[0][3]

    def checkpoints(self, version_ids: Sequence) -> dict:
        return {vid: self.read_checkpoint(vid) for vid in version_ids}

    def agent_comparison(self, account_id: int, agent: str) -> list[tuple[str, ComparedVersion]] | None:
        rows = self.execute(_agent_comparison_sql(self.param), [account_id, agent]).fetchall()
        if not rows:
            return None
        return [
            (label, ComparedVersion(vid, number, "", checkpoint_of(state) if state[0] is not None else None))
            for vid, number, label, *state in rows
        ]

    def tails(self, after: Sequence[tuple[object, int]]) -> list[tuple[object, Signals]]:
        # An OR of ranges: PostgreSQL plans it as a BitmapOr of (version_id,
        # id) index scans, SQLite as one index range per term; a UNION ALL of
        # per-version selects took longer to plan than to run. In id order,
        # as a fold adds them: the same floating-point sums on every replica,
        # and the same as once the tail is folded.
        out: list[tuple] = []
        for chunk in chunks(after, _OR_MAX):
            sql = _tails_sql(self.param, len(chunk))
            params = flat([(self.version_param(vid), last) for vid, last in chunk])
            out.extend((row[0], signals_of(*row[1:])) for row in self.execute(sql, params))
        return out


# -- statement texts, made once per backend placeholder and shape ----------------


@lru_cache(maxsize=4)
def _api_key_sql(p: str) -> str:
    k = ApiKey
    return (f"SELECT {cols((k.id, k.account, k.key_hash, k.revoke_time))} FROM {table(k)} "
            f"WHERE {c(k.key_hash)} = {p}")


@lru_cache(maxsize=256)
def _links_sql(p: str, n: int, with_span: bool) -> str:
    fields = LINK_COLUMNS[:3] if with_span else LINK_COLUMNS[:2]
    return (f"SELECT {'' if with_span else 'DISTINCT '}{cols(fields)} FROM {table(UsageLink)} "
            f"WHERE {c(UsageLink.trace)} IN {placeholders(p, n)}")


@lru_cache(maxsize=256)
def _first_links_sql(p: str, n: int) -> str:
    link = UsageLink
    return (f"SELECT {cols((link.version, link.trace))}, MIN({c(link.create_time)}) FROM {table(link)} "
            f"WHERE {c(link.trace)} IN {placeholders(p, n)} GROUP BY {cols((link.version, link.trace))}")


@lru_cache(maxsize=256)
def _buckets_sql(p: str, n: int, starts: int, from_start: bool, to_end: bool) -> str:
    b = VersionBucket
    where = _bucket_where(p, n, from_start, to_end, starts)
    return f"SELECT {cols(BUCKET_COLUMNS)} FROM {table(b)} WHERE {where} ORDER BY {c(b.start_time)}"


@lru_cache(maxsize=4)
def _store_bucket_sql(p: str) -> str:
    b = VersionBucket
    updates = ", ".join(f"{c(f)} = excluded.{c(f)}" for f in BUCKET_COLUMNS[2:])
    return (f"INSERT INTO {table(b)} ({cols(BUCKET_COLUMNS)}) VALUES {placeholders(p, len(BUCKET_COLUMNS))} "
            f"ON CONFLICT ({cols((b.version, b.start_time))}) DO UPDATE SET {updates}")


def _tally_of(sums: Sequence) -> Tally:
    """A Tally from SQL sums in TALLY_FIELDS' order (NULL: nothing summed)."""
    return Tally(*(kind(value or 0) for kind, value in zip(_TALLY_TYPES, sums, strict=True)))


def _bucket_where(p: str, n: int, from_start: bool, to_end: bool, starts: int = 0) -> str:
    """Buckets of n versions, of `starts` given hours, from and to bounds:
    parameters in that order."""
    b = VersionBucket
    where = [f"{c(b.version)} IN {placeholders(p, n)}"]
    if starts:
        where.append(f"{c(b.start_time)} IN {placeholders(p, starts)}")
    if from_start:
        where.append(f"{c(b.start_time)} >= {p}")
    if to_end:
        where.append(f"{c(b.start_time)} < {p}")
    return " AND ".join(where)


@lru_cache(maxsize=256)
def _bucket_sums_sql(p: str, n: int, from_start: bool, to_end: bool) -> str:
    b = VersionBucket
    sums = ", ".join(f"SUM({c(f)})" for f in BUCKET_TALLY)
    return (f"SELECT {c(b.version)}, {sums} FROM {table(b)} WHERE {_bucket_where(p, n, from_start, to_end)} "
            f"GROUP BY {c(b.version)}")


@lru_cache(maxsize=256)
def _bucket_sketches_sql(p: str, n: int, from_start: bool, to_end: bool, kind: str, concat: str,
                         days: bool) -> str:
    """Each bucket's sketches; or each version's digests concatenated by
    `concat` (a week is ~50 digests a version: one row instead), a day's
    from the bucket of its first hour where `days` (two bounds) hold it."""
    b = VersionBucket
    where = _bucket_where(p, n, from_start, to_end)
    if kind == "sketch":
        return f"SELECT {cols((b.version, b.sketch, b.cost_sketch))} FROM {table(b)} WHERE {where}"
    in_days = f"{c(b.start_time)} >= {p} AND {c(b.start_time)} < {p}"
    digests = ", ".join(
        concat.format(f"CASE WHEN {in_days} THEN {c(day)} ELSE {c(hour)} END" if days else c(hour))
        for hour, day in ((b.digest, b.day_digest), (b.cost_digest, b.day_cost_digest))
    )
    return f"SELECT {c(b.version)}, {digests} FROM {table(b)} WHERE {where} GROUP BY {c(b.version)}"


@lru_cache(maxsize=4)
def _day_row_sql(p: str) -> str:
    b = VersionBucket
    fields = (b.version, b.start_time, *BUCKET_TALLY)
    return (f"INSERT INTO {table(b)} ({cols(fields)}) VALUES {placeholders(p, len(fields))} "
            f"ON CONFLICT ({cols((b.version, b.start_time))}) DO NOTHING")


def _edge_where(p: str, n: int, time_field) -> str:
    o = Observation
    return (f"{c(o.version)} IN {placeholders(p, n)} AND {c(time_field)} >= {p} AND {c(time_field)} < {p}")


@lru_cache(maxsize=128)
def _edge_sums_sql(p: str, n: int) -> str:
    # tally.Tally.add and tally.in_window, summed over an index range on
    # (version, event_time): a link counts its trace, any other kind is an
    # outcome; an outcome with a link_time moved its trace in (and
    # _edge_moved_out_sql takes it out where it was linked).
    o = Observation
    outcome = f"{c(o.kind)} <> {OBSERVATION_LINKED}"

    def count(column) -> str:
        return f"COUNT(CASE WHEN {outcome} THEN {column} END)"

    def total(column) -> str:
        return f"SUM(CASE WHEN {outcome} THEN {column} END)"

    cost, duration = c(o.total_cost_usd), c(o.duration_ms)
    sums = {
        "total_traces": f"SUM(CASE WHEN {c(o.kind)} = {OBSERVATION_LINKED} THEN 1 ELSE 0 END)",
        "outcome_n": f"SUM(CASE WHEN {outcome} THEN 1 ELSE 0 END)",
        "success_n": count(c(o.success)),
        "success_true": f"SUM(CASE WHEN {outcome} AND {c(o.success)} THEN 1 ELSE 0 END)",
        "cost_n": count(cost),
        "cost_sum": total(cost),
        "duration_n": count(duration),
        "duration_sum": total(duration),
        "cost_squares": total(f"{cost} * {cost}"),
        "duration_squares": total(f"{duration} * {duration}"),
        "input_tokens_n": count(c(o.input_tokens)),
        "input_tokens_sum": total(c(o.input_tokens)),
        "output_tokens_n": count(c(o.output_tokens)),
        "output_tokens_sum": total(c(o.output_tokens)),
    }
    moved_in = f"SUM(CASE WHEN {c(o.link_time)} IS NOT NULL THEN 1 ELSE 0 END)"
    return (f"SELECT {c(o.version)}, {', '.join(sums[name] for name in TALLY_FIELDS)}, {moved_in} "
            f"FROM {table(o)} WHERE {_edge_where(p, n, o.event_time)} GROUP BY {c(o.version)}")


@lru_cache(maxsize=128)
def _observed_sql(p: str, n: int, ranges: int) -> str:
    # One round trip; each EXISTS an index range on (version, time).
    o = Observation
    one = [f"EXISTS (SELECT 1 FROM {table(o)} WHERE {_edge_where(p, n, field)})"
           for _ in range(ranges) for field in (o.event_time, o.link_time)]
    return f"SELECT CASE WHEN {' OR '.join(one)} THEN 1 ELSE 0 END"


@lru_cache(maxsize=128)
def _edge_moved_out_sql(p: str, n: int) -> str:
    o = Observation
    return (f"SELECT {c(o.version)}, COUNT(*) FROM {table(o)} WHERE {_edge_where(p, n, o.link_time)} "
            f"GROUP BY {c(o.version)}")


@lru_cache(maxsize=128)
def _edge_values_sql(p: str, n: int) -> str:
    o = Observation
    return (f"SELECT {cols((o.version, o.duration_ms, o.total_cost_usd))} FROM {table(o)} "
            f"WHERE {_edge_where(p, n, o.event_time)} AND {c(o.kind)} <> {OBSERVATION_LINKED} "
            f"AND ({c(o.duration_ms)} IS NOT NULL OR {c(o.total_cost_usd)} IS NOT NULL)")


@lru_cache(maxsize=256)
def _last_folded_sql(p: str, n: int, lock: str) -> str:
    cp = VersionCheckpoint
    return (f"SELECT {cols((cp.version, cp.last_observation_id))} FROM {table(cp)} "
            f"WHERE {c(cp.version)} IN {placeholders(p, n)} ORDER BY {c(cp.version)} {lock}")


@lru_cache(maxsize=4)
def _tail_size_sql(p: str) -> str:
    o, cp = Observation, VersionCheckpoint
    return (f"SELECT COUNT(*) FROM (SELECT 1 FROM {table(o)} WHERE {c(o.version)} = {p} "
            f"AND {c(o.id)} > (SELECT {c(cp.last_observation_id)} FROM {table(cp)} "
            f"WHERE {c(cp.version)} = {p}) LIMIT {p}) AS tail")


@lru_cache(maxsize=8)
def _checkpoint_sql(p: str, lock: str) -> str:
    cp = VersionCheckpoint
    return f"SELECT {cols(CHECKPOINT_COLUMNS)} FROM {table(cp)} WHERE {c(cp.version)} = {p} {lock}"


@lru_cache(maxsize=4)
def _tail_sql(p: str) -> str:
    o = Observation
    return (f"SELECT {cols((o.id, *SIGNAL_COLUMNS))} FROM {table(o)} WHERE {c(o.version)} = {p} "
            f"AND {c(o.id)} > {p} ORDER BY {c(o.id)} LIMIT {p}")


@lru_cache(maxsize=4)
def _advance_sql(p: str) -> str:
    cp = VersionCheckpoint
    sets = ", ".join(f"{c(f)} = {p}" for f in CHECKPOINT_COLUMNS)
    return f"UPDATE {table(cp)} SET {sets} WHERE {c(cp.version)} = {p} AND {c(cp.last_observation_id)} = {p}"


@lru_cache(maxsize=4)
def _comparison_sql(p: str) -> str:
    pr, v, cp = Prompt, PromptVersion, VersionCheckpoint
    checkpoint_columns = ", ".join(f"c.{c(f)}" for f in CHECKPOINT_COLUMNS)
    return (
        f"SELECT v.{c(v.id)}, v.{c(v.version)}, v.{c(v.template_text)}, p.{c(pr.active_version)}, "
        f"{checkpoint_columns} "
        f"FROM {table(pr)} AS p LEFT JOIN {table(v)} AS v ON v.{c(v.prompt)} = p.{c(pr.id)} "
        f"LEFT JOIN {table(cp)} AS c ON c.{c(cp.version)} = v.{c(v.id)} "
        f"WHERE p.{c(pr.account)} = {p} AND p.{c(pr.name)} = {p} ORDER BY v.{c(v.version)}"
    )


@lru_cache(maxsize=4)
def _agent_comparison_sql(p: str) -> str:
    a, v, cp = Agent, AgentVersion, VersionCheckpoint
    checkpoint_columns = ", ".join(f"c.{c(f)}" for f in CHECKPOINT_COLUMNS)
    # An agent always has a version (its first creates it): an inner join.
    return (
        f"SELECT v.{c(v.id)}, v.{c(v.number)}, v.{c(v.label)}, {checkpoint_columns} "
        f"FROM {table(a)} AS a JOIN {table(v)} AS v ON v.{c(v.agent)} = a.{c(a.id)} "
        f"LEFT JOIN {table(cp)} AS c ON c.{c(cp.version)} = v.{c(v.id)} "
        f"WHERE a.{c(a.account)} = {p} AND a.{c(a.name)} = {p} ORDER BY v.{c(v.number)}"
    )


@lru_cache(maxsize=128)
def _tails_sql(p: str, n: int) -> str:
    o = Observation
    one = f"({c(o.version)} = {p} AND {c(o.id)} > {p})"
    return (f"SELECT {cols((o.version, *SIGNAL_COLUMNS))} FROM {table(o)} "
            f"WHERE {' OR '.join([one] * n)} ORDER BY {c(o.id)}")

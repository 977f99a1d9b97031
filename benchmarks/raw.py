"""The raw database limit for ingestion, and the bulk loader for comparisons.

Both write the rows the server writes for a record, in the real schema (made
by the real `promptgauge accounts create` command, so the tables, unique
indexes and foreign keys are the server's own), with plain DB-API calls.
"""

import datetime
import time
import uuid

from promptgauge.server.backends.sqlite import PRAGMAS as SQLITE_PRAGMAS

SQL = {
    # One usage record: its trace row, the link, the "linked" observation.
    "trace": "INSERT INTO trace (account_id, trace_id, has_outcome) VALUES ({p}, {p}, {p}) {ignore}",
    "link": (
        "INSERT INTO usage_link (version_id, trace_id, span_id, create_time) "
        "SELECT {p}, id, '', {p} FROM trace WHERE account_id = {p} AND trace_id = {p} {ignore}"
    ),
    "linked": (
        "INSERT INTO observation (version_id, trace_id, kind, success, total_cost_usd, duration_ms) "
        "SELECT {p}, id, 1, NULL, NULL, NULL FROM trace WHERE account_id = {p} AND trace_id = {p} {ignore}"
    ),
    # One outcome: the trace row's signals, one observation per linked version.
    "outcome": (
        "UPDATE trace SET has_outcome = {p}, success = {p}, total_cost_usd = {p}, duration_ms = {p}, "
        "outcome_time = {p} WHERE account_id = {p} AND trace_id = {p}"
    ),
    "joined": (
        "INSERT INTO observation (version_id, trace_id, kind, success, total_cost_usd, duration_ms) "
        "SELECT l.version_id, t.id, 2, {p}, {p}, {p} FROM trace t JOIN usage_link l ON l.trace_id = t.id "
        "WHERE t.account_id = {p} AND t.trace_id = {p} {ignore}"
    ),
}


class Raw:
    """A plain DB-API connection with the server's pragmas, and executemany."""

    def __init__(self, url: str):
        self.postgres = url.startswith("postgres")
        if self.postgres:
            import psycopg2
            import psycopg2.extras

            self.conn = psycopg2.connect(url)
            self._batch = psycopg2.extras.execute_batch
            self._values = psycopg2.extras.execute_values
            fmt = {"p": "%s", "ignore": "ON CONFLICT DO NOTHING"}
        else:
            import sqlite3

            self.conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            # The server's own pragmas: WAL, a durable commit, foreign keys
            # checked, the WAL checkpointed as often.
            for pragma, value in {**SQLITE_PRAGMAS, "busy_timeout": 10000}.items():
                self.conn.execute(f"PRAGMA {pragma} = {value}")
            fmt = {"p": "?", "ignore": ""}
        self.sql = {k: v.format(**fmt) for k, v in SQL.items()}
        if not self.postgres:
            self.sql = {
                k: v.replace("INSERT INTO", "INSERT OR IGNORE INTO", 1) if v.startswith("INSERT") else v
                for k, v in self.sql.items()
            }
        self.param = fmt["p"]

    def close(self) -> None:
        self.conn.close()

    def begin(self) -> None:
        if not self.postgres:
            self.conn.execute("BEGIN IMMEDIATE")  # as the server's transactions

    def many(self, cursor, sql: str, rows: list) -> None:
        if self.postgres:
            # psycopg2's own executemany is a round trip per row; execute_batch
            # is its batched equivalent.
            self._batch(cursor, sql, rows, page_size=len(rows) or 1)
        else:
            cursor.executemany(sql, rows)

    def one(self, sql: str, params: tuple = ()) -> tuple:
        cursor = self.conn.cursor()
        cursor.execute(sql.replace("{p}", self.param), params)
        return cursor.fetchone()

    def new_version(self, account_id: int, name: str, versions: int) -> list[str]:
        """A prompt with `versions` versions, as the registry writes them; their ids."""
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        self.begin()
        cursor = self.conn.cursor()
        p = self.param
        cursor.execute(
            f"INSERT INTO prompt (account_id, name, active_version, create_time) VALUES ({p}, {p}, 1, {p})",
            (account_id, name, now),
        )
        (prompt_id,) = self.one(
            "SELECT id FROM prompt WHERE account_id = {p} AND name = {p}", (account_id, name)
        )
        ids = []
        for version in range(1, versions + 1):
            vid = str(uuid.uuid4()) if self.postgres else uuid.uuid4().hex
            cursor.execute(
                "INSERT INTO prompt_version (id, prompt_id, version, template_text, description, "
                f"created_by, create_time) VALUES ({p}, {p}, {p}, {p}, '', 'bench', {p})",
                (vid, prompt_id, version, f"template {version}: {{x}}", now),
            )
            cursor.execute(
                "INSERT INTO version_checkpoint (version_id, last_observation_id, total_traces, "
                "success_n, success_true, cost_n, cost_sum, duration_n, duration_sum) "
                f"VALUES ({p}, 0, 0, 0, 0, 0, 0, 0, 0)",
                (vid,),
            )
            ids.append(vid)
        self.conn.commit()
        return ids


def raw_usage_rate(raw: Raw, account_id: int, version_ids: list[str], traces: list[str],
                   per_commit: int) -> float:
    """Usage records per second: the three rows of each record, one commit per batch."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    cursor = raw.conn.cursor()
    start = time.perf_counter()
    for first in range(0, len(traces), per_commit):
        chunk = traces[first : first + per_commit]
        versions = [version_ids[(first + i) % len(version_ids)] for i in range(len(chunk))]
        raw.begin()
        pairs = list(zip(versions, chunk, strict=True))
        raw.many(cursor, raw.sql["trace"], [(account_id, t, False) for t in chunk])
        raw.many(cursor, raw.sql["link"], [(v, now, account_id, t) for v, t in pairs])
        raw.many(cursor, raw.sql["linked"], [(v, account_id, t) for v, t in pairs])
        raw.conn.commit()
    return len(traces) / (time.perf_counter() - start)


def raw_outcome_rate(raw: Raw, account_id: int, outcomes: list[tuple], per_commit: int) -> float:
    """Outcomes per second: the trace row's update and its joined observation."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    cursor = raw.conn.cursor()
    start = time.perf_counter()
    for first in range(0, len(outcomes), per_commit):
        chunk = outcomes[first : first + per_commit]
        raw.begin()
        raw.many(cursor, raw.sql["outcome"],
                 [(True, ok, cost, ms, now, account_id, t) for t, ok, cost, ms in chunk])
        raw.many(cursor, raw.sql["joined"], [(ok, cost, ms, account_id, t) for t, ok, cost, ms in chunk])
        raw.conn.commit()
    return len(outcomes) / (time.perf_counter() - start)


def bulk_load(raw: Raw, account_id: int, version_ids: list[str], outcomes: list[tuple],
              chunk: int = 10_000) -> None:
    """Traces linked to the versions in turn, each with its outcome: the rows the
    server writes (trace, link, a linked and an outcome observation), loaded
    set-wise, a version's chunk at a time, so observation ids rise as they would.
    The runs ended over the past six and a half days (scattered, not in id
    order; half a day short of the week that the benchmark's windowed compare
    covers a little later), and were linked after their outcome: both
    observations count at the run's end."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    week = 6 * 86_400 + 43_200
    p = raw.param
    cursor = raw.conn.cursor()
    per_version = [outcomes[i :: len(version_ids)] for i in range(len(version_ids))]
    for first in range(0, max(map(len, per_version)), chunk):
        for vid, rows in zip(version_ids, per_version, strict=True):
            rows = rows[first : first + chunk]
            if not rows:
                continue
            raw.begin()
            (low,) = raw.one("SELECT COALESCE(MAX(id), 0) FROM trace")
            values = [
                (account_id, t, True, ok, cost, ms, now,
                 now - datetime.timedelta(seconds=1 + (first + i) * 7919 % week, microseconds=i))
                for i, (t, ok, cost, ms) in enumerate(rows)
            ]
            columns = ("(account_id, trace_id, has_outcome, success, total_cost_usd, duration_ms, "
                       "outcome_time, end_time)")
            if raw.postgres:
                raw._values(cursor, f"INSERT INTO trace {columns} VALUES %s", values, page_size=chunk)
            else:
                cursor.executemany(f"INSERT INTO trace {columns} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)
            mine = f"FROM trace WHERE account_id = {p} AND id > {p} ORDER BY id"
            cursor.execute(
                "INSERT INTO usage_link (version_id, trace_id, span_id, create_time) "
                f"SELECT {p}, id, '', {p} {mine}", (vid, now, account_id, low),
            )
            cursor.execute(
                "INSERT INTO observation (version_id, trace_id, kind, success, total_cost_usd, duration_ms, "
                f"event_time) SELECT {p}, id, 1, NULL, NULL, NULL, end_time {mine}", (vid, account_id, low),
            )
            cursor.execute(
                "INSERT INTO observation (version_id, trace_id, kind, success, total_cost_usd, duration_ms, "
                f"event_time) SELECT {p}, id, 2, success, total_cost_usd, duration_ms, end_time {mine}",
                (vid, account_id, low),
            )
            raw.conn.commit()

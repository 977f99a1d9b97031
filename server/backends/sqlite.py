"""SQLite: one writer at a time.

Every write transaction is IMMEDIATE (storage.SQLITE_PRAGMAS): it takes the
database's write lock when it begins, so nothing is locked row by row, no one
can insert a row between a read and an insert, and a fold never overlaps a
writer. SQLite has no data-modifying CTEs: a usage batch runs its steps one
statement at a time, in one transaction.
"""

from collections.abc import Sequence
from datetime import datetime

from peewee import Database
from playhouse.db_url import connect

from ..models import Agent, Prompt, PromptVersion, Trace, db
from ..settings import SQLITE_SCHEMES
from ..tally import Signals
from .base import Checkpoint, TraceRow, Usage
from .sql import TRACE_COLUMNS, SqlStore, c, chunks, cols, placeholders, table, time_value

SCHEMES = SQLITE_SCHEMES

# WAL lets readers run beside the one writer; synchronous=FULL makes every
# acknowledged commit survive a power cut, not only a crash of the process;
# IMMEDIATE transactions take the write lock up front, so two writers queue
# on busy_timeout instead of failing when a read lock cannot be upgraded.
# The WAL is copied back into the database every 10,000 pages (~40 MB)
# rather than SQLite's 1,000: a unary call's commit appends a few pages, so
# the default ran a checkpoint (writes and an fsync of the database file)
# inside every ~150th call; each commit still fsyncs the WAL.
PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "full",
    "foreign_keys": 1,
    "wal_autocheckpoint": 10000,
}


def open_database(url: str, max_connections: int, timeout: float) -> Database:
    return connect(
        url.replace("sqlite://", "sqlite+pool://", 1) if url.startswith("sqlite://") else url,
        max_connections=max_connections,
        timeout=timeout,
        pragmas={**PRAGMAS, "busy_timeout": int(timeout * 1000)},
        lock_type="IMMEDIATE",
        check_same_thread=False,
        stale_timeout=3600,
    )


class SqliteStore(SqlStore):
    param = "?"

    def lock_schema(self) -> None:
        pass  # the start-up transaction holds the database's write lock

    def drop_foreign_keys(self, model, parent) -> None:
        # SQLite cannot drop a constraint: the table is made again without
        # it (its rows and ids copied), as SQLite's ALTER TABLE page says.
        name, old = model._meta.table_name, model._meta.table_name + "_before_migration"
        self.execute(f'ALTER TABLE "{name}" RENAME TO "{old}"')
        for (index,) in self.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", [old]
        ).fetchall():
            self.execute(f'DROP INDEX "{index}"')
        db.create_tables([model])
        # Only the columns the old table has: a later migration adds the
        # rest (and SQLite would read a missing "name" as a string literal).
        have = {row[1] for row in self.execute(f'PRAGMA table_info("{old}")').fetchall()}
        columns = cols([f for f in model._meta.sorted_fields if f.column_name in have])
        self.execute(f'INSERT INTO "{name}" ({columns}) SELECT {columns} FROM "{old}"')
        self.execute(f'DROP TABLE "{old}"')

    def lock_prompt(self, account_id: int, name: str) -> Prompt | None:
        return Prompt.get_or_none((Prompt.account == account_id) & (Prompt.name == name))

    def lock_agent(self, account_id: int, name: str) -> Agent | None:
        return Agent.get_or_none((Agent.account == account_id) & (Agent.name == name))

    def by_code_point(self, field):
        return field  # SQLite compares text with memcmp (BINARY) unless told otherwise

    # -- traces -----------------------------------------------------------------

    def traces(self, account_id: int, trace_ids: Sequence[str]) -> dict[str, TraceRow]:
        out: dict[str, TraceRow] = {}
        for chunk in chunks(trace_ids):
            sql = (f"SELECT {cols(TRACE_COLUMNS)} FROM {table(Trace)} WHERE {c(Trace.account)} = ? "
                   f"AND {c(Trace.trace_id)} IN {placeholders('?', len(chunk))}")
            for pk, trace_id, has_outcome, success, *rest, end, tokens_in, tokens_out in self.execute(
                sql, [account_id, *chunk]
            ):
                success = None if success is None else bool(success)
                out[trace_id] = TraceRow(pk, trace_id, bool(has_outcome), success, *rest, time_value(end),
                                         tokens_in, tokens_out)
        return out

    def lock_traces(self, account_id: int, trace_ids: Sequence[str]) -> tuple[dict[str, TraceRow], set[str]]:
        ids = sorted(set(trace_ids))
        # Read first: an outcome's trace mostly exists already, and an insert
        # that conflicts costs more than a read (10% of an outcome batch).
        rows = self.traces(account_id, ids)
        missing = [t for t in ids if t not in rows]
        created = self.insert_ignore(
            Trace, (Trace.account, Trace.trace_id, Trace.has_outcome),
            [(account_id, t, False) for t in missing], returning=(Trace.id, Trace.trace_id),
        )
        rows.update((t, TraceRow(pk, t, False, None, None, None)) for pk, t in created)
        return rows, {t for _, t in created}

    def set_outcomes(self, outcomes: Sequence[tuple[int, Signals]], now: datetime) -> None:
        t = Trace
        sql = (f"UPDATE {table(t)} SET {c(t.has_outcome)} = 1, {c(t.success)} = ?, "
               f"{c(t.total_cost_usd)} = ?, {c(t.duration_ms)} = ?, {c(t.input_tokens)} = ?, "
               f"{c(t.output_tokens)} = ?, {c(t.end_time)} = ?, {c(t.outcome_time)} = ? WHERE {c(t.id)} = ?")
        when = t.outcome_time.db_value(now)
        # sqlite3's executemany steps one prepared statement, in C.
        rows = [(s.success, s.total_cost_usd, s.duration_ms, s.input_tokens, s.output_tokens,
                 t.end_time.db_value(s.event_time or now), when, pk) for pk, s in outcomes]
        db.cursor().executemany(sql, rows)

    # -- usage ------------------------------------------------------------------

    def version_ids(self, account_id: int, names: Sequence[str]) -> dict[tuple[str, int], object]:
        """(prompt name, version) -> version id, for these prompt names of an account."""
        V = PromptVersion
        out: dict = {}
        for chunk in chunks(names):
            sql = (f"SELECT p.{c(Prompt.name)}, v.{c(V.version)}, v.{c(V.id)} FROM {table(V)} AS v "
                   f"JOIN {table(Prompt)} AS p ON v.{c(V.prompt)} = p.{c(Prompt.id)} "
                   f"WHERE p.{c(Prompt.account)} = ? "
                   f"AND p.{c(Prompt.name)} IN {placeholders('?', len(chunk))}")
            rows = self.execute(sql, [account_id, *chunk])
            out.update(((name, version), vid) for name, version, vid in rows)
        return out

    def store_usage(
        self, account_id: int, usages: Sequence[Usage], now: datetime, fold_at: int
    ) -> tuple[list[bool | None], set]:
        versions = self.version_ids(account_id, sorted({u.prompt_name for u in usages}))
        linked: list[bool | None] = [None] * len(usages)
        todo = [(n, (versions[u.prompt_name, u.prompt_version], u.trace_id, u.span_id))
                for n, u in enumerate(usages) if (u.prompt_name, u.prompt_version) in versions]
        new, due = self.store_links(account_id, [link for _, link in todo], now, fold_at)
        for (n, _), is_new in zip(todo, new, strict=True):
            linked[n] = is_new
        return linked, due

    # -- checkpoints ------------------------------------------------------------

    def lock_checkpoint(self, version_id) -> Checkpoint | None:
        return self.read_checkpoint(version_id)

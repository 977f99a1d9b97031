"""Ingestion and aggregation: trace outcomes, usage links, comparisons.

How the five storage invariants of DESIGN.md hold:
- Each batch is one transaction: it commits whole or leaves nothing.
- Idempotency is unique keys: (account, trace_id) on traces, (version,
  trace, span) on links, (version, trace, kind) on observations.
- A link and an outcome for one trace serialize on the trace's row lock, so
  whichever comes second writes the observation that joins them.
- Observations are append-only; a version's checkpoint folds them in id order
  and a comparison reads the checkpoint plus the short tail after it.
- On PostgreSQL a writer holds a SHARE lock on the checkpoints of the
  versions it adds observations to, and a fold takes the row FOR UPDATE:
  so a fold never passes over a lower id that is not yet committed.
- Every writer locks its trace rows first, in trace_id order (on PostgreSQL
  one upsert), then the checkpoints, in version order: no deadlocks.

On PostgreSQL a usage batch is one statement (statements.store_usage: one
round trip instead of seven); SQLite, which has no data-modifying CTEs, runs
the same steps one by one (Analytics._store_usage).
"""

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from . import statements, validation
from .accounts import Caller
from .errors import AlreadyExists, DomainError, InvalidArgument, NotFound
from .models import (
    OBSERVATION_LINKED,
    OBSERVATION_OUTCOME,
    VersionCheckpoint,
    db,
    utcnow,
)
from .sketch import LatencySketch
from .statements import TraceRow
from .storage import is_postgres

log = logging.getLogger("promptgauge.analytics")

RECORDED = "recorded"
DUPLICATE = "duplicate"

# A version's checkpoint advances once this many observations wait after it,
# so a comparison never reads more than about this many rows per version. A
# fold is cheap (the sketch compresses only every ~700 durations, whatever
# this is), so it can be small: a comparison of 10 versions reads < 2k rows.
FOLD_AT = 200

_HEX32 = re.compile(r"[0-9a-f]{32}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PRINTABLE = re.compile(r"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?")


def canonical_trace_id(raw: str, field: str = "trace_id") -> str:
    """A UUID or a 32-hex OpenTelemetry trace id, as 32 lower-case hex digits."""
    value = raw.strip().lower()
    if _UUID.fullmatch(value):
        # Dashes only where a UUID has them: uuid.UUID() would take 32 hex
        # digits with dashes anywhere ("----" + 32 hex, misplaced groups).
        value = value.replace("-", "")
    if not _HEX32.fullmatch(value) or value == "0" * 32:
        shown = raw if len(raw) <= 40 else raw[:40] + "..."
        raise InvalidArgument(
            f"{field} {shown!r} is neither a UUID nor a 32-hex-digit OpenTelemetry trace id "
            "(all zeros is invalid)" if raw else f"{field} is required",
            field=field,
            reason="INVALID_TRACE_ID" if raw else "EMPTY_FIELD",
        )
    return value


# Far past any real run (a trillion dollars; 31 years in ms), and low enough
# that sums over billions of traces stay finite: an average is never inf.
MAX_AMOUNT = 1e12


def _check_amount(value: float | None, field: str) -> float | None:
    if value is not None and not (0 <= value <= MAX_AMOUNT):  # NaN fails every comparison
        raise InvalidArgument(
            f"{field} must be a finite number from 0 to {MAX_AMOUNT:g}, got {value}",
            field=field,
            reason="INVALID_NUMBER",
        )
    return value


@dataclass(frozen=True)
class Outcome:
    trace_id: str
    success: bool | None
    total_cost_usd: float | None
    duration_ms: float | None

    @classmethod
    def checked(cls, trace_id: str, success, total_cost_usd, duration_ms) -> "Outcome":
        outcome = cls(
            canonical_trace_id(trace_id),
            success,
            _check_amount(total_cost_usd, "total_cost_usd"),
            _check_amount(duration_ms, "duration_ms"),
        )
        if success is None and total_cost_usd is None and duration_ms is None:
            raise InvalidArgument(
                "an outcome must carry at least one of success, total_cost_usd, duration_ms",
                field="outcome",
                reason="EMPTY_OUTCOME",
            )
        return outcome

    def signals(self) -> tuple:
        return (self.success, self.total_cost_usd, self.duration_ms)


@dataclass(frozen=True)
class Usage:
    prompt_name: str
    prompt_version: int
    trace_id: str
    span_id: str  # "" links the trace as a whole

    @classmethod
    def checked(cls, prompt_name: str, prompt_version: int, trace_id: str, span_id: str | None) -> "Usage":
        validation.check_name(prompt_name, "prompt_name")
        validation.check_version(prompt_version, "prompt_version")
        if span_id is not None and (len(span_id) > 128 or not _PRINTABLE.fullmatch(span_id)):
            raise InvalidArgument(
                "span_id must be 1-128 printable ASCII characters, not starting or ending "
                "with a space",
                field="span_id",
                reason="INVALID_SPAN_ID",
            )
        return cls(prompt_name, prompt_version, canonical_trace_id(trace_id), span_id or "")


Result = str | DomainError  # RECORDED, DUPLICATE, or why the record was rejected


@dataclass(frozen=True)
class VersionMetrics:
    version: int
    template_text: str
    total_traces: int
    success_rate: float | None
    avg_cost_usd: float | None
    avg_latency_ms: float | None
    p95_latency_ms: float | None


@dataclass
class _Tally:
    """A version's counters: a checkpoint's (statements.CHECKPOINT_COLUMNS[1:8]),
    plus observations folded in."""

    total_traces: int = 0
    success_n: int = 0
    success_true: int = 0
    cost_n: int = 0
    cost_sum: float = 0.0
    duration_n: int = 0
    duration_sum: float = 0.0

    def add(self, kind: int, success, total_cost_usd, duration_ms) -> float | None:
        """Fold one observation's columns; return its duration, for the sketch."""
        if kind == OBSERVATION_LINKED:
            self.total_traces += 1
            return None
        if success is not None:
            self.success_n += 1
            self.success_true += bool(success)
        if total_cost_usd is not None:
            self.cost_n += 1
            self.cost_sum += total_cost_usd
        if duration_ms is not None:
            self.duration_n += 1
            self.duration_sum += duration_ms
        return duration_ms


def _checked(items: Sequence[tuple], check) -> tuple[list[Result], list[tuple[int, object]]]:
    """Results so far (RECORDED until shown otherwise, or why a record is
    invalid) and the valid records with their indexes."""
    results: list[Result] = [RECORDED] * len(items)
    valid = []
    for i, item in enumerate(items):
        try:
            valid.append((i, check(*item)))
        except DomainError as error:
            results[i] = error
    return results, valid


def _lock_traces(caller: Caller, trace_ids: Iterable[str]) -> tuple[dict[str, TraceRow], set[str]]:
    """The trace rows of these ids, created if new, locked for this
    transaction; and which of them were created (a new trace has no links;
    PostgreSQL's single upsert does not tell, so none are said to be)."""
    ids = sorted(set(trace_ids))  # one lock order for every writer: no deadlocks
    if is_postgres():
        return statements.lock_traces(caller.account_id, ids), set()
    # SQLite: one writer at a time, the database locked; nothing to lock row
    # by row, and no one to insert a row between the read and the insert.
    # Read first: an outcome's trace mostly exists already, and an insert
    # that conflicts costs more than a read (10% of an outcome batch).
    rows = statements.traces(caller.account_id, ids)
    missing = [t for t in ids if t not in rows]
    created = statements.new_traces(caller.account_id, missing) if missing else {}
    rows.update(created)
    return rows, set(created)


def _outcome_row(version_id, trace_pk: int, outcome) -> tuple:
    """An observation (in statements.OBSERVATION_COLUMNS order) of an outcome joining a version."""
    return (version_id, trace_pk, OBSERVATION_OUTCOME, outcome.success, outcome.total_cost_usd,
            outcome.duration_ms)


class Analytics:
    """Every AnalyticsService operation."""

    def __init__(self, fold_at: int = FOLD_AT):
        self.fold_at = fold_at

    # -- ingestion ----------------------------------------------------------

    def record_outcomes(self, caller: Caller, items: Sequence[tuple]) -> list[Result]:
        """Store a batch of (trace_id, success, cost, duration) in one transaction."""
        results, valid = _checked(items, Outcome.checked)
        if not valid:
            return results
        with db.atomic():
            traces, created = _lock_traces(caller, (o.trace_id for _, o in valid))
            new: dict[int, Outcome] = {}
            for i, outcome in valid:
                row = traces[outcome.trace_id]
                stored = new.get(row.id) or (
                    Outcome(row.trace_id, row.success, row.total_cost_usd, row.duration_ms)
                    if row.has_outcome
                    else None
                )
                if stored is None:
                    new[row.id] = outcome
                elif stored.signals() == outcome.signals():
                    results[i] = DUPLICATE
                else:
                    results[i] = AlreadyExists(
                        f"trace {outcome.trace_id} already has a different outcome "
                        f"(success={stored.success}, total_cost_usd={stored.total_cost_usd}, "
                        f"duration_ms={stored.duration_ms}); an outcome is recorded once",
                        field="trace_id",
                        reason="OUTCOME_CONFLICT",
                    )
            statements.set_outcomes([(pk, *o.signals()) for pk, o in new.items()], utcnow(), is_postgres())
            created_pks = {traces[t].id for t in created}
            linked = statements.links([pk for pk in new if pk not in created_pks], with_span=False)
            due = self._add_observations([_outcome_row(vid, pk, new[pk]) for vid, pk in linked])
        self._fold_if_due(due)
        return results

    def record_usage(self, caller: Caller, items: Sequence[tuple]) -> list[Result]:
        """Store a batch of (prompt_name, prompt_version, trace_id, span_id) links."""
        results, valid = _checked(items, Usage.checked)
        if not valid:
            return results
        usages = [u for _, u in valid]
        if is_postgres():
            linked, due = statements.store_usage(caller.account_id, usages, utcnow(), self.fold_at)
        else:
            linked, due = self._store_usage(caller, usages)
        stored = set()
        for (i, usage), new in zip(valid, linked, strict=True):
            if new is None:
                results[i] = NotFound(
                    f"prompt {usage.prompt_name!r} has no version {usage.prompt_version}",
                    field="prompt_version",
                    reason="VERSION_NOT_FOUND",
                )
            elif not new or usage in stored:  # an earlier record of the batch stored it
                results[i] = DUPLICATE
            else:
                stored.add(usage)
        self._fold_if_due(due)
        return results

    def _store_usage(self, caller: Caller, usages: Sequence[Usage]) -> tuple[list, set]:
        """SQLite's statements.store_usage, step by step: for each usage, None
        if its version does not exist, else whether its link is new; and the
        versions whose tail may have reached fold_at."""
        names = sorted({u.prompt_name for u in usages})
        versions = statements.version_ids(caller.account_id, names)
        linked: list = [None] * len(usages)
        todo = [(n, u, versions[u.prompt_name, u.prompt_version]) for n, u in enumerate(usages)
                if (u.prompt_name, u.prompt_version) in versions]
        if not todo:
            return linked, set()
        with db.atomic():
            traces, created = _lock_traces(caller, (u.trace_id for _, u, _ in todo))
            links = set(statements.links([t.id for t in traces.values() if t.trace_id not in created]))
            pairs = {(version, trace) for version, trace, _ in links}
            new_links, observations = [], []
            for n, usage, version_id in todo:
                trace = traces[usage.trace_id]
                key = (version_id, trace.id, usage.span_id)
                linked[n] = key not in links
                if key in links:
                    continue
                links.add(key)
                new_links.append(key)
                if (version_id, trace.id) in pairs:
                    continue
                pairs.add((version_id, trace.id))
                observations.append((version_id, trace.id, OBSERVATION_LINKED, None, None, None))
                if trace.has_outcome:
                    observations.append(_outcome_row(version_id, trace.id, trace))
            statements.insert_links(new_links, utcnow())
            due = self._add_observations(observations)
        return linked, due

    def _add_observations(self, rows: list[tuple]) -> set:
        """Append observations, holding their versions' checkpoints against a
        fold; the versions whose tail may have reached fold_at.

        Observation ids only grow, so a tail holds at most (newest id - last
        folded id) rows: below fold_at, no need to count it."""
        if not rows:
            return set()
        versions = sorted({row[0] for row in rows}, key=str)
        last = statements.last_folded(versions, share=is_postgres())
        # A version without a checkpoint (none should be: they are made with
        # their version) has nothing to fold into.
        return {
            vid for obs_id, vid in statements.insert_observations(rows)
            if vid in last and obs_id - last[vid] >= self.fold_at
        }

    # -- aggregation --------------------------------------------------------

    def compare(self, caller: Caller, name: str) -> list[VersionMetrics]:
        """Metrics of every version of a prompt, by version ascending."""
        validation.check_name(name)
        # One statement for the prompt, its versions and their checkpoints,
        # one for the tails after the checkpoints as read there.
        rows = statements.comparison(caller.account_id, name)
        if not rows:
            raise NotFound(f"prompt {name!r} not found", field="name", reason="PROMPT_NOT_FOUND")
        versions = [row for row in rows if row[0] is not None]
        checkpoints = {vid: cp for vid, _, _, *cp in versions if cp[0] is not None}
        tallies = {vid: _Tally(*cp[1:8]) for vid, cp in checkpoints.items()}
        durations: dict = {vid: [] for vid in checkpoints}
        tail_sizes: dict = dict.fromkeys(checkpoints, 0)
        if checkpoints:
            # Observations are append-only, so the tail after each checkpoint
            # as read above stays right even if a fold commits meanwhile.
            for vid, *signals in statements.tails([(vid, cp[0]) for vid, cp in checkpoints.items()]):
                tail_sizes[vid] += 1
                duration = tallies[vid].add(*signals)
                if duration is not None:
                    durations[vid].append(duration)
        metrics = []
        for vid, version, template_text, *_ in versions:
            t = tallies.get(vid, _Tally())
            cp = checkpoints.get(vid)
            sketch = LatencySketch.from_bytes(cp[8] if cp else None)
            metrics.append(
                VersionMetrics(
                    version=version,
                    template_text=template_text,
                    total_traces=t.total_traces,
                    success_rate=t.success_true / t.success_n if t.success_n else None,
                    avg_cost_usd=t.cost_sum / t.cost_n if t.cost_n else None,
                    avg_latency_ms=t.duration_sum / t.duration_n if t.duration_n else None,
                    p95_latency_ms=sketch.quantile(0.95, durations.get(vid, ())),
                )
            )
        self._fold_if_due({vid for vid, n in tail_sizes.items() if n >= self.fold_at}, counted=True)
        return metrics

    # -- checkpoints --------------------------------------------------------

    def _fold_if_due(self, version_ids: set, counted: bool = False) -> None:
        """Advance the checkpoints of versions whose tail reached fold_at.

        The batch that triggered it is committed already: a fold that fails
        loses nothing, and the next batch or comparison tries again."""
        for vid in version_ids:
            try:
                if counted or self.tail_size(vid) >= self.fold_at:
                    self.fold(vid)
            except Exception:  # noqa: BLE001 - derived state only; logged, retried later
                log.warning("checkpoint fold of version %s failed; it will be retried", vid, exc_info=True)

    def tail_size(self, version_id) -> int:
        """Observations after a version's checkpoint (counting at most fold_at)."""
        return statements.tail_size(version_id, self.fold_at)

    def fold(self, version_id, limit: int = 100_000) -> int:
        """Fold up to `limit` observations into a version's checkpoint; return how many."""
        with db.atomic():
            cp = statements.checkpoint(version_id, lock=is_postgres())
            rows = statements.tail(version_id, cp[0], limit) if cp else []
            if not rows:
                return 0
            tally = _Tally(*cp[1:8])
            durations = [d for d in (tally.add(*row[1:]) for row in rows) if d is not None]
            sketch = LatencySketch.from_bytes(cp[8]).add(durations)
            # Guarded by the last folded id: a checkpoint moved by anyone else
            # since it was read is left alone, never folded twice.
            state = (rows[-1][0], *vars(tally).values(), sketch.to_bytes())
            return len(rows) if statements.advance(version_id, cp[0], state) else 0

    def rebuild(self, version_id) -> None:
        """Recompute a version's checkpoint from its observations alone."""
        with db.atomic():
            VersionCheckpoint.update(
                last_observation_id=0, sketch=None, **vars(_Tally())
            ).where(VersionCheckpoint.version == version_id).execute()
        while self.fold(version_id):
            pass

"""Ingestion and aggregation: trace outcomes, usage links, comparisons.

How the five storage invariants of DESIGN.md hold:
- Each batch is one transaction: it commits whole or leaves nothing.
- Idempotency is unique keys: (account, trace_id) on traces, (version,
  trace, span) on links, (version, trace, kind) on observations.
- A link and an outcome for one trace serialize on the trace's row, so
  whichever comes second writes the observation that joins them.
- Observations are append-only; a version's checkpoint folds them in id order
  and a comparison reads the checkpoint plus the short tail after it.
- A writer holds the checkpoints of the versions it adds observations to
  against a fold, and a fold is guarded by the last folded id: a fold never
  passes over an id that is not committed yet, and never folds a row twice.
How each backend locks is its own (backends/).
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from . import validation
from .accounts import Caller
from .backends.base import Checkpoint, ComparedVersion, NewObservation, Store, Usage
from .errors import AlreadyExists, DomainError, InvalidArgument, NotFound
from .models import utcnow
from .sketch import LatencySketch
from .tally import OBSERVATION_OUTCOME, Signals, Tally

log = logging.getLogger("promptgauge.analytics")

RECORDED = "recorded"
DUPLICATE = "duplicate"

# A version's checkpoint advances once this many observations wait after it,
# so a comparison never reads more than about this many rows per version. A
# fold is cheap (the sketch compresses only every ~700 durations, whatever
# this is), so it can be small: a comparison of 10 versions reads < 2k rows.
FOLD_AT = 200


@dataclass(frozen=True)
class Outcome:
    trace_id: str
    success: bool | None
    total_cost_usd: float | None
    duration_ms: float | None

    @classmethod
    def checked(cls, trace_id: str, success, total_cost_usd, duration_ms) -> "Outcome":
        outcome = cls(
            validation.canonical_trace_id(trace_id),
            success,
            validation.check_amount(total_cost_usd, "total_cost_usd"),
            validation.check_amount(duration_ms, "duration_ms"),
        )
        if success is None and total_cost_usd is None and duration_ms is None:
            raise InvalidArgument(
                "an outcome must carry at least one of success, total_cost_usd, duration_ms",
                field="outcome",
                reason="EMPTY_OUTCOME",
            )
        return outcome

    def signals(self) -> Signals:
        return Signals(OBSERVATION_OUTCOME, self.success, self.total_cost_usd, self.duration_ms)


def checked_usage(prompt_name: str, prompt_version: int, trace_id: str, span_id: str | None) -> Usage:
    validation.check_name(prompt_name, "prompt_name")
    validation.check_version(prompt_version, "prompt_version")
    span = validation.check_span_id(span_id)
    return Usage(prompt_name, prompt_version, validation.canonical_trace_id(trace_id), span)


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


def _valid_trace_ids(items: Sequence[tuple], check) -> list[str]:
    """The canonical trace ids of the records that pass `check`."""
    return [record.trace_id for _, record in _checked(items, check)[1]]


class Analytics:
    """Every AnalyticsService operation, on one Store."""

    def __init__(self, store: Store, fold_at: int = FOLD_AT):
        self.store = store
        self.fold_at = fold_at

    # -- ingestion ----------------------------------------------------------

    def record_outcomes(
        self, caller: Caller, items: Sequence[tuple], defer_folds: set | None = None
    ) -> list[Result]:
        """Store a batch of (trace_id, success, cost, duration) in one transaction
        (a savepoint inside the caller's; then `defer_folds` collects the
        versions due a fold, for the caller to fold once it has committed)."""
        results, valid = _checked(items, Outcome.checked)
        if not valid:
            return results
        store = self.store
        with store.transaction():
            traces, created = store.lock_traces(caller.account_id, [o.trace_id for _, o in valid])
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
            store.set_outcomes([(pk, o.signals()) for pk, o in new.items()], utcnow())
            # A trace created by this batch has no links to look up.
            created_pks = {traces[t].id for t in created}
            linked = store.linked_versions([pk for pk in new if pk not in created_pks])
            due = store.append_observations(
                [NewObservation(vid, pk, new[pk].signals()) for vid, pk in linked], self.fold_at
            )
        self._fold_or_defer(due, defer_folds)
        return results

    def record_usage(
        self, caller: Caller, items: Sequence[tuple], defer_folds: set | None = None
    ) -> list[Result]:
        """Store a batch of (prompt_name, prompt_version, trace_id, span_id) links
        (`defer_folds` as in record_outcomes)."""
        results, valid = _checked(items, checked_usage)
        if not valid:
            return results
        linked, due = self.store.store_usage(
            caller.account_id, [u for _, u in valid], utcnow(), self.fold_at
        )
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
        self._fold_or_defer(due, defer_folds)
        return results

    def record_export(
        self, caller: Caller, usages: Sequence[tuple], outcomes: Sequence[tuple]
    ) -> tuple[list[Result], list[Result]]:
        """Store links (as record_usage takes them) and outcomes (as
        record_outcomes does) together in one transaction, as an OTLP export
        brings them; the results of each."""
        due: set = set()
        with self.store.transaction():
            # Every trace of the export locked first, in one statement and so
            # in the one lock order of every writer: the two steps below lock
            # their own traces again, which waits for no one. Locked step by
            # step instead, two exports could each hold a trace the other
            # waits for. (A trace whose only link names no version keeps its
            # row, which carries nothing.)
            traces = _valid_trace_ids(usages, checked_usage) + _valid_trace_ids(outcomes, Outcome.checked)
            if traces:
                self.store.lock_traces(caller.account_id, traces)
            outcome_results = self.record_outcomes(caller, outcomes, due)
            usage_results = self.record_usage(caller, usages, due)
        self._fold_if_due(due)
        return usage_results, outcome_results

    def link_trace(self, caller: Caller, trace_id: str, version_ids: Sequence) -> None:
        """Link a trace to versions known to exist (prompt or agent versions),
        as usage records link it: idempotent, the outcome before or after."""
        trace = validation.canonical_trace_id(trace_id)
        _, due = self.store.store_links(
            caller.account_id, [(vid, trace, "") for vid in version_ids], utcnow(), self.fold_at
        )
        self._fold_if_due(due)

    # -- aggregation --------------------------------------------------------

    def compare(self, caller: Caller, name: str) -> list[VersionMetrics]:
        """Metrics of every version of a prompt, by version ascending."""
        validation.check_name(name)
        # One statement for the prompt, its versions and their checkpoints,
        # one for the tails after the checkpoints as read there.
        versions = self.store.comparison(caller.account_id, name)
        if versions is None:
            raise NotFound(f"prompt {name!r} not found", field="name", reason="PROMPT_NOT_FOUND")
        return self.measure(versions)

    def measure(self, versions: list[ComparedVersion]) -> list[VersionMetrics]:
        """Metrics of versions (of a prompt or of an agent) from their
        checkpoints as read and the tails after them, in the given order."""
        checkpoints = {v.id: v.checkpoint for v in versions if v.checkpoint is not None}
        tallies = {vid: cp.tally.copy() for vid, cp in checkpoints.items()}
        durations: dict = {vid: [] for vid in checkpoints}
        tail_sizes: dict = dict.fromkeys(checkpoints, 0)
        if checkpoints:
            # Observations are append-only, so the tail after each checkpoint
            # as read above stays right even if a fold commits meanwhile.
            after = [(vid, cp.last_observation_id) for vid, cp in checkpoints.items()]
            for vid, signals in self.store.tails(after):
                tail_sizes[vid] += 1
                duration = tallies[vid].add(signals)
                if duration is not None:
                    durations[vid].append(duration)
        metrics = []
        for v in versions:
            tally = tallies.get(v.id, Tally())
            sketch = LatencySketch.from_bytes(v.checkpoint.sketch if v.checkpoint else None)
            metrics.append(
                VersionMetrics(
                    version=v.version,
                    template_text=v.template_text,
                    total_traces=tally.total_traces,
                    success_rate=tally.success_rate,
                    avg_cost_usd=tally.avg_cost_usd,
                    avg_latency_ms=tally.avg_latency_ms,
                    p95_latency_ms=sketch.quantile(0.95, durations.get(v.id, ())),
                )
            )
        self._fold_if_due({vid for vid, n in tail_sizes.items() if n >= self.fold_at}, counted=True)
        return metrics

    # -- checkpoints --------------------------------------------------------

    def _fold_or_defer(self, version_ids: set, defer_folds: set | None) -> None:
        if defer_folds is None:
            self._fold_if_due(version_ids)
        else:
            defer_folds |= version_ids

    def _fold_if_due(self, version_ids: set, counted: bool = False) -> None:
        """Advance the checkpoints of versions whose tail reached fold_at.

        The batch that triggered it is committed already: a fold that fails
        loses nothing, and the next batch or comparison tries again."""
        for vid in version_ids:
            try:
                if counted or self.store.tail_size(vid, self.fold_at) >= self.fold_at:
                    self.fold(vid)
            except Exception:  # noqa: BLE001 - derived state only; logged, retried later
                log.warning("checkpoint fold of version %s failed; it will be retried", vid, exc_info=True)

    def fold(self, version_id, limit: int = 100_000) -> int:
        """Fold up to `limit` observations into a version's checkpoint; return how many."""
        store = self.store
        with store.transaction():
            cp = store.lock_checkpoint(version_id)
            rows = store.tail(version_id, cp.last_observation_id, limit) if cp else []
            if not rows:
                return 0
            tally = cp.tally.copy()
            durations = tally.add_all(signals for _, signals in rows)
            sketch = LatencySketch.from_bytes(cp.sketch).add(durations)
            # Guarded by the last folded id: a checkpoint moved by anyone else
            # since it was read is left alone, never folded twice.
            folded = Checkpoint(rows[-1][0], tally, sketch.to_bytes())
            return len(rows) if store.advance_checkpoint(version_id, cp.last_observation_id, folded) else 0

    def rebuild(self, version_id, step: int = 10_000) -> None:
        """Recompute a version's checkpoint from its observations alone: the
        same bytes as the incremental one (the sketch does not depend on how
        folds are chunked). In steps, so that no fold holds the checkpoint
        (and the version's writers) for long."""
        with self.store.transaction():
            self.store.reset_checkpoint(version_id)
        while self.fold(version_id, step):
            pass

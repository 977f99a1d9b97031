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
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from . import stats, validation
from .accounts import Caller
from .backends.base import Bucket, Checkpoint, ComparedVersion, NewObservation, Store, Usage
from .errors import AlreadyExists, DomainError, InvalidArgument, NotFound
from .models import utcnow
from .sketch import LatencySketch, array_quantiles, digest, merged_digest, payload, points_array
from .tally import OBSERVATION_OUTCOME, Signals, Tally, in_window

log = logging.getLogger("promptgauge.analytics")

RECORDED = "recorded"
DUPLICATE = "duplicate"

# A version's checkpoint advances once this many observations wait after it,
# so a comparison never reads more than about this many rows per version. A
# fold is cheap (the sketch compresses only every ~700 durations, whatever
# this is), so it can be small: a comparison of 10 versions reads < 2k rows.
FOLD_AT = 200


HOUR = timedelta(hours=1)
# Up to this many values of a version in a window, its quantiles are exact
# (stats.percentile_cont); past it, from the t-digests. Always below the
# sketch's COMPRESS_AT, so those values are still held exactly.
EXACT_QUANTILES_UP_TO = 1000
DEFAULT_CONFIDENCE = 0.95


DAY = timedelta(days=1)


def day_floor(t: datetime) -> datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def day_ceil(t: datetime) -> datetime:
    floor = day_floor(t)
    return floor if floor == t else floor + DAY


def hour_floor(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def hour_ceil(t: datetime) -> datetime:
    floor = hour_floor(t)
    return floor if floor == t else floor + HOUR


@dataclass(frozen=True)
class Outcome:
    """How one run went: the one entry point of every ingestion path (the
    streams, unary calls, OTLP). `end_time` None means "when received"."""

    trace_id: str
    success: bool | None
    total_cost_usd: float | None
    duration_ms: float | None
    input_tokens: int | None = None
    output_tokens: int | None = None
    end_time: datetime | None = None  # naive UTC

    @classmethod
    def checked(
        cls, trace_id: str, success, total_cost_usd, duration_ms, input_tokens=None, output_tokens=None,
        end_time=None,
    ) -> "Outcome":
        if isinstance(end_time, DomainError):  # a timestamp the caller could not have meant
            raise end_time
        outcome = cls(
            validation.canonical_trace_id(trace_id),
            success,
            validation.check_amount(total_cost_usd, "total_cost_usd"),
            validation.check_amount(duration_ms, "duration_ms"),
            validation.check_tokens(input_tokens, "input_tokens"),
            validation.check_tokens(output_tokens, "output_tokens"),
            validation.check_event_time(end_time, "end_time"),
        )
        if success is None and total_cost_usd is None and duration_ms is None and (
            input_tokens is None and output_tokens is None
        ):
            raise InvalidArgument(
                "an outcome must carry at least one of success, total_cost_usd, duration_ms, "
                "input_tokens, output_tokens",
                field="outcome",
                reason="EMPTY_OUTCOME",
            )
        return outcome

    def signals(self, received: datetime | None = None) -> Signals:
        return Signals(OBSERVATION_OUTCOME, self.success, self.total_cost_usd, self.duration_ms,
                       self.input_tokens, self.output_tokens, self.end_time or received)

    def same_as(self, stored: "Outcome") -> bool:
        """Whether this outcome, sent again, repeats `stored`: an end time
        left unset matches whatever receipt time was stored."""
        mine, theirs = self.signals()[:6], stored.signals()[:6]
        return mine == theirs and (self.end_time is None or self.end_time == stored.end_time)


def checked_usage(prompt_name: str, prompt_version: int, trace_id: str, span_id: str | None) -> Usage:
    validation.check_name(prompt_name, "prompt_name")
    validation.check_version(prompt_version, "prompt_version")
    span = validation.check_span_id(span_id)
    return Usage(prompt_name, prompt_version, validation.canonical_trace_id(trace_id), span)


Result = str | DomainError  # RECORDED, DUPLICATE, or why the record was rejected


@dataclass(frozen=True)
class Significance:
    """A version against the baseline: diffs are this version minus the
    baseline; None where a test cannot be run (a side without the signal, or
    with fewer than 2 values for a t-test)."""

    baseline_version: int
    success_rate_diff: float | None
    success_rate_p_value: float | None
    avg_cost_diff: float | None
    avg_cost_p_value: float | None
    avg_latency_diff: float | None
    avg_latency_p_value: float | None
    significant: bool


@dataclass(frozen=True)
class VersionMetrics:
    version: int
    template_text: str
    total_traces: int
    success_rate: float | None
    avg_cost_usd: float | None
    avg_latency_ms: float | None
    p95_latency_ms: float | None
    p50_latency_ms: float | None = None
    p90_latency_ms: float | None = None
    p99_latency_ms: float | None = None
    p50_cost_usd: float | None = None
    p95_cost_usd: float | None = None
    avg_input_tokens: float | None = None
    avg_output_tokens: float | None = None
    total_cost_usd: float = 0.0
    success_count: int = 0
    outcome_count: int = 0
    success_rate_interval: tuple[float, float] | None = None
    vs_baseline: Significance | None = None
    is_active: bool = False
    is_baseline: bool = False


@dataclass(frozen=True)
class SeriesBucket:
    start_time: datetime
    total_traces: int
    success_rate: float | None
    avg_cost_usd: float | None
    p50_latency_ms: float | None
    p95_latency_ms: float | None


@dataclass
class _Measure:
    """What a version has in a window, gathered from checkpoints, buckets
    and rows: counters, and the latency and cost distributions as packed
    points (stored sketches or bucket digests: sketch.payload) plus loose
    (mean, count) points."""

    tally: Tally = field(default_factory=Tally)
    durations: list = field(default_factory=list)  # (mean, count) points
    costs: list = field(default_factory=list)
    duration_blobs: list = field(default_factory=list)  # packed points
    cost_blobs: list = field(default_factory=list)

    def add_sketches(self, tally: Tally, sketch: bytes | None, cost_sketch: bytes | None) -> None:
        self.tally.merge(tally)
        self.add_blobs(payload(sketch), payload(cost_sketch))

    def add_blobs(self, durations: bytes | None, costs: bytes | None) -> None:
        if durations:
            self.duration_blobs.append(durations)
        if costs:
            self.cost_blobs.append(costs)

    def add_signals(self, signals: Signals, moved: int = 0) -> None:
        duration = self.tally.add(signals)
        self.tally.total_traces += moved
        if duration is not None:
            self.durations.append((duration, 1.0))
        if signals.kind == OBSERVATION_OUTCOME and signals.total_cost_usd is not None:
            self.costs.append((signals.total_cost_usd, 1.0))

    def add(self, other: "_Measure") -> None:
        self.tally.merge(other.tally)
        self.durations += other.durations
        self.costs += other.costs
        self.duration_blobs += other.duration_blobs
        self.cost_blobs += other.cost_blobs

    def quantiles(self, which: str, qs: Sequence[float]) -> list[float | None]:
        if which == "duration":
            flat = points_array(self.duration_blobs, self.durations)
        else:
            flat = points_array(self.cost_blobs, self.costs)
        # Values only (every bucket still exact, or a digest of few values):
        # exact at any count, as cheap as the estimate.
        if (flat[:, 1] == 1.0).all():
            values = np.sort(flat[:, 0]).tolist()
            return [stats.percentile_cont(values, q, presorted=True) for q in qs]
        return array_quantiles(flat, qs)


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
        now = utcnow()
        with store.transaction():
            traces, created = store.lock_traces(caller.account_id, [o.trace_id for _, o in valid])
            new: dict[int, Outcome] = {}
            for i, outcome in valid:
                row = traces[outcome.trace_id]
                stored = new.get(row.id) or (
                    Outcome(row.trace_id, row.success, row.total_cost_usd, row.duration_ms, row.input_tokens,
                            row.output_tokens, row.end_time)
                    if row.has_outcome
                    else None
                )
                if stored is None:
                    new[row.id] = outcome
                elif outcome.same_as(stored):
                    results[i] = DUPLICATE
                else:
                    results[i] = AlreadyExists(
                        f"trace {outcome.trace_id} already has a different outcome "
                        f"(success={stored.success}, total_cost_usd={stored.total_cost_usd}, "
                        f"duration_ms={stored.duration_ms}); an outcome is recorded once",
                        field="trace_id",
                        reason="OUTCOME_CONFLICT",
                    )
            store.set_outcomes([(pk, o.signals(now)) for pk, o in new.items()], now)
            # A trace created by this batch has no links to look up.
            created_pks = {traces[t].id for t in created}
            linked = store.linked_versions([pk for pk in new if pk not in created_pks])
            # Its link counted the trace at the link's time: the outcome moves
            # it to its end time (tally.in_window).
            due = store.append_observations(
                [NewObservation(vid, pk, new[pk].signals(now)._replace(link_time=first))
                 for vid, pk, first in linked],
                self.fold_at,
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

    def compare(
        self,
        caller: Caller,
        name: str,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        baseline_version: int | None = None,
        confidence_level: float = 0.0,
    ) -> list[VersionMetrics]:
        """Metrics of every version of a prompt, by version ascending, over
        the half-open window [start_time, end_time) of event time (None:
        unbounded), each against the baseline (the active version unless
        given) at the confidence level (0 means 0.95)."""
        validation.check_name(name)
        confidence = check_confidence(confidence_level)
        check_window(start_time, end_time)
        if baseline_version is not None:
            validation.check_version(baseline_version, "baseline_version")
        # One statement for the prompt, its versions and their checkpoints.
        compared = self.store.comparison(caller.account_id, name)
        if compared is None:
            raise NotFound(f"prompt {name!r} not found", field="name", reason="PROMPT_NOT_FOUND")
        versions, active = compared
        if baseline_version is not None and baseline_version not in {v.version for v in versions}:
            raise NotFound(
                f"baseline_version {baseline_version}: prompt {name!r} has no such version",
                field="baseline_version",
                reason="VERSION_NOT_FOUND",
            )
        return self.compare_measured(versions, active, start_time, end_time, baseline_version, confidence)

    def compare_measured(
        self,
        versions: Sequence[ComparedVersion],
        active: int | None,
        start_time: datetime | None,
        end_time: datetime | None,
        baseline_version: int | None,
        confidence: float,
    ) -> list[VersionMetrics]:
        """The comparison of any measured versions (a prompt's, or an agent's:
        their ids key the same observations, checkpoints and buckets), each
        with its checkpoint as read (None: read here), checked arguments."""
        checkpoints = {v.id: v.checkpoint for v in versions}
        missing = [vid for vid, cp in checkpoints.items() if cp is None]
        if missing:
            checkpoints.update(self.store.checkpoints(missing))
        measures = self.measure([v.id for v in versions], checkpoints, start_time, end_time)
        baseline = baseline_version if baseline_version is not None else active
        return _metrics(versions, active, measures, baseline, confidence)

    def measure(self, version_ids: Sequence, checkpoints: dict, start: datetime | None,
                end: datetime | None) -> dict:
        """What each measured version (a prompt's or an agent's) has in the
        window: a _Measure per version id. `checkpoints` are as read with
        the versions (Store.comparison); the work grows with the versions
        and the window's hours, never with the traces behind them."""
        checkpoints = {vid: cp for vid, cp in checkpoints.items() if cp is not None}
        if start is None and end is None:
            measures, tail_sizes = self._all_time(checkpoints)
        else:
            measures, tail_sizes = self._windowed(version_ids, checkpoints, start, end)
        self._fold_if_due({vid for vid, n in tail_sizes.items() if n >= self.fold_at}, counted=True)
        return {vid: measures.get(vid, _Measure()) for vid in version_ids}

    def _all_time(self, checkpoints: dict) -> tuple[dict, dict]:
        measures = {}
        for vid, cp in checkpoints.items():
            measures[vid] = _Measure()
            measures[vid].add_sketches(cp.tally, cp.sketch, cp.cost_sketch)
        tail_sizes = self._add_tails(measures, checkpoints, None, None)
        return measures, tail_sizes

    def _add_tails(self, measures: dict, checkpoints: dict, start, end) -> dict:
        """Add the observations after each checkpoint (as read) that count in
        [start, end); return each version's tail size. Observations are
        append-only, so that tail stays right even if a fold commits
        meanwhile."""
        tail_sizes: dict = dict.fromkeys(checkpoints, 0)
        if not checkpoints:
            return tail_sizes
        after = [(vid, cp.last_observation_id) for vid, cp in checkpoints.items()]
        for vid, signals in self.store.tails(after):
            tail_sizes[vid] += 1
            here, moved = in_window(signals, start, end)
            if here:
                measures[vid].add_signals(signals, moved)
            elif moved:
                measures[vid].tally.total_traces += moved
        return tail_sizes

    def _windowed(self, version_ids: Sequence, checkpoints: dict, start, end) -> tuple[dict, dict]:
        """The window's hours, each from its buckets (plus the tails after the
        checkpoints) where no observation of these versions falls in the
        part of it outside the window (a window that ends now, say), else
        exactly, from the observation rows inside the window."""
        low = hour_floor(start) if start is not None else None
        high = hour_ceil(end) if end is not None else None
        outside = [(a, b) for a, b in ((low, start), (end, high)) if a is not None and a < b]
        if outside and checkpoints:
            # Checked after the buckets are read: an observation there now was
            # committed before any bucket read could hold it (and rows are
            # never removed), so none there means none in what was read.
            measures, tail_sizes = self._middle({}, checkpoints, low, high)
            if not self.store.observed_between(version_ids, outside):
                return {vid: measures.get(vid) or _Measure() for vid in version_ids}, tail_sizes
        return self._with_edges(version_ids, checkpoints, start, end)

    def _with_edges(self, version_ids: Sequence, checkpoints: dict, start, end) -> tuple[dict, dict]:
        """Whole hours from the buckets (plus the tails after the checkpoints),
        and the partial hours at either edge exactly, from the observation
        rows whose times fall in them (counters summed in SQL)."""
        middle_from = hour_ceil(start) if start is not None else None
        middle_to = hour_floor(end) if end is not None else None
        edges = []
        if middle_from is not None and middle_to is not None and middle_from > middle_to:
            edges.append((start, end))  # inside one hour: no whole hour at all
            middle = None
        else:
            middle = (middle_from, middle_to)
            if start is not None and start < middle_from:
                edges.append((start, middle_from))
            if end is not None and middle_to < end:
                edges.append((middle_to, end))
        measures = {vid: _Measure() for vid in version_ids}
        for low, high in edges:
            tallies, values = self.store.edge(version_ids, low, high)
            for vid, tally in tallies.items():
                measures[vid].tally.merge(tally)
            for vid, duration, cost in values:
                if duration is not None:
                    measures[vid].durations.append((duration, 1.0))
                if cost is not None:
                    measures[vid].costs.append((cost, 1.0))
        tail_sizes: dict = {}
        if middle is not None and middle[0] != middle[1] and checkpoints:
            middles, tail_sizes = self._middle(measures, checkpoints, *middle)
            for vid, m in middles.items():
                measures[vid].add(m)
        return measures, tail_sizes

    def _middle(self, edges: dict, checkpoints: dict, start, end) -> tuple[dict, dict]:
        """The whole hours [start, end) of these versions: their buckets'
        counters summed, the tails after the checkpoints, and per version and
        signal either every value (the buckets' sketches: at most
        EXACT_QUANTILES_UP_TO in the window with the `edges` measures', so
        still exact) or the buckets' digests.

        A fold that commits between reading a checkpoint and its buckets
        would count its rows twice (in a bucket and in the tail), so the
        checkpoints are read again after the buckets, and it all again in the
        rare case a fold came in between (one every FOLD_AT rows)."""
        ids = list(checkpoints)
        for _ in range(10):
            sums = self.store.bucket_tallies(ids, start, end)
            measures = {vid: _Measure(tally=tally) for vid, tally in sums.items()}
            tails = {vid: _Measure() for vid in ids}
            tail_sizes = self._add_tails(tails, checkpoints, start, end)
            exact: dict = {}  # version id -> (durations exact, costs exact)
            for vid, m in measures.items():
                edge = edges.get(vid) or _Measure()
                durations = m.tally.duration_n + len(tails[vid].durations) + len(edge.durations)
                costs = m.tally.cost_n + len(tails[vid].costs) + len(edge.costs)
                exact[vid] = (durations <= EXACT_QUANTILES_UP_TO, costs <= EXACT_QUANTILES_UP_TO)
            for digests in (True, False):
                wanted = [vid for vid, flags in exact.items() if any(f != digests for f in flags)]
                # Digests are stored packed already; sketches carry a tag.
                unpack = bytes if digests else payload
                if not wanted:
                    rows = []
                elif digests:
                    rows = self._digests(wanted, start, end)
                else:
                    rows = self.store.bucket_sketches(wanted, start, end, "sketch")
                for vid, durations, costs in rows:
                    duration_exact, cost_exact = exact[vid]
                    measures[vid].add_blobs(
                        unpack(durations) if durations and duration_exact != digests else None,
                        unpack(costs) if costs and cost_exact != digests else None,
                    )
            folded = self.store.last_folded(ids)
            if all(folded.get(vid) == cp.last_observation_id for vid, cp in checkpoints.items()):
                for vid, tail in tails.items():
                    measures.setdefault(vid, _Measure()).add(tail)
                return measures, tail_sizes
            checkpoints = self.store.checkpoints(ids)
        raise RuntimeError("checkpoints kept moving while a comparison read them; try again")

    def _digests(self, version_ids: list, start, end) -> list[tuple]:
        """(version id, latency, cost) digests of the buckets in [start,
        end): the whole days' merged digests, and the hours' around them."""
        # Bounds far outside any event time stand for an unbounded window.
        day_from = day_ceil(start) if start is not None else datetime(1, 1, 1)
        day_to = day_floor(end) if end is not None else datetime(9999, 1, 1)
        days = (day_from, day_to) if day_from < day_to else None
        return self.store.bucket_sketches(version_ids, start, end, "digest", days)

    def _buckets(self, checkpoints: dict, start, end) -> tuple[list[Bucket], dict]:
        """The buckets of these versions in [start, end), and the checkpoints
        they go with (read again after the buckets, as _middle does)."""
        ids = list(checkpoints)
        for _ in range(10):
            buckets = self.store.buckets(ids, start, end)
            folded = self.store.last_folded(ids)
            if all(folded.get(vid) == cp.last_observation_id for vid, cp in checkpoints.items()):
                return buckets, checkpoints
            checkpoints = self.store.checkpoints(ids)
        raise RuntimeError("checkpoints kept moving while a comparison read them; try again")

    def time_series(
        self, caller: Caller, name: str, start: datetime | None, end: datetime | None, period: timedelta
    ) -> list[tuple[int, list[SeriesBucket]]]:
        """Per version, one bucket per period (an hour or a day, aligned to
        UTC) that has data in [start, end), widened to whole hours: [(version,
        buckets)] by version ascending."""
        validation.check_name(name)
        check_window(start, end)
        compared = self.store.comparison(caller.account_id, name)
        if compared is None:
            raise NotFound(f"prompt {name!r} not found", field="name", reason="PROMPT_NOT_FOUND")
        versions, _ = compared
        low = hour_floor(start) if start is not None else None
        high = hour_ceil(end) if end is not None else None
        checkpoints = {v.id: v.checkpoint for v in versions if v.checkpoint is not None}
        buckets, checkpoints = self._buckets(checkpoints, low, high) if checkpoints else ([], {})
        periods: dict = defaultdict(_Measure)  # (version id, period start) -> _Measure

        def period_of(t: datetime) -> datetime:
            return _period_start(t, period)

        for bucket in buckets:
            periods[bucket.version_id, period_of(bucket.start_time)].add_sketches(
                bucket.tally, bucket.sketch, bucket.cost_sketch
            )
        after = [(vid, cp.last_observation_id) for vid, cp in checkpoints.items()]
        for vid, signals in self.store.tails(after) if after else ():
            moved = signals.link_time is not None
            if signals.event_time is not None and in_window(signals, low, high)[0]:
                periods[vid, period_of(signals.event_time)].add_signals(signals, int(moved))
            if moved and in_window(signals._replace(event_time=signals.link_time), low, high)[0]:
                periods[vid, period_of(signals.link_time)].tally.total_traces -= 1
        out = []
        for v in versions:
            mine = sorted((t, m) for (vid, t), m in periods.items() if vid == v.id)
            with_data = [(t, m) for t, m in mine if m.tally.total_traces or m.tally.outcome_n]
            out.append((v.version, [_series_bucket(t, m) for t, m in with_data]))
        return out

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
        try:
            with store.transaction():
                cp = store.lock_checkpoint(version_id)
                rows = store.tail(version_id, cp.last_observation_id, limit) if cp else []
                if not rows:
                    return 0
                measure = _Measure()
                measure.tally = cp.tally.copy()
                signals = [s for _, s in rows]
                for observation in signals:
                    measure.add_signals(observation)
                durations = [mean for mean, _ in measure.durations]
                costs = [mean for mean, _ in measure.costs]
                sketch = LatencySketch.from_bytes(cp.sketch).add(durations)
                cost_sketch = LatencySketch.from_bytes(cp.cost_sketch).add(costs)
                buckets = self._folded_buckets(version_id, signals)
                store.store_buckets(buckets)
                for day in sorted({day_floor(b.start_time) for b in buckets}):
                    hours = store.hour_digests(version_id, day, day + DAY)
                    store.store_day_digests(version_id, day, merged_digest([d for d, _ in hours]),
                                            merged_digest([c for _, c in hours]))
                # Guarded by the last folded id: a checkpoint moved by anyone
                # else since it was read is left alone, and the buckets written
                # above roll back with it: never folded twice.
                folded = Checkpoint(rows[-1][0], measure.tally, sketch.to_bytes(), cost_sketch.to_bytes())
                if not store.advance_checkpoint(version_id, cp.last_observation_id, folded):
                    raise _Overtaken
                return len(rows)
        except _Overtaken:
            return 0

    def _folded_buckets(self, version_id, signals: Sequence[Signals]) -> list[Bucket]:
        """The buckets of `version_id` with these observations (in id order)
        folded in, each into the hour of its event time; an outcome that moved
        its trace takes it out of its link's hour."""
        added: dict[datetime, list[Signals]] = defaultdict(list)
        moved: dict[datetime, int] = defaultdict(int)
        for observation in signals:
            if observation.event_time is None:
                continue
            hour = hour_floor(observation.event_time)
            added[hour].append(observation)
            if observation.link_time is not None:
                moved[hour] += 1
                moved[hour_floor(observation.link_time)] -= 1
        hours = sorted(set(added) | {h for h, n in moved.items() if n})
        if not hours:
            return []
        stored = {b.start_time: b for b in self.store.buckets([version_id], hours[0], hours[-1] + HOUR)}
        out = []
        for hour in hours:
            old = stored.get(hour) or Bucket(version_id, hour, Tally(), None, None)
            measure = _Measure()
            measure.tally = old.tally.copy()
            for observation in added.get(hour, ()):
                measure.add_signals(observation)
            measure.tally.total_traces += moved.get(hour, 0)
            sketch = _added(old.sketch, measure.durations)
            cost_sketch = _added(old.cost_sketch, measure.costs)
            out.append(Bucket(version_id, hour, measure.tally, sketch, cost_sketch,
                              digest(sketch), digest(cost_sketch)))
        return out

    def rebuild(self, version_id, step: int = 10_000) -> None:
        """Recompute a version's checkpoint from its observations alone: the
        same bytes as the incremental one (the sketch does not depend on how
        folds are chunked). In steps, so that no fold holds the checkpoint
        (and the version's writers) for long."""
        with self.store.transaction():
            self.store.reset_checkpoint(version_id)
        while self.fold(version_id, step):
            pass


class _Overtaken(Exception):
    """A fold found its checkpoint moved by another: its work is rolled back."""


def _added(sketch: bytes | None, points: list) -> bytes | None:
    if not points:
        return sketch
    return LatencySketch.from_bytes(sketch).add(mean for mean, _ in points).to_bytes()


def check_confidence(value: float) -> float:
    """A confidence level: 0 means 0.95; else strictly between 0 and 1."""
    if value == 0:
        return DEFAULT_CONFIDENCE
    if not 0 < value < 1:  # NaN fails too
        raise InvalidArgument(
            f"confidence_level must be between 0 and 1 (exclusive), or 0 for 0.95; got {value}",
            field="confidence_level",
            reason="INVALID_CONFIDENCE_LEVEL",
        )
    return value


def check_window(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and start >= end:
        raise InvalidArgument(
            f"start_time ({start.isoformat()}Z) must be before end_time ({end.isoformat()}Z)",
            field="start_time",
            reason="EMPTY_WINDOW",
        )


def _period_start(t: datetime, period: timedelta) -> datetime:
    hour = hour_floor(t)
    return hour if period <= HOUR else hour.replace(hour=0)


def _series_bucket(start: datetime, m: _Measure) -> SeriesBucket:
    p50, p95 = m.quantiles("duration", (0.5, 0.95))
    return SeriesBucket(
        start_time=start,
        total_traces=m.tally.total_traces,
        success_rate=m.tally.success_rate,
        avg_cost_usd=m.tally.avg_cost_usd,
        p50_latency_ms=p50,
        p95_latency_ms=p95,
    )


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _metrics(versions, active: int | None, measures: dict, baseline: int | None,
             confidence: float) -> list[VersionMetrics]:
    """Each version's metrics, and its significance against the baseline:
    p-values of each test Holm-corrected over the versions compared, and a
    version significant when any of its corrected tests rejects."""
    by_version = {v.version: measures[v.id] for v in versions}
    base = by_version.get(baseline) if baseline is not None else None
    others = [v.version for v in versions if base is not None and v.version != baseline]
    tests: dict[int, tuple] = {}
    for number in others:
        t, b = by_version[number].tally, base.tally
        tests[number] = (
            stats.two_proportion_p_value(t.success_true, t.success_n, b.success_true, b.success_n),
            stats.welch_p_value(stats.Moments(t.cost_n, t.cost_sum, t.cost_squares),
                                stats.Moments(b.cost_n, b.cost_sum, b.cost_squares)),
            stats.welch_p_value(stats.Moments(t.duration_n, t.duration_sum, t.duration_squares),
                                stats.Moments(b.duration_n, b.duration_sum, b.duration_squares)),
        )
    alpha = 1 - confidence
    rejected = [stats.holm_reject([tests[n][k] for n in others], alpha) for k in range(3)]
    significant = {n: any(rejected[k][i] for k in range(3)) for i, n in enumerate(others)}
    out = []
    for v in versions:
        m = by_version[v.version]
        t = m.tally
        p50, p90, p95, p99 = m.quantiles("duration", (0.5, 0.9, 0.95, 0.99))
        cost50, cost95 = m.quantiles("cost", (0.5, 0.95))
        vs = None
        if v.version in tests:
            b = base.tally
            p_success, p_cost, p_latency = tests[v.version]
            vs = Significance(
                baseline_version=baseline,
                success_rate_diff=_diff(t.success_rate, b.success_rate),
                success_rate_p_value=p_success,
                avg_cost_diff=_diff(t.avg_cost_usd, b.avg_cost_usd),
                avg_cost_p_value=p_cost,
                avg_latency_diff=_diff(t.avg_latency_ms, b.avg_latency_ms),
                avg_latency_p_value=p_latency,
                significant=significant[v.version],
            )
        out.append(VersionMetrics(
            version=v.version,
            template_text=v.template_text,
            total_traces=t.total_traces,
            success_rate=t.success_rate,
            avg_cost_usd=t.avg_cost_usd,
            avg_latency_ms=t.avg_latency_ms,
            p95_latency_ms=p95,
            p50_latency_ms=p50,
            p90_latency_ms=p90,
            p99_latency_ms=p99,
            p50_cost_usd=cost50,
            p95_cost_usd=cost95,
            avg_input_tokens=t.avg_input_tokens,
            avg_output_tokens=t.avg_output_tokens,
            total_cost_usd=t.cost_sum,
            success_count=t.success_true,
            outcome_count=t.outcome_n,
            success_rate_interval=stats.wilson_interval(t.success_true, t.success_n, confidence),
            vs_baseline=vs,
            is_active=v.version == active,
            is_baseline=base is not None and v.version == baseline,
        ))
    return out

"""Windows, percentiles, tokens, intervals and significance of
ComparePromptVersions, GetVersionTimeSeries and WatchComparison, through the
real gRPC boundary on every backend, each statistic checked against an
independent computation (numpy, scipy) from the raw values sent."""

import datetime
import random
import threading
import uuid

import grpc
import numpy as np
import pytest
from conftest import in_batches, new_trace, usage_record
from scipy import stats as sp

from promptgauge.client import PromptGaugeClient, PromptGaugeError
from promptgauge.server import storage
from promptgauge.server.analytics import Analytics
from promptgauge.server.models import Prompt, PromptVersion
from promptgauge.v1 import analytics_pb2

US = datetime.timedelta(microseconds=1)
UTC = datetime.timezone.utc


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"  # unique on the shared session database


def _outcome(trace, end=None, success=None, cost=None, duration=None, tokens_in=None, tokens_out=None):
    out = analytics_pb2.TraceOutcome(
        trace_id=trace,
        success=success,
        total_cost_usd=cost,
        duration_ms=duration,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
    )
    if end is not None:
        out.end_time.FromDatetime(end)
    return out


def _fold_all(name: str) -> None:
    """Fold every observation of the prompt's versions into their checkpoints
    and buckets, as ingestion does once enough gather."""
    with storage.db.connection_context():
        ids = [v.id for v in PromptVersion.select().join(Prompt).where(Prompt.name == name)]
        analytics = Analytics(storage.store())
        for vid in ids:
            while analytics.fold(vid, limit=7):
                pass


def _raises(call, code: grpc.StatusCode, field: str | None = None) -> PromptGaugeError:
    with pytest.raises(PromptGaugeError) as err:
        call()
    assert err.value.code == code, err.value
    if field is not None:
        assert err.value.field == field, err.value
    return err.value


# -- windows, exact at the bounds ------------------------------------------------


@pytest.fixture
def windowed(client):
    """A version with runs around two bounds that are not on the hour, a
    microsecond apart, over several hours; half linked before their outcome
    (their link, received now, counts them until the outcome moves them to
    their end time), half after."""
    name = _name("window")
    client.create_prompt_version(name, "one")
    start = datetime.datetime(2026, 11, 20, 9, 17, 23, 456789)
    end = start + datetime.timedelta(hours=5, minutes=12, seconds=1, microseconds=3)
    rng = random.Random(7)
    times = [start - US, start, start + US, end - US, end, end + US]
    times += [start + datetime.timedelta(minutes=rng.uniform(0, 312)) for _ in range(40)]
    times += [start - datetime.timedelta(hours=1, minutes=5), end + datetime.timedelta(hours=2)]
    runs = []
    for i, t in enumerate(times):
        runs.append(
            (
                new_trace(),
                t,
                rng.random() < 0.7,
                round(rng.uniform(0.001, 0.01), 6),
                rng.lognormvariate(6, 0.5),
                rng.randint(10, 900),
                rng.randint(1, 300),
                i % 2 == 0,
            )
        )
    for run in runs:
        if run[7]:  # linked first
            client.record_usage(name, 1, run[0])
    client.stream_trace_outcomes([[_outcome(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in runs]])
    client.stream_usage([[usage_record(name, 1, r[0]) for r in runs if not r[7]]])
    return name, start, end, runs


def _expected(runs, low, high) -> dict:
    inside = [r for r in runs if low <= r[1] < high]
    durations = [r[4] for r in inside]
    costs = [r[3] for r in inside]
    out = {
        "total_traces": len(inside),
        "outcome_count": len(inside),
        "success_count": sum(r[2] for r in inside),
        "total_cost_usd": pytest.approx(sum(costs), rel=1e-12),
        "avg_input_tokens": pytest.approx(np.mean([r[5] for r in inside]), rel=1e-12),
        "avg_output_tokens": pytest.approx(np.mean([r[6] for r in inside]), rel=1e-12),
    }
    for q in (50, 90, 95, 99):
        out[f"p{q}_latency_ms"] = pytest.approx(float(np.percentile(durations, q)), rel=1e-12)
    for q in (50, 95):
        out[f"p{q}_cost_usd"] = pytest.approx(float(np.percentile(costs, q)), rel=1e-12)
    return out


def _got(metrics) -> dict:
    return {
        "total_traces": metrics.total_traces,
        "outcome_count": metrics.outcome_count,
        "success_count": metrics.success_count,
        "total_cost_usd": metrics.total_cost_usd,
        "avg_input_tokens": metrics.avg_input_tokens,
        "avg_output_tokens": metrics.avg_output_tokens,
        **{f"p{q}_latency_ms": getattr(metrics, f"p{q}_latency_ms") for q in (50, 90, 95, 99)},
        **{f"p{q}_cost_usd": getattr(metrics, f"p{q}_cost_usd") for q in (50, 95)},
    }


def _bounds(start, end):
    """Windows with each bound a microsecond either side of a run."""
    return [
        (start, end),
        (start + US, end),
        (start - US, end),
        (start, end + US),
        (start, end - US),
        (start + US, end + US + US),
        (start - datetime.timedelta(hours=3), end + datetime.timedelta(hours=3)),
        (start + datetime.timedelta(minutes=1), start + datetime.timedelta(minutes=50)),  # inside one hour
    ]


def test_a_window_counts_exactly_the_runs_inside_it_to_the_microsecond(client, windowed):
    name, start, end, runs = windowed
    # Unfolded (all in the tails), then folded into buckets: the same answers.
    for folded in (False, True):
        if folded:
            _fold_all(name)
        for low, high in _bounds(start, end):
            (v1,) = client.compare_prompt_versions(name, start_time=low, end_time=high).versions
            assert _got(v1) == _expected(runs, low, high), (folded, low, high)


def test_time_zones_on_the_client_mean_the_same_instant(client, windowed):
    name, start, end, runs = windowed
    tz = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    aware = client.compare_prompt_versions(
        name, start_time=start.replace(tzinfo=UTC).astimezone(tz), end_time=end.replace(tzinfo=UTC)
    )
    assert aware.versions[0].total_traces == _expected(runs, start, end)["total_traces"]


def test_all_time_is_what_an_old_client_gets(client, windowed):
    name, start, end, runs = windowed
    # An old client's request: name and view only.
    old = client.analytics.ComparePromptVersions(
        analytics_pb2.ComparePromptVersionsRequest(name=name), metadata=client._metadata
    )
    (v1,) = old.versions
    assert v1.total_traces == len(runs)
    assert v1.success_rate == pytest.approx(np.mean([r[2] for r in runs]), rel=1e-12)
    assert v1.avg_latency_ms == pytest.approx(np.mean([r[4] for r in runs]), rel=1e-12)
    assert v1.p95_latency_ms == pytest.approx(float(np.percentile([r[4] for r in runs], 95)), rel=1e-12)
    _fold_all(name)
    assert client.compare_prompt_versions(name).versions[0].total_traces == len(runs)


def test_a_late_outcome_lands_in_its_hour(client):
    name = _name("late")
    client.create_prompt_version(name, "one")
    now = datetime.datetime.now(UTC).replace(tzinfo=None)
    hours_ago = now - datetime.timedelta(hours=7, minutes=30)
    trace = new_trace()
    client.record_usage(name, 1, trace)
    client.record_trace_outcome(trace, success=True, duration_ms=12.0, end_time=hours_ago)
    _fold_all(name)
    recent = client.compare_prompt_versions(name, start_time=now - datetime.timedelta(hours=1))
    assert recent.versions[0].total_traces == 0  # its link came now, but it ran hours ago
    then = client.compare_prompt_versions(
        name, start_time=hours_ago - datetime.timedelta(minutes=1), end_time=hours_ago + US
    )
    assert (then.versions[0].total_traces, then.versions[0].success_count) == (1, 1)
    series = client.get_version_time_series(name, analytics_pb2.GRANULARITY_HOUR)
    (only,) = series.series[0].buckets
    assert only.start_time.ToDatetime() == hours_ago.replace(minute=0, second=0, microsecond=0)


def test_a_link_without_outcome_counts_at_its_receipt(client):
    name = _name("linked")
    client.create_prompt_version(name, "one")
    before = datetime.datetime.now(UTC)
    client.record_usage(name, 1, new_trace())
    after = datetime.datetime.now(UTC) + US
    (v1,) = client.compare_prompt_versions(name, start_time=before, end_time=after).versions
    assert (v1.total_traces, v1.outcome_count) == (1, 0)
    (v1,) = client.compare_prompt_versions(name, end_time=before).versions
    assert v1.total_traces == 0


def test_an_outcome_sent_again_keeps_its_end_time(client):
    trace = new_trace()
    when = datetime.datetime(2026, 11, 1, 12, 0, 0, 1)
    assert client.record_trace_outcome(trace, success=True, end_time=when) == "recorded"
    assert client.record_trace_outcome(trace, success=True, end_time=when) == "duplicate"
    assert client.record_trace_outcome(trace, success=True) == "duplicate"  # unset matches
    _raises(
        lambda: client.record_trace_outcome(trace, success=True, end_time=when + US),
        grpc.StatusCode.ALREADY_EXISTS,
        "trace_id",
    )


def test_an_end_time_no_datetime_can_hold_is_rejected_with_its_record_alone(client):
    good, bad = new_trace(), new_trace()
    unreadable = analytics_pb2.TraceOutcome(trace_id=bad, success=True)
    unreadable.end_time.seconds = -(2**40)  # before year 1: no datetime holds it
    summary = client.stream_trace_outcomes([[_outcome(good, success=True), unreadable]])
    assert (summary.received, summary.recorded, summary.rejected) == (2, 1, 1)
    (error,) = summary.errors
    assert (error.index, error.code) == (1, grpc.StatusCode.INVALID_ARGUMENT.value[0])
    assert "end_time" in error.message
    assert client.record_trace_outcome(good, success=True) == "duplicate"  # the good one is stored
    assert client.record_trace_outcome(bad, success=True) == "recorded"  # the bad one is not


# -- significance ----------------------------------------------------------------


def _seed_versions(client, name, rng):
    """Version 1 (active): 100 runs, 89 succeed; version 2: 125 runs, 90
    succeed; version 3: 60 runs, 45 succeed. Costs and latencies differ."""
    client.create_prompt_version(name, "v1", activate=True)
    client.create_prompt_version(name, "v2", activate=False)
    client.create_prompt_version(name, "v3", activate=False)
    raw = {}
    usage, outcomes = [], []
    for version, n, wins, mu in ((1, 100, 89, 6.0), (2, 125, 90, 6.2), (3, 60, 45, 6.0)):
        flags = [True] * wins + [False] * (n - wins)
        rng.shuffle(flags)
        rows = [
            (
                new_trace(),
                ok,
                round(rng.uniform(0.001, 0.004) * version, 6),
                rng.lognormvariate(mu, 0.4),
                rng.randint(100, 200),
            )
            for ok in flags
        ]
        raw[version] = rows
        usage += [usage_record(name, version, r[0]) for r in rows]
        outcomes += [_outcome(r[0], None, r[1], r[2], r[3], r[4]) for r in rows]
    client.stream_usage(in_batches(usage, 100))
    client.stream_trace_outcomes(in_batches(outcomes, 100))
    return raw


def _holm(p_values, alpha):
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    running, out = 0.0, [0.0] * len(p_values)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        out[i] = running
    return [a < alpha for a in out]


@pytest.mark.parametrize("confidence", [0.0, 0.9, 0.99])
def test_intervals_and_tests_against_the_baseline_match_scipy(client, confidence):
    name = _name("seed")
    raw = _seed_versions(client, name, random.Random(15))
    response = client.compare_prompt_versions(name, confidence_level=confidence)
    level = confidence or 0.95
    by_version = {m.version: m for m in response.versions}
    assert by_version[1].is_active and by_version[1].is_baseline
    assert not by_version[1].HasField("vs_baseline")
    p = {}
    for version in (2, 3):
        m, rows, base = by_version[version], raw[version], raw[1]
        wins = sum(r[1] for r in rows)
        ci = sp.binomtest(wins, len(rows)).proportion_ci(confidence_level=level, method="wilson")
        assert (m.success_rate_interval.low, m.success_rate_interval.high) == (
            pytest.approx(ci.low, abs=1e-12),
            pytest.approx(ci.high, abs=1e-12),
        )
        table = np.array(
            [[wins, len(rows) - wins], [sum(r[1] for r in base), len(base) - sum(r[1] for r in base)]]
        )
        vs = m.vs_baseline
        assert vs.baseline_version == 1
        assert vs.success_rate_p_value == pytest.approx(
            sp.chi2_contingency(table, correction=False).pvalue, rel=1e-9
        )
        assert vs.success_rate_diff == pytest.approx(wins / len(rows) - sum(r[1] for r in base) / len(base))
        for field, k in (("avg_cost", 2), ("avg_latency", 3)):
            welch = sp.ttest_ind([r[k] for r in rows], [r[k] for r in base], equal_var=False)
            assert getattr(vs, f"{field}_p_value") == pytest.approx(welch.pvalue, rel=1e-6, abs=1e-300)
            assert getattr(vs, f"{field}_diff") == pytest.approx(
                np.mean([r[k] for r in rows]) - np.mean([r[k] for r in base])
            )
        p[version] = [vs.success_rate_p_value, vs.avg_cost_p_value, vs.avg_latency_p_value]
    # Holm over the versions compared, test by test; significant if any rejects.
    rejected = [_holm([p[2][k], p[3][k]], 1 - level) for k in range(3)]
    for i, version in enumerate((2, 3)):
        assert by_version[version].vs_baseline.significant == any(rejected[k][i] for k in range(3))
    if confidence == 0.0:
        # The seed case: 0.72 on 125 against 0.89 on 100, p = 0.00168.
        assert by_version[2].vs_baseline.success_rate_p_value == pytest.approx(0.0016786614879627, rel=1e-9)
        assert by_version[2].vs_baseline.significant


def test_a_given_baseline_replaces_the_active_one(client):
    name = _name("baseline")
    _seed_versions(client, name, random.Random(3))
    response = client.compare_prompt_versions(name, baseline_version=2)
    by_version = {m.version: m for m in response.versions}
    assert by_version[2].is_baseline and not by_version[2].HasField("vs_baseline")
    assert by_version[1].is_active and by_version[1].vs_baseline.baseline_version == 2
    assert by_version[1].vs_baseline.success_rate_diff > 0


# -- errors and isolation -------------------------------------------------------------


def test_bad_compare_requests_name_their_field(client):
    name = _name("bad")
    client.create_prompt_version(name, "v1")
    t = datetime.datetime(2026, 11, 1)
    _raises(
        lambda: client.compare_prompt_versions(name, confidence_level=1.0),
        grpc.StatusCode.INVALID_ARGUMENT,
        "confidence_level",
    )
    _raises(
        lambda: client.compare_prompt_versions(name, confidence_level=-0.5),
        grpc.StatusCode.INVALID_ARGUMENT,
        "confidence_level",
    )
    _raises(
        lambda: client.compare_prompt_versions(name, start_time=t, end_time=t),
        grpc.StatusCode.INVALID_ARGUMENT,
        "start_time",
    )
    _raises(
        lambda: client.compare_prompt_versions(name, baseline_version=0),
        grpc.StatusCode.INVALID_ARGUMENT,
        "baseline_version",
    )
    _raises(
        lambda: client.compare_prompt_versions(name, baseline_version=9),
        grpc.StatusCode.NOT_FOUND,
        "baseline_version",
    )
    _raises(lambda: client.get_version_time_series(name, 0), grpc.StatusCode.INVALID_ARGUMENT, "granularity")
    _raises(
        lambda: client.get_version_time_series(name, 1, start_time=t, end_time=t - US),
        grpc.StatusCode.INVALID_ARGUMENT,
        "start_time",
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"input_tokens": -1}, "input_tokens"),
        ({"output_tokens": 10**13}, "output_tokens"),
        ({"end_time": datetime.datetime.now(UTC) + datetime.timedelta(days=2)}, "end_time"),
        ({"end_time": datetime.datetime(1999, 12, 31)}, "end_time"),
    ],
)
def test_bad_outcome_fields_are_rejected_and_store_nothing(client, kwargs, field):
    trace = new_trace()
    _raises(
        lambda: client.record_trace_outcome(trace, success=True, **kwargs),
        grpc.StatusCode.INVALID_ARGUMENT,
        field,
    )
    assert client.record_trace_outcome(trace, success=False) == "recorded"  # nothing was stored


def test_another_accounts_prompt_is_not_found(client, other_client):
    name = _name("mine")
    client.create_prompt_version(name, "v1")
    t = datetime.datetime(2026, 11, 1)
    _raises(
        lambda: other_client.compare_prompt_versions(name, start_time=t), grpc.StatusCode.NOT_FOUND, "name"
    )
    _raises(lambda: other_client.get_version_time_series(name), grpc.StatusCode.NOT_FOUND, "name")
    _raises(lambda: next(other_client.watch_comparison(name, timeout=10)), grpc.StatusCode.NOT_FOUND)


# -- time series ---------------------------------------------------------------------


def test_time_series_has_one_bucket_per_period_with_data(client):
    name = _name("series")
    client.create_prompt_version(name, "v1")
    client.create_prompt_version(name, "v2")
    day = datetime.datetime(2026, 11, 10)
    runs = [
        (1, day + datetime.timedelta(hours=h, minutes=m), ok)
        for h, m, ok in [(0, 5, True), (0, 59, False), (3, 0, True), (25, 30, True)]
    ]
    runs.append((2, day + datetime.timedelta(hours=3, minutes=1), False))
    traces = [(v, new_trace(), t, ok) for v, t, ok in runs]
    client.stream_trace_outcomes(
        [[_outcome(tr, t, ok, 0.01, 100.0 + i) for i, (_, tr, t, ok) in enumerate(traces)]]
    )
    client.stream_usage([[usage_record(name, v, tr) for v, tr, _, _ in traces]])
    for folded in (False, True):
        if folded:
            _fold_all(name)
        hourly = client.get_version_time_series(
            name, analytics_pb2.GRANULARITY_HOUR, start_time=day, end_time=day + datetime.timedelta(days=2)
        )
        v1, v2 = hourly.series
        assert [(b.start_time.ToDatetime(), b.total_traces, b.success_rate) for b in v1.buckets] == [
            (day, 2, 0.5),
            (day + datetime.timedelta(hours=3), 1, 1.0),
            (day + datetime.timedelta(hours=25), 1, 1.0),
        ]
        assert [(b.start_time.ToDatetime(), b.total_traces) for b in v2.buckets] == [
            (day + datetime.timedelta(hours=3), 1)
        ]
        assert v1.buckets[0].p50_latency_ms == pytest.approx(100.5)
        daily = client.get_version_time_series(name, analytics_pb2.GRANULARITY_DAY)
        assert [(b.start_time.ToDatetime(), b.total_traces) for b in daily.series[0].buckets] == [
            (day, 3),
            (day + datetime.timedelta(days=1), 1),
        ]


# -- live comparison ----------------------------------------------------------------


def test_watchers_share_one_computation_and_see_new_data(server, client, monkeypatch):
    name = _name("watched")
    client.create_prompt_version(name, "v1")
    computed = []
    original = Analytics.compare

    def counting(self, caller, **kwargs):
        if kwargs["name"] == name:
            computed.append(1)
        return original(self, caller, **kwargs)

    monkeypatch.setattr(Analytics, "compare", counting)
    watchers = [
        client.watch_comparison(name, analytics_pb2.COMPARISON_VIEW_BASIC, timeout=30) for _ in range(20)
    ]
    firsts = [next(w) for w in watchers]
    assert all(f.versions[0].total_traces == 0 for f in firsts)
    trace = new_trace()
    client.record_usage(name, 1, trace)
    client.record_trace_outcome(trace, success=True, duration_ms=5.0)
    seconds = datetime.datetime.now()
    seconds_before = len(computed)
    updates = [next(w) for w in watchers]
    elapsed = (datetime.datetime.now() - seconds).total_seconds()
    assert all(u.versions[0].total_traces == 1 and u.versions[0].success_count == 1 for u in updates)
    # One computation a second for all 20 watchers, not one each.
    assert len(computed) <= seconds_before + elapsed + 2, (len(computed), elapsed)
    assert len(computed) < 20
    for w in watchers:
        w.close()


def test_a_watch_ends_with_the_error_of_its_request(client):
    _raises(
        lambda: next(client.watch_comparison(_name("missing"), timeout=10)), grpc.StatusCode.NOT_FOUND, "name"
    )
    name = _name("watchbad")
    client.create_prompt_version(name, "v1")
    _raises(
        lambda: next(client.watch_comparison(name, confidence_level=2.0, timeout=10)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "confidence_level",
    )


def test_a_watch_from_another_thread_is_cancelled_cleanly(server, api_key):
    name = _name("cancel")
    with PromptGaugeClient(server.target, api_key) as pg:
        pg.create_prompt_version(name, "v1")
        watch = pg.watch_comparison(name, timeout=30)
        first = next(watch)
        assert first.versions[0].version == 1
        closed = threading.Event()
        threading.Thread(target=lambda: (watch.close(), closed.set())).start()
        assert closed.wait(10)


def test_the_recorder_carries_tokens_and_end_times(client):
    name = _name("recorded")
    client.create_prompt_version(name, "v1")
    ended = datetime.datetime(2026, 11, 3, 8, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    with client.recorder(max_batch=1000, max_delay_seconds=3600) as recorder:
        for i in range(3):
            trace = new_trace()
            recorder.record_usage(name, 1, trace)
            recorder.record_outcome(
                trace, success=True, input_tokens=100 + i, output_tokens=7, end_time=ended
            )
    (v1,) = client.compare_prompt_versions(
        name,
        start_time=datetime.datetime(2026, 11, 3, 6, 30),
        end_time=datetime.datetime(2026, 11, 3, 6, 30) + US,
    ).versions
    assert (v1.total_traces, v1.avg_input_tokens, v1.avg_output_tokens) == (3, 101.0, 7.0)


# -- long windows: exact up to 1,000 values, bucket digests past that ------------------


def _spread(client, hours: int) -> tuple[str, list]:
    """1,200 runs of one version spread over `hours` that ended days ago,
    folded into hourly buckets (FOLD_AT at a time, as ingestion does)."""
    name = _name("long")
    client.create_prompt_version(name, "one")
    first = datetime.datetime(2026, 11, 10, 3, 41, 7, 250001)
    rng = random.Random(11)
    runs = sorted(
        (first + datetime.timedelta(minutes=rng.uniform(0, hours * 60)), rng.lognormvariate(7.0, 0.7),
         round(rng.uniform(0.001, 0.05), 6), new_trace())
        for _ in range(1200)
    )
    for batch in in_batches(runs, 500):
        client.stream_trace_outcomes([[_outcome(r[3], r[0], True, r[2], r[1]) for r in batch]])
        client.stream_usage([[usage_record(name, 1, r[3]) for r in batch]])
    with storage.db.connection_context():
        (vid,) = [v.id for v in PromptVersion.select().join(Prompt).where(Prompt.name == name)]
        analytics = Analytics(storage.store())
        while analytics.fold(vid, limit=200):
            pass
    return name, runs


@pytest.fixture
def long_window(client):
    """~150 runs an hour: each bucket's digest merges values."""
    return _spread(client, 8)


@pytest.fixture
def days_window(client):
    """Over 54 hours, a whole day (2026-11-11) among them: its digest merges
    its hours'."""
    return _spread(client, 54)


def test_a_window_of_at_most_1000_values_is_exact_from_the_buckets(client, long_window):
    name, runs = long_window
    # Bounds a microsecond after runs: the edge hours have runs outside the window.
    for low, high in ((runs[100][0] + US, runs[1100][0] + US), (runs[0][0], runs[999][0] + US)):
        inside = [r for r in runs if low <= r[0] < high]
        assert len(inside) == 1000
        (v1,) = client.compare_prompt_versions(name, start_time=low, end_time=high).versions
        assert v1.total_traces == 1000
        for q in (50, 90, 95, 99):
            expected = float(np.percentile([r[1] for r in inside], q))
            assert getattr(v1, f"p{q}_latency_ms") == pytest.approx(expected, rel=1e-12), q
        for q in (50, 95):
            expected = float(np.percentile([r[2] for r in inside], q))
            assert getattr(v1, f"p{q}_cost_usd") == pytest.approx(expected, rel=1e-12), q


@pytest.mark.parametrize("spread", ["long_window", "days_window"])
def test_a_window_past_1000_values_reads_digests_close_to_the_exact_percentiles(client, spread, request):
    name, runs = request.getfixturevalue(spread)
    windows = [
        (runs[0][0] - datetime.timedelta(minutes=3), runs[-1][0] + US),  # edges read whole from buckets
        (runs[50][0] + US, runs[-50][0] + US),  # edges read from the rows
        (runs[0][0], runs[1001][0]),  # 1,001 values
    ]
    for low, high in windows:
        inside = [r for r in runs if low <= r[0] < high]
        (v1,) = client.compare_prompt_versions(name, start_time=low, end_time=high).versions
        assert v1.total_traces == len(inside) > 1000
        assert v1.total_cost_usd == pytest.approx(sum(r[2] for r in inside), rel=1e-9)
        for q in (50, 90, 95, 99):
            assert _estimates([r[1] for r in inside], q, getattr(v1, f"p{q}_latency_ms")), (q, low, high)
        for q in (50, 95):
            assert _estimates([r[2] for r in inside], q, getattr(v1, f"p{q}_cost_usd")), (q, low, high)


def _estimates(values: list[float], q: int, got: float) -> bool:
    """Whether `got` is within benchmark (e)'s p95 target of numpy's q-th
    percentile (a target for 1M values), or within two order statistics of
    it: the t-digest puts a value at its mid-rank, numpy at i/(n-1), and
    ~1,000 values in a lognormal tail are percents apart."""
    ordered = sorted(values)
    k = int(q / 100 * (len(ordered) - 1))
    exact = float(np.percentile(ordered, q))
    return abs(got / exact - 1) <= 0.005 or ordered[k - 2] <= got <= ordered[min(k + 3, len(ordered) - 1)]

"""AnalyticsService through the real gRPC boundary, on every backend: trace
ids, usage links, outcomes, metrics, streams and malformed input."""

import math
import uuid

import grpc
import pytest
from conftest import comparison_snapshot, in_batches, new_trace, trace_outcome, usage_record

from promptgauge.client import PromptGaugeClient, PromptGaugeError
from promptgauge.v1 import analytics_pb2

METRICS = ("success_rate", "avg_cost_usd", "avg_latency_ms", "p95_latency_ms")
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]
NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS.value[0]


def _metrics(client, name: str) -> dict[int, analytics_pb2.VersionMetrics]:
    return {m.version: m for m in client.compare_prompt_versions(name).versions}


def _raises(call, code: grpc.StatusCode, field: str | None = None) -> PromptGaugeError:
    with pytest.raises(PromptGaugeError) as err:
        call()
    assert err.value.code == code, err.value
    if field is not None:
        assert err.value.field == field, err.value
    assert err.value.message
    return err.value


# -- trace ids ---------------------------------------------------------------


def test_uuid_and_otel_forms_of_one_trace_id_join(client):
    client.create_prompt_version("ids", "x")
    raw = uuid.uuid4()
    assert client.record_usage("ids", 1, str(raw).upper()) == "recorded"
    assert client.record_trace_outcome(raw.hex, success=True, duration_ms=40.0) == "recorded"
    (v1,) = client.compare_prompt_versions("ids").versions
    assert (v1.total_traces, v1.success_rate, v1.avg_latency_ms) == (1, 1.0, 40.0)
    # The same trace in the other form: a duplicate link and a duplicate outcome.
    assert client.record_usage("ids", 1, raw.hex.upper()) == "recorded"
    assert client.record_trace_outcome(str(raw), success=True, duration_ms=40.0) == "duplicate"
    summary = client.stream_usage([[usage_record("ids", 1, str(raw))]])
    assert (summary.recorded, summary.duplicates) == (0, 1)
    assert client.compare_prompt_versions("ids").versions[0].total_traces == 1


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "a" * 31,
        "a" * 33,
        "g" * 32,
        "0123456789abcdef0123456789abcdeZ",
        "0" * 32,
        "00000000-0000-0000-0000-000000000000",
        "not-a-trace",
        "1234567-89ab-cdef-0123-456789abcdef0",
    ],
)
def test_malformed_trace_id_is_invalid_argument(client, bad):
    client.create_prompt_version("badids", "x")
    _raises(lambda: client.record_usage("badids", 1, bad), grpc.StatusCode.INVALID_ARGUMENT, "trace_id")
    _raises(
        lambda: client.record_trace_outcome(bad, success=True),
        grpc.StatusCode.INVALID_ARGUMENT,
        "trace_id",
    )
    (v1,) = client.compare_prompt_versions("badids").versions
    assert v1.total_traces == 0 and not v1.HasField("success_rate")


# -- usage ---------------------------------------------------------------------


def test_same_usage_record_again_is_recorded_and_changes_nothing(client):
    client.create_prompt_version("idem", "x")
    trace = new_trace()
    assert client.record_usage("idem", 1, trace, "span-1") == "recorded"
    before = comparison_snapshot(client, "idem")
    assert client.record_usage("idem", 1, trace, "span-1") == "recorded"
    assert comparison_snapshot(client, "idem") == before
    assert before[0][1] == 1


def test_a_trace_counts_once_per_version_however_many_spans(client):
    client.create_prompt_version("spans", "x")
    trace = new_trace()
    client.record_usage("spans", 1, trace)
    for span in ("a", "b", "c"):
        assert client.record_usage("spans", 1, trace, span) == "recorded"
    client.record_trace_outcome(trace, success=False, total_cost_usd=0.5, duration_ms=10.0)
    (v1,) = client.compare_prompt_versions("spans").versions
    assert (v1.total_traces, v1.success_rate, v1.avg_cost_usd, v1.avg_latency_ms) == (1, 0.0, 0.5, 10.0)
    # Many spans in one stream message too.
    other = new_trace()
    summary = client.stream_usage([[usage_record("spans", 1, other, f"s{i}") for i in range(5)]])
    assert (summary.recorded, summary.duplicates, summary.rejected) == (5, 0, 0)
    assert client.compare_prompt_versions("spans").versions[0].total_traces == 2


def test_one_trace_linked_to_two_versions_counts_in_both(client):
    client.create_prompt_version("both", "one")
    client.create_prompt_version("both", "two")
    trace = new_trace()
    client.record_usage("both", 1, trace)
    client.record_trace_outcome(trace, success=True, total_cost_usd=0.25, duration_ms=80.0)
    client.record_usage("both", 2, trace, "later-span")
    m = _metrics(client, "both")
    for v in (1, 2):
        assert (m[v].total_traces, m[v].success_rate, m[v].avg_cost_usd, m[v].avg_latency_ms) == (
            1, 1.0, 0.25, 80.0
        )
        assert m[v].p95_latency_ms == 80.0


def test_usage_of_unknown_prompt_or_version_is_not_found(client):
    client.create_prompt_version("known", "x")
    _raises(
        lambda: client.record_usage("unknown", 1, new_trace()), grpc.StatusCode.NOT_FOUND, "prompt_version"
    )
    _raises(lambda: client.record_usage("known", 2, new_trace()), grpc.StatusCode.NOT_FOUND, "prompt_version")
    assert client.compare_prompt_versions("known").versions[0].total_traces == 0


def test_usage_of_another_accounts_prompt_is_not_found(client, other_client):
    client.create_prompt_version("mine", "x")
    err = _raises(lambda: other_client.record_usage("mine", 1, new_trace()), grpc.StatusCode.NOT_FOUND)
    missing = _raises(
        lambda: other_client.record_usage("never-made", 1, new_trace()), grpc.StatusCode.NOT_FOUND
    )
    # Exactly like a prompt that does not exist: no hint that it does.
    assert (err.reason, err.field) == (missing.reason, missing.field)
    assert client.compare_prompt_versions("mine").versions[0].total_traces == 0


@pytest.mark.parametrize(
    "name, version, span, field",
    [
        ("spanned", 1, "", "span_id"),
        ("spanned", 1, "s" * 129, "span_id"),
        ("spanned", 1, "bad\x01span", "span_id"),
        ("spanned", 1, "tab\tspan", "span_id"),
        ("spanned", 1, " leading", "span_id"),
        ("", 1, "ok", "prompt_name"),
        ("Bad Name!", 1, "ok", "prompt_name"),
        ("n" * 129, 1, "ok", "prompt_name"),
        ("spanned", 0, "ok", "prompt_version"),
        ("spanned", -1, "ok", "prompt_version"),
    ],
)
def test_bad_usage_fields_are_invalid_argument(client, name, version, span, field):
    client.create_prompt_version("spanned", "x")
    _raises(
        lambda: client.record_usage(name, version, new_trace(), span), grpc.StatusCode.INVALID_ARGUMENT, field
    )
    assert client.compare_prompt_versions("spanned").versions[0].total_traces == 0


def test_span_id_of_128_printable_characters_is_accepted(client):
    client.create_prompt_version("longspan", "x")
    assert client.record_usage("longspan", 1, new_trace(), "~" * 127 + "!") == "recorded"
    assert client.record_usage("longspan", 1, new_trace(), "a b") == "recorded"
    assert client.compare_prompt_versions("longspan").versions[0].total_traces == 2


# -- outcomes ------------------------------------------------------------------


def test_same_outcome_again_is_duplicate_and_changes_nothing(client):
    client.create_prompt_version("dup", "x")
    trace = new_trace()
    client.record_usage("dup", 1, trace)
    same = {"success": True, "total_cost_usd": 0.5, "duration_ms": 20.0}
    assert client.record_trace_outcome(trace, **same) == "recorded"
    before = comparison_snapshot(client, "dup")
    assert client.record_trace_outcome(trace, **same) == "duplicate"
    assert comparison_snapshot(client, "dup") == before == [(1, 1, 1.0, 0.5, 20.0, 20.0)]


@pytest.mark.parametrize(
    "second",
    [
        {"success": False, "total_cost_usd": 0.5, "duration_ms": 20.0},
        {"success": True, "total_cost_usd": 0.75, "duration_ms": 20.0},
        {"success": True, "total_cost_usd": 0.5, "duration_ms": 21.0},
        {"success": True, "total_cost_usd": 0.5},
        {"success": True},
    ],
)
def test_different_outcome_is_already_exists_and_changes_nothing(client, second):
    client.create_prompt_version("conflict", "x")
    trace = new_trace()
    client.record_usage("conflict", 1, trace)
    client.record_trace_outcome(trace, success=True, total_cost_usd=0.5, duration_ms=20.0)
    before = comparison_snapshot(client, "conflict")
    _raises(lambda: client.record_trace_outcome(trace, **second), grpc.StatusCode.ALREADY_EXISTS, "trace_id")
    assert comparison_snapshot(client, "conflict") == before
    # The stored outcome is still the first one.
    first = {"success": True, "total_cost_usd": 0.5, "duration_ms": 20.0}
    assert client.record_trace_outcome(trace, **first) == "duplicate"


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"total_cost_usd": math.nan}, "total_cost_usd"),
        ({"total_cost_usd": math.inf}, "total_cost_usd"),
        ({"total_cost_usd": -math.inf}, "total_cost_usd"),
        ({"total_cost_usd": -0.01}, "total_cost_usd"),
        ({"duration_ms": math.nan}, "duration_ms"),
        ({"duration_ms": math.inf}, "duration_ms"),
        ({"duration_ms": -math.inf}, "duration_ms"),
        ({"duration_ms": -1.0}, "duration_ms"),
        ({"total_cost_usd": 1e12 * (1 + 1e-15)}, "total_cost_usd"),
        ({"duration_ms": 1.7e308}, "duration_ms"),
    ],
)
def test_bad_numbers_are_invalid_argument_and_store_nothing(client, bad, field):
    client.create_prompt_version("numbers", "x")
    trace = new_trace()
    client.record_usage("numbers", 1, trace)
    _raises(
        lambda: client.record_trace_outcome(trace, success=True, **bad),
        grpc.StatusCode.INVALID_ARGUMENT,
        field,
    )
    (v1,) = client.compare_prompt_versions("numbers").versions
    assert v1.total_traces == 1
    for f in ("success_rate", "avg_cost_usd", "avg_latency_ms", "p95_latency_ms"):
        assert not v1.HasField(f), f
    # Nothing was stored: a valid, different outcome is accepted later.
    valid = {"success": False, "total_cost_usd": 0.0, "duration_ms": 0.0}
    assert client.record_trace_outcome(trace, **valid) == "recorded"
    (v1,) = client.compare_prompt_versions("numbers").versions
    assert (v1.success_rate, v1.avg_cost_usd, v1.avg_latency_ms, v1.p95_latency_ms) == (0.0, 0.0, 0.0, 0.0)


def test_amounts_up_to_1e12_are_accepted_and_their_averages_stay_finite(client):
    client.create_prompt_version("huge", "x")
    for _ in range(3):
        trace = new_trace()
        client.record_usage("huge", 1, trace)
        assert client.record_trace_outcome(trace, total_cost_usd=1e12, duration_ms=1e12) == "recorded"
    (v1,) = client.compare_prompt_versions("huge").versions
    assert (v1.avg_cost_usd, v1.avg_latency_ms) == (1e12, 1e12)


def test_outcome_without_any_signal_is_invalid_argument(client):
    trace = new_trace()
    _raises(lambda: client.record_trace_outcome(trace), grpc.StatusCode.INVALID_ARGUMENT)
    assert client.record_trace_outcome(trace, success=True) == "recorded"


def test_unary_requests_without_their_message_are_invalid_argument(client):
    _raises(
        lambda: client._call(client.analytics.RecordUsage, analytics_pb2.RecordUsageRequest()),
        grpc.StatusCode.INVALID_ARGUMENT,
        "usage",
    )
    _raises(
        lambda: client._call(client.analytics.RecordTraceOutcome, analytics_pb2.RecordTraceOutcomeRequest()),
        grpc.StatusCode.INVALID_ARGUMENT,
        "outcome",
    )


# -- order and metrics ---------------------------------------------------------


def test_link_then_outcome_and_outcome_then_link_give_identical_metrics(client):
    client.create_prompt_version("order-a", "x")
    client.create_prompt_version("order-b", "x")
    outcomes = [
        (True, 0.25, 100.0),
        (False, 0.5, 300.0),
        (True, None, 50.0),
        (None, 1.0, None),
        (True, 0.125, None),
    ]
    for success, cost, duration in outcomes:
        first, second = new_trace(), new_trace()
        client.record_usage("order-a", 1, first)
        client.record_trace_outcome(first, success=success, total_cost_usd=cost, duration_ms=duration)
        client.record_trace_outcome(second, success=success, total_cost_usd=cost, duration_ms=duration)
        client.record_usage("order-b", 1, second)
    # And through streams: outcomes before links, links before outcomes.
    traces_a, traces_b = [new_trace() for _ in range(20)], [new_trace() for _ in range(20)]
    values = [(i % 3 != 0, i / 8, float(10 * i)) for i in range(20)]
    client.stream_usage([[usage_record("order-a", 1, t) for t in traces_a]])
    client.stream_trace_outcomes([[trace_outcome(t, *v) for t, v in zip(traces_a, values, strict=True)]])
    client.stream_trace_outcomes([[trace_outcome(t, *v) for t, v in zip(traces_b, values, strict=True)]])
    client.stream_usage([[usage_record("order-b", 1, t) for t in traces_b]])
    a, b = comparison_snapshot(client, "order-a"), comparison_snapshot(client, "order-b")
    assert a == b
    assert a[0][1] == 25


def test_metrics_are_exact_over_the_linked_traces_carrying_each_signal(client):
    client.create_prompt_version("exact", "one {x}")
    client.create_prompt_version("exact", "two {x}")
    client.create_prompt_version("exact", "three {x}", activate=False)
    # (success, cost, duration) per trace; None leaves the signal out.
    v1 = [
        (True, 0.5, 120.0),
        (False, 0.25, 80.0),
        (True, None, 200.0),
        (None, 0.75, None),
        (True, 0.125, None),
    ]
    v2 = [(True, 1.0, 1.0 * i) for i in range(1, 21)]
    for version, rows in ((1, v1), (2, v2)):
        for success, cost, duration in rows:
            trace = new_trace()
            client.record_usage("exact", version, trace)
            client.record_trace_outcome(trace, success=success, total_cost_usd=cost, duration_ms=duration)
    for _ in range(3):  # linked, never an outcome
        client.record_usage("exact", 1, new_trace())
    client.record_trace_outcome(new_trace(), success=False, duration_ms=9999.0)  # an outcome, never linked

    response = client.compare_prompt_versions("exact")
    assert response.name == "exact"
    assert [m.version for m in response.versions] == [1, 2, 3]
    m1, m2, m3 = response.versions
    assert m1.template_text == "one {x}" and m3.template_text == "three {x}"

    def mean(xs):
        return sum(xs) / len(xs)

    assert m1.total_traces == len(v1) + 3
    assert m1.success_rate == mean([1.0 if s else 0.0 for s, _, _ in v1 if s is not None])
    assert m1.avg_cost_usd == mean([c for _, c, _ in v1 if c is not None])
    assert m1.avg_latency_ms == mean([d for _, _, d in v1 if d is not None])
    assert 120.0 <= m1.p95_latency_ms <= 200.0

    assert m2.total_traces == 20
    assert (m2.success_rate, m2.avg_cost_usd, m2.avg_latency_ms) == (1.0, 1.0, 10.5)
    assert 19.0 <= m2.p95_latency_ms <= 20.0

    assert m3.total_traces == 0
    for f in ("success_rate", "avg_cost_usd", "avg_latency_ms", "p95_latency_ms"):
        assert not m3.HasField(f), f


def test_versions_come_in_ascending_order_whatever_the_creation_order(client):
    for version in (7, 2, 11, 3):
        client.create_prompt_version("ordered", f"v{version}", version=version)
    client.record_usage("ordered", 11, new_trace())
    response = client.compare_prompt_versions("ordered")
    assert [m.version for m in response.versions] == [2, 3, 7, 11]
    assert [m.template_text for m in response.versions] == ["v2", "v3", "v7", "v11"]
    assert [m.total_traces for m in response.versions] == [0, 0, 0, 1]


def test_each_metric_is_unset_when_no_linked_trace_carries_it(client):
    client.create_prompt_version("partial", "x")
    trace = new_trace()
    client.record_usage("partial", 1, trace)
    (m,) = client.compare_prompt_versions("partial").versions
    assert m.total_traces == 1
    assert not any(m.HasField(f) for f in METRICS)
    client.record_trace_outcome(trace, total_cost_usd=0.5)
    (m,) = client.compare_prompt_versions("partial").versions
    assert m.HasField("avg_cost_usd") and m.avg_cost_usd == 0.5
    assert not any(m.HasField(f) for f in ("success_rate", "avg_latency_ms", "p95_latency_ms"))


def test_compare_of_unknown_or_another_accounts_prompt_is_not_found(client, other_client):
    client.create_prompt_version("secret", "x")
    client.record_usage("secret", 1, new_trace())
    _raises(lambda: client.compare_prompt_versions("nothing-here"), grpc.StatusCode.NOT_FOUND)
    _raises(lambda: other_client.compare_prompt_versions("secret"), grpc.StatusCode.NOT_FOUND)
    _raises(lambda: client.compare_prompt_versions(""), grpc.StatusCode.INVALID_ARGUMENT)


def test_accounts_do_not_share_traces(client, other_client):
    """The same trace id in two accounts is two traces."""
    client.create_prompt_version("shared-name", "x")
    other_client.create_prompt_version("shared-name", "x")
    trace = new_trace()
    client.record_usage("shared-name", 1, trace)
    other_client.record_usage("shared-name", 1, trace)
    client.record_trace_outcome(trace, success=True)
    assert other_client.record_trace_outcome(trace, success=False) == "recorded"
    assert client.compare_prompt_versions("shared-name").versions[0].success_rate == 1.0
    assert other_client.compare_prompt_versions("shared-name").versions[0].success_rate == 0.0


# -- streams -------------------------------------------------------------------


def test_usage_stream_of_1000_with_a_few_bad_records(client):
    client.create_prompt_version("bulk", "x")
    client.create_prompt_version("bulk", "y")
    records = [usage_record("bulk", 1 + i % 2, new_trace(), f"span-{i}") for i in range(1000)]
    records[3] = usage_record("bulk", 1, "zz-not-a-trace")
    records[260] = usage_record("bulk", 7, new_trace())
    records[599] = usage_record("bulk", 2, new_trace(), "")
    records[999] = usage_record("bulk", 1, new_trace(), "x" * 129)
    summary = client.stream_usage(in_batches(records, 300))  # messages of 300, 300, 300, 100
    assert (summary.received, summary.recorded, summary.duplicates, summary.rejected) == (1000, 996, 0, 4)
    assert [(e.index, e.code, e.reason) for e in summary.errors] == [
        (3, INVALID_ARGUMENT, "INVALID_TRACE_ID"),
        (260, NOT_FOUND, "VERSION_NOT_FOUND"),
        (599, INVALID_ARGUMENT, "INVALID_SPAN_ID"),
        (999, INVALID_ARGUMENT, "INVALID_SPAN_ID"),
    ]
    messages = [e.message for e in summary.errors]
    assert "trace_id" in messages[0] and "zz-not-a-trace" in messages[0]
    assert "version 7" in messages[1]
    assert "span_id" in messages[2] and "span_id" in messages[3]
    m = _metrics(client, "bulk")
    assert m[1].total_traces == 500 - 1  # even slots are v1: 260 was one
    assert m[2].total_traces == 500 - 3  # odd slots are v2: 3, 599, 999
    assert m[1].total_traces + m[2].total_traces == 996


def test_outcome_stream_with_nan_negative_and_conflicting_records(client):
    client.create_prompt_version("bulk-out", "x")
    traces = [new_trace() for _ in range(1000)]
    client.stream_usage(in_batches([usage_record("bulk-out", 1, t) for t in traces], 500))
    # Trace 10 already has an outcome; the stream brings a different one.
    client.record_trace_outcome(traces[10], success=True, total_cost_usd=0.5, duration_ms=10.0)
    # Trace 20 already has the very same outcome the stream brings.
    client.record_trace_outcome(traces[20], success=True, total_cost_usd=0.5, duration_ms=20.0)
    outcomes = [trace_outcome(t, True, 0.5, float(i)) for i, t in enumerate(traces)]
    outcomes[10] = trace_outcome(traces[10], False, 0.5, 10.0)
    outcomes[333] = trace_outcome(traces[333], True, math.nan, 1.0)
    outcomes[334] = trace_outcome(traces[334], True, 0.5, -5.0)
    outcomes[700] = trace_outcome(traces[700], True, math.inf, 700.0)
    outcomes[701] = trace_outcome(traces[701])
    summary = client.stream_trace_outcomes(in_batches(outcomes, 250))
    assert (summary.received, summary.recorded, summary.duplicates, summary.rejected) == (1000, 994, 1, 5)
    assert [(e.index, e.code, e.reason) for e in summary.errors] == [
        (10, ALREADY_EXISTS, "OUTCOME_CONFLICT"),
        (333, INVALID_ARGUMENT, "INVALID_NUMBER"),
        (334, INVALID_ARGUMENT, "INVALID_NUMBER"),
        (700, INVALID_ARGUMENT, "INVALID_NUMBER"),
        (701, INVALID_ARGUMENT, "EMPTY_OUTCOME"),
    ]
    assert "already has a different outcome" in summary.errors[0].message
    assert "total_cost_usd" in summary.errors[1].message
    assert "duration_ms" in summary.errors[2].message
    (m,) = client.compare_prompt_versions("bulk-out").versions
    assert m.total_traces == 1000
    with_outcome = [i for i in range(1000) if i not in (333, 334, 700, 701)]
    assert m.success_rate == 1.0
    assert m.avg_cost_usd == 0.5
    # Integral durations: the sum is exact in any order.
    assert m.avg_latency_ms == sum(float(i) for i in with_outcome) / len(with_outcome)
    # The rejected traces can still get a valid outcome.
    assert client.record_trace_outcome(traces[333], success=False) == "recorded"


def test_a_whole_stream_sent_twice_is_all_duplicates(client):
    client.create_prompt_version("twice", "x")
    traces = [new_trace() for _ in range(600)]
    records = [usage_record("twice", 1, t, "root") for t in traces]
    outcomes = [trace_outcome(t, i % 4 != 0, i / 16, float(i % 97)) for i, t in enumerate(traces)]
    first_u = client.stream_usage(in_batches(records, 200))
    first_o = client.stream_trace_outcomes(in_batches(outcomes, 200))
    assert (first_u.recorded, first_o.recorded) == (600, 600)
    before = comparison_snapshot(client, "twice")
    again_u = client.stream_usage(in_batches(records, 200))
    again_o = client.stream_trace_outcomes(in_batches(outcomes, 200))
    for s in (again_u, again_o):
        assert (s.received, s.recorded, s.duplicates, s.rejected) == (600, 0, 600, 0)
        assert list(s.errors) == []
    assert comparison_snapshot(client, "twice") == before
    assert before[0][1] == 600


def test_duplicates_inside_one_message(client):
    client.create_prompt_version("inner", "x")
    a, b = new_trace(), new_trace()
    summary = client.stream_usage([[
        usage_record("inner", 1, a),
        usage_record("inner", 1, a),
        usage_record("inner", 1, a.replace("-", "").upper()),
        usage_record("inner", 1, b, "s"), usage_record("inner", 1, b, "s"), usage_record("inner", 1, b, "t"),
    ]])
    assert (summary.received, summary.recorded, summary.duplicates, summary.rejected) == (6, 3, 3, 0)
    summary = client.stream_trace_outcomes([[
        trace_outcome(a, True, 0.5, 5.0), trace_outcome(a, True, 0.5, 5.0), trace_outcome(a, False, 0.5, 5.0),
        trace_outcome(b, False),
    ]])
    assert (summary.received, summary.recorded, summary.duplicates, summary.rejected) == (4, 2, 1, 1)
    assert [(e.index, e.code) for e in summary.errors] == [(2, ALREADY_EXISTS)]
    (m,) = client.compare_prompt_versions("inner").versions
    assert (m.total_traces, m.success_rate, m.avg_cost_usd, m.avg_latency_ms) == (2, 0.5, 0.5, 5.0)


def test_empty_streams_give_zero_summaries(client):
    for summary in (
        client.stream_usage([]),
        client.stream_usage([[], []]),
        client.stream_trace_outcomes([]),
        client.stream_trace_outcomes([[]]),
    ):
        assert (summary.received, summary.recorded, summary.duplicates, summary.rejected) == (0, 0, 0, 0)
        assert list(summary.errors) == []


def test_a_message_of_1001_records_is_invalid_argument(client):
    client.create_prompt_version("oversized", "x")
    too_many = [usage_record("oversized", 1, new_trace()) for _ in range(1001)]
    _raises(lambda: client.stream_usage([too_many]), grpc.StatusCode.INVALID_ARGUMENT, "records")
    assert client.compare_prompt_versions("oversized").versions[0].total_traces == 0
    outcomes = [trace_outcome(new_trace(), True) for _ in range(1001)]
    _raises(lambda: client.stream_trace_outcomes([outcomes]), grpc.StatusCode.INVALID_ARGUMENT, "outcomes")
    # Exactly 1000 is fine.
    summary = client.stream_usage([too_many[:1000]])
    assert summary.recorded == 1000


def test_errors_are_capped_at_100_but_all_rejections_counted(client):
    client.create_prompt_version("capped", "x")
    records = [usage_record("capped", 1, new_trace()) for _ in range(200)]
    bad = list(range(0, 200, 4)) + list(range(1, 200, 2))  # 50 + 100 = 150 bad
    for i in bad:
        records[i] = usage_record("capped", 1, f"bad-{i}")
    summary = client.stream_usage(in_batches(records, 64))
    assert (summary.received, summary.recorded, summary.rejected) == (200, 50, 150)
    assert len(summary.errors) == 100
    assert [e.index for e in summary.errors] == sorted(bad)[:100]
    assert all(e.code == INVALID_ARGUMENT for e in summary.errors)
    assert client.compare_prompt_versions("capped").versions[0].total_traces == 50


def _raw_channel_call(server, api_key, method: str, stream: bool, payloads: list[bytes], response):
    with grpc.insecure_channel(server.target) as channel:
        factory = channel.stream_unary if stream else channel.unary_unary
        call = factory(
            f"/promptgauge.v1.AnalyticsService/{method}",
            request_serializer=lambda b: b,
            response_deserializer=response.FromString,
        )
        request = iter(payloads) if stream else payloads[0]
        with pytest.raises(grpc.RpcError) as err:
            call(request, metadata=(("authorization", f"Bearer {api_key}"),), timeout=10)
    return err.value


GARBAGE = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"


def test_garbage_bytes_in_a_stream_are_invalid_argument(server, api_key, client):
    client.create_prompt_version("garbage", "x")
    records = [usage_record("garbage", 1, new_trace())]
    good = analytics_pb2.StreamUsageRequest(records=records).SerializeToString()
    err = _raw_channel_call(
        server, api_key, "StreamUsage", True, [GARBAGE], analytics_pb2.StreamUsageResponse
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "malformed" in err.details()
    err = _raw_channel_call(
        server, api_key, "StreamTraceOutcomes", True, [GARBAGE], analytics_pb2.StreamTraceOutcomesResponse
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    # A good message, then garbage: the stream fails as a whole.
    err = _raw_channel_call(
        server, api_key, "StreamUsage", True, [good, GARBAGE], analytics_pb2.StreamUsageResponse
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_garbage_bytes_in_a_unary_request_are_invalid_argument(server, api_key, client):
    for method, response in (
        ("RecordUsage", analytics_pb2.RecordUsageResponse),
        ("RecordTraceOutcome", analytics_pb2.RecordTraceOutcomeResponse),
        ("ComparePromptVersions", analytics_pb2.ComparePromptVersionsResponse),
    ):
        err = _raw_channel_call(server, api_key, method, False, [GARBAGE], response)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, method


def test_analytics_calls_need_an_api_key(server):
    with PromptGaugeClient(server.target, "pg_not_a_real_key") as stranger:
        _raises(lambda: stranger.record_usage("x", 1, new_trace()), grpc.StatusCode.UNAUTHENTICATED)
        _raises(
            lambda: stranger.stream_usage([[usage_record("x", 1, new_trace())]]),
            grpc.StatusCode.UNAUTHENTICATED,
        )
        _raises(lambda: stranger.compare_prompt_versions("x"), grpc.StatusCode.UNAUTHENTICATED)

"""Tally arithmetic and trace-id canonicalization: pure logic, no server,
no database."""

import math

import pytest

from promptgauge.server.errors import InvalidArgument
from promptgauge.server.tally import OBSERVATION_LINKED, OBSERVATION_OUTCOME, TALLY_FIELDS, Signals, Tally
from promptgauge.server.validation import canonical_trace_id, check_amount, check_span_id

LINKED = Signals(OBSERVATION_LINKED, None, None, None)


def outcome(success=None, cost=None, duration=None) -> Signals:
    return Signals(OBSERVATION_OUTCOME, success, cost, duration)


def test_a_link_counts_a_trace_and_carries_no_signal():
    tally = Tally()
    assert tally.add(LINKED) is None
    assert tally.as_dict() == {**Tally().as_dict(), "total_traces": 1}
    assert (tally.success_rate, tally.avg_cost_usd, tally.avg_latency_ms) == (None, None, None)


def test_each_signal_is_averaged_over_the_outcomes_that_carry_it():
    tally = Tally()
    durations = tally.add_all([
        LINKED, LINKED, LINKED,
        outcome(True, 0.5, 100.0),
        outcome(False, None, 300.0),
        outcome(True, 1.5, None),
    ])
    assert durations == [100.0, 300.0]
    assert tally.total_traces == 3
    assert (tally.success_n, tally.success_true, tally.success_rate) == (3, 2, 2 / 3)
    assert (tally.cost_n, tally.avg_cost_usd) == (2, 1.0)
    assert (tally.duration_n, tally.avg_latency_ms) == (2, 200.0)


def test_a_false_success_counts_as_carried_and_zero_amounts_count():
    tally = Tally()
    tally.add(outcome(False, 0.0, 0.0))
    averages = (tally.success_rate, tally.avg_cost_usd, tally.avg_latency_ms)
    assert tally.success_n == 1 and averages == (0.0, 0.0, 0.0)


def test_folding_in_two_parts_equals_folding_at_once():
    observations = [
        LINKED, outcome(True, 0.25, 10.0), LINKED, outcome(False, 0.75, 30.0), outcome(None, 1.0, None)
    ]
    whole = Tally()
    whole.add_all(observations)
    first = Tally()
    first.add_all(observations[:2])
    second = first.copy()
    second.add_all(observations[2:])
    assert second == whole
    assert first.as_dict() != whole.as_dict()  # the copy left the first part alone


def test_state_moves_by_name_in_the_fields_order():
    assert TALLY_FIELDS == tuple(Tally().as_dict())
    values = {name: i for i, name in enumerate(TALLY_FIELDS, start=1)}
    assert Tally(**values).as_dict() == values


@pytest.mark.parametrize("raw, canonical", [
    ("4BF92F3577B34DA6A3CE929D0E0E4736", "4bf92f3577b34da6a3ce929d0e0e4736"),
    ("4bf92f35-77b3-4da6-a3ce-929d0e0e4736", "4bf92f3577b34da6a3ce929d0e0e4736"),
    ("  4bf92f3577b34da6a3ce929d0e0e4736 ", "4bf92f3577b34da6a3ce929d0e0e4736"),
])
def test_a_uuid_and_an_otel_trace_id_are_one_canonical_form(raw, canonical):
    assert canonical_trace_id(raw) == canonical


@pytest.mark.parametrize("raw, reason", [
    ("", "EMPTY_FIELD"),
    ("0" * 32, "INVALID_TRACE_ID"),
    ("4bf92f3577b34da6a3ce929d0e0e473", "INVALID_TRACE_ID"),
    ("4bf92f3577b34da6a3ce929d0e0e47361", "INVALID_TRACE_ID"),
    ("----4bf92f3577b34da6a3ce929d0e0e4736", "INVALID_TRACE_ID"),
    ("4bf92f357-7b3-4da6-a3ce-929d0e0e4736", "INVALID_TRACE_ID"),
    ("4bf92f3577b34da6a3ce929d0e0e473g", "INVALID_TRACE_ID"),
    ("x" * 1000, "INVALID_TRACE_ID"),
])
def test_anything_else_is_invalid_and_named_briefly(raw, reason):
    with pytest.raises(InvalidArgument) as error:
        canonical_trace_id(raw)
    assert (error.value.field, error.value.reason) == ("trace_id", reason)
    assert len(error.value.message) < 200


@pytest.mark.parametrize("span, expected", [
    (None, ""), ("a", "a"), ("span 1", "span 1"), ("x" * 128, "x" * 128)
])
def test_span_ids(span, expected):
    assert check_span_id(span) == expected


@pytest.mark.parametrize("span", ["", " a", "a ", "x" * 129, "é", "a\nb"])
def test_bad_span_ids(span):
    with pytest.raises(InvalidArgument) as error:
        check_span_id(span)
    assert error.value.reason == "INVALID_SPAN_ID"


@pytest.mark.parametrize("value", [-0.001, math.nan, math.inf, -math.inf, 1e12 * 1.0001])
def test_amounts_are_finite_and_within_bounds(value):
    with pytest.raises(InvalidArgument) as error:
        check_amount(value, "duration_ms")
    assert (error.value.field, error.value.reason) == ("duration_ms", "INVALID_NUMBER")


def test_amount_bounds_themselves_are_accepted():
    assert check_amount(0.0, "x") == 0.0 and check_amount(1e12, "x") == 1e12
    assert check_amount(None, "x") is None

"""server/otlp.py: OpenTelemetry spans -> usage links and trace outcomes, as
DESIGN.md's "OpenTelemetry ingestion" says; pure, no server."""

import secrets
from datetime import datetime

import pytest
from conftest import otlp_export, otlp_span
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from promptgauge.server import otlp

OK, ERROR = trace_pb2.Status.STATUS_CODE_OK, trace_pb2.Status.STATUS_CODE_ERROR
START = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z, in ns
LINK = {"promptgauge__prompt__name": "support", "promptgauge__prompt__version": 2}


def trace() -> bytes:
    return secrets.token_bytes(16)


def child(t: bytes, **attributes):
    return otlp_span(t, parent=secrets.token_bytes(8), **attributes)


def problem(span) -> str:
    with pytest.raises(otlp.SpanProblem) as raised:
        otlp.map_span(span)
    return str(raised.value)


def test_a_child_span_without_promptgauge_attributes_is_ignored():
    span = child(trace(), **{"gen_ai__usage__input_tokens": 10, "http__method": "GET"})
    assert otlp.map_span(span) is None


def test_a_child_span_with_both_link_attributes_links_its_trace_and_span_as_hex():
    t = trace()
    span = child(t, **LINK)
    mapped = otlp.map_span(span)
    assert mapped.outcome is None
    assert mapped.link == otlp.SpanLink("support", 2, t.hex(), span.span_id.hex())
    assert mapped.link.fields() == ("support", 2, t.hex(), span.span_id.hex())


def test_a_root_span_is_its_traces_outcome():
    t = trace()
    span = otlp_span(
        t, start_ns=START, end_ns=START + 1_234_500_000, promptgauge__cost_usd=0.0125,
        gen_ai__usage__input_tokens=1200, gen_ai__usage__output_tokens=340,
    )
    mapped = otlp.map_span(span)
    assert mapped.link is None
    assert mapped.outcome == otlp.SpanOutcome(
        trace_id=t.hex(), success=True, total_cost_usd=0.0125, duration_ms=1234.5,
        input_tokens=1200, output_tokens=340,
        end_time=datetime(2026, 1, 1, 0, 0, 1, 234500),
    )
    ended = datetime(2026, 1, 1, 0, 0, 1, 234500)
    assert mapped.outcome.fields() == (t.hex(), True, 0.0125, 1234.5, 1200, 340, ended)


def test_a_root_span_with_the_link_attributes_is_both_link_and_outcome():
    t = trace()
    mapped = otlp.map_span(otlp_span(t, start_ns=START, end_ns=START + 10**6, **LINK))
    assert mapped.link.prompt_version == 2 and mapped.outcome.duration_ms == 1.0


@pytest.mark.parametrize(("status", "attribute", "success"), [
    (0, None, True),  # UNSET
    (OK, None, True),
    (ERROR, None, False),
    (ERROR, True, True),  # the attribute says otherwise
    (OK, False, False),
])
def test_success_is_the_status_unless_promptgauge_success_says_otherwise(status, attribute, success):
    extra = {} if attribute is None else {"promptgauge__success": attribute}
    mapped = otlp.map_span(otlp_span(trace(), status=status, **extra))
    assert mapped.outcome.success is success


def test_an_integer_cost_is_a_number_and_a_root_without_times_has_no_duration():
    outcome = otlp.map_span(otlp_span(trace(), promptgauge__cost_usd=2)).outcome
    assert (outcome.total_cost_usd, outcome.duration_ms, outcome.end_time) == (2.0, None, None)
    assert isinstance(outcome.total_cost_usd, float)


def test_unknown_promptgauge_attributes_on_a_child_carry_nothing():
    assert otlp.map_span(child(trace(), promptgauge__agent="triage")) is None


@pytest.mark.parametrize(("attributes", "words"), [
    ({"promptgauge__prompt__name": "support"}, "promptgauge.prompt.version is missing"),
    ({"promptgauge__prompt__version": 2}, "promptgauge.prompt.name is missing"),
    ({**LINK, "promptgauge__prompt__version": "2"}, "promptgauge.prompt.version must be an int, got string"),
    ({**LINK, "promptgauge__prompt__version": 2.0}, "promptgauge.prompt.version must be an int, got double"),
    ({**LINK, "promptgauge__prompt__name": 7}, "promptgauge.prompt.name must be a string, got int"),
    ({**LINK, "promptgauge__prompt__name": common_pb2.AnyValue()}, "must be a string, got an empty value"),
    ({**LINK, "promptgauge__prompt__version": 2**31}, "must be at most 2147483647, got 2147483648"),
])
def test_a_link_that_cannot_be_read_names_the_attribute(attributes, words):
    assert words in problem(child(trace(), **attributes))


@pytest.mark.parametrize(("attributes", "words"), [
    ({"promptgauge__success": "yes"}, "promptgauge.success must be a bool, got string"),
    ({"promptgauge__cost_usd": "0.5"}, "promptgauge.cost_usd must be a number, got string"),
    ({"gen_ai__usage__input_tokens": 1.5}, "gen_ai.usage.input_tokens must be an int, got double"),
    ({"gen_ai__usage__output_tokens": -1}, "gen_ai.usage.output_tokens must not be negative, got -1"),
])
def test_an_outcome_that_cannot_be_read_names_the_attribute(attributes, words):
    assert words in problem(otlp_span(trace(), **attributes))


def test_a_root_span_that_ends_before_it_starts_is_a_problem():
    assert "ends before it starts" in problem(otlp_span(trace(), start_ns=START, end_ns=START - 1))


def test_tokens_on_a_child_span_are_not_read():
    """gen_ai.usage.* on an LLM call's span is not what a problem is found in."""
    assert otlp.map_span(child(trace(), gen_ai__usage__input_tokens="many")) is None


def test_an_export_keeps_the_spans_that_carry_something_and_names_the_first_problems():
    t = trace()
    good = [otlp_span(t, start_ns=START, end_ns=START + 5), child(t, **LINK)]
    noise = [child(t, **{"db__system": "postgresql"}) for _ in range(50)]
    bad = [child(t, promptgauge__prompt__name="support") for _ in range(otlp.MAX_PROBLEMS + 2)]
    request = otlp_export(*good[:1], *noise, *bad, *good[1:])
    mapped = otlp.map_export(otlp.spans_of(request))
    assert [(s.span_id, s.link is not None, s.outcome is not None) for s in mapped.spans] == [
        (good[0].span_id.hex(), False, True), (good[1].span_id.hex(), True, False),
    ]
    assert mapped.rejected == otlp.MAX_PROBLEMS + 2
    message = mapped.error_message()
    first = f"span {bad[0].span_id.hex()} of trace {t.hex()}: attribute promptgauge.prompt.version is missing"
    assert message.startswith(f"{otlp.MAX_PROBLEMS + 2} span(s) rejected: {first}")
    assert message.count("promptgauge.prompt.version is missing") == otlp.MAX_PROBLEMS
    assert message.endswith("; and 2 more")


def test_an_export_without_problems_has_no_error_message():
    mapped = otlp.map_export(otlp.spans_of(otlp_export(child(trace(), **LINK))))
    assert (mapped.rejected, mapped.error_message()) == (0, "")


def test_spans_of_reads_every_resource_and_scope():
    a, b, c = (child(trace()) for _ in range(3))
    request = otlp_export(a)
    request.resource_spans.add().scope_spans.add().spans.extend([b])
    request.resource_spans[1].scope_spans.add().spans.extend([c])
    assert [s.span_id for s in otlp.spans_of(request)] == [a.span_id, b.span_id, c.span_id]

"""OTLP/gRPC trace ingestion: OpenTelemetry spans -> usage links and outcomes.

Glue, like servicers.py: it reads the OpenTelemetry protocol's generated
messages (from the opentelemetry-proto package) and hands plain values to
the domain (Analytics.record_export). The mapping is DESIGN.md's
"OpenTelemetry ingestion":

- a span with `promptgauge.prompt.name` (string) and
  `promptgauge.prompt.version` (int) links its trace and span (hex) to
  that version;
- a root span (no parent) is its trace's outcome: duration from its start
  and end, success from its status (ERROR is false) unless a bool
  `promptgauge.success` says otherwise, cost from `promptgauge.cost_usd`,
  tokens from `gen_ai.usage.input_tokens` / `gen_ai.usage.output_tokens`,
  end time from its end.

Most spans of a real trace carry nothing for promptgauge. A child span is
skipped unless its encoded bytes hold "promptgauge." (a serialization and a
search, both in C; reading its attribute keys in Python took about twice as
long: docs/performance.md, row (g)); one that does is then judged on its
keys alone (the bytes may be a value's), before any value is read.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from opentelemetry.proto.trace.v1 import trace_pb2

from .validation import INT32_MAX

PREFIX = "promptgauge."
_PREFIX_BYTES = PREFIX.encode()  # a key that starts with PREFIX holds these bytes verbatim
PROMPT_NAME = "promptgauge.prompt.name"
PROMPT_VERSION = "promptgauge.prompt.version"
SUCCESS = "promptgauge.success"
COST_USD = "promptgauge.cost_usd"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"

# Problems named in partial_success.error_message; the rest are counted.
MAX_PROBLEMS = 5

_ERROR = trace_pb2.Status.STATUS_CODE_ERROR


class SpanProblem(Exception):
    """A span that cannot be used; the message says which attribute and why."""


@dataclass(frozen=True)
class SpanLink:
    """A usage link read from a span."""

    prompt_name: str
    prompt_version: int
    trace_id: str  # hex, as sent; canonicalized by the domain like any other
    span_id: str

    def fields(self) -> tuple:
        """What Analytics.record_export takes for a link."""
        return (self.prompt_name, self.prompt_version, self.trace_id, self.span_id)


@dataclass(frozen=True)
class SpanOutcome:
    """A trace's outcome read from its root span."""

    trace_id: str
    success: bool
    total_cost_usd: float | None
    duration_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    end_time: datetime | None

    def fields(self) -> tuple:
        """What Analytics.record_export takes for an outcome."""
        return (self.trace_id, self.success, self.total_cost_usd, self.duration_ms, self.input_tokens,
                self.output_tokens, self.end_time)


@dataclass(frozen=True)
class MappedSpan:
    """A span that carries something for promptgauge."""

    trace_id: str
    span_id: str
    link: SpanLink | None
    outcome: SpanOutcome | None


@dataclass
class MappedExport:
    """An export's spans as promptgauge sees them."""

    spans: list[MappedSpan] = field(default_factory=list)
    rejected: int = 0
    problems: list[str] = field(default_factory=list)  # the first MAX_PROBLEMS

    def reject(self, trace_id: str, span_id: str, why: str) -> None:
        self.rejected += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"span {span_id or '(none)'} of trace {trace_id or '(none)'}: {why}")

    def error_message(self) -> str:
        """partial_success.error_message: how many spans were rejected, and the
        first few reasons; empty when none was."""
        if not self.rejected:
            return ""
        more = self.rejected - len(self.problems)
        return (
            f"{self.rejected} span(s) rejected: "
            + "; ".join(self.problems)
            + (f"; and {more} more" if more else "")
        )


def _value(kv, expected: str, what: str):
    """An attribute's value of the AnyValue kind `expected` (an int where a
    double is expected too); SpanProblem otherwise."""
    kind = kv.value.WhichOneof("value")
    if kind == expected or (expected == "double_value" and kind == "int_value"):
        return getattr(kv.value, kind)
    got = kind.removesuffix("_value") if kind else "an empty value"
    raise SpanProblem(f"attribute {kv.key} must be {what}, got {got}")


def _attributes(span) -> dict:
    """The attributes promptgauge reads, by key (the last of a repeated key)."""
    return {
        kv.key: kv
        for kv in span.attributes
        if kv.key.startswith(PREFIX) or kv.key in (INPUT_TOKENS, OUTPUT_TOKENS)
    }


def _tokens(attrs: dict, key: str) -> int | None:
    kv = attrs.get(key)
    if kv is None:
        return None
    tokens = _value(kv, "int_value", "an int")
    if tokens < 0:
        raise SpanProblem(f"attribute {key} must not be negative, got {tokens}")
    return tokens


def _end_time(nanos: int) -> datetime | None:
    if not nanos:
        return None
    # In integers: a float of the seconds since 1970 drifts by a microsecond.
    seconds, rest = divmod(nanos, 10**9)
    # Naive UTC, as every time the domain takes.
    ended = datetime.fromtimestamp(seconds, timezone.utc) + timedelta(microseconds=rest // 1000)
    return ended.replace(tzinfo=None)


def map_span(span) -> MappedSpan | None:
    """What a span carries for promptgauge, None if nothing; SpanProblem when
    what it carries cannot be used."""
    root = not span.parent_span_id
    if not root and not any(kv.key.startswith(PREFIX) for kv in span.attributes):
        return None  # the common case, decided on the keys alone
    trace_id, span_id = span.trace_id.hex(), span.span_id.hex()
    attrs = _attributes(span)
    link = None
    if PROMPT_NAME in attrs or PROMPT_VERSION in attrs:
        if PROMPT_NAME not in attrs or PROMPT_VERSION not in attrs:
            missing = PROMPT_VERSION if PROMPT_NAME in attrs else PROMPT_NAME
            raise SpanProblem(
                f"attribute {missing} is missing: a link needs both {PROMPT_NAME} and {PROMPT_VERSION}"
            )
        version = _value(attrs[PROMPT_VERSION], "int_value", "an int")
        if version > INT32_MAX:  # an OTLP int is 64-bit; a version number is not
            raise SpanProblem(f"attribute {PROMPT_VERSION} must be at most {INT32_MAX}, got {version}")
        link = SpanLink(_value(attrs[PROMPT_NAME], "string_value", "a string"), version, trace_id, span_id)
    outcome = None
    if root:
        success = span.status.code != _ERROR
        if SUCCESS in attrs:
            success = _value(attrs[SUCCESS], "bool_value", "a bool")
        cost = _value(attrs[COST_USD], "double_value", "a number") if COST_USD in attrs else None
        duration = None
        start, end = span.start_time_unix_nano, span.end_time_unix_nano
        if start and end:
            if end < start:
                raise SpanProblem(f"it ends before it starts (start {start} ns, end {end} ns)")
            duration = (end - start) / 1e6
        outcome = SpanOutcome(
            trace_id,
            success,
            None if cost is None else float(cost),
            duration,
            _tokens(attrs, INPUT_TOKENS),
            _tokens(attrs, OUTPUT_TOKENS),
            _end_time(end),
        )
    if link is None and outcome is None:
        return None  # promptgauge.* attributes of no meaning here, on a child span
    return MappedSpan(trace_id, span_id, link, outcome)


def spans_of(request) -> Iterator:
    """Every span of an ExportTraceServiceRequest."""
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            yield from scope_spans.spans


def map_export(spans: Iterable) -> MappedExport:
    """The spans that carry something for promptgauge; the unusable ones
    counted, the first few named."""
    mapped = MappedExport()
    for span in spans:
        if span.parent_span_id and _PREFIX_BYTES not in span.SerializeToString():
            continue  # the common case: a child span with nothing for promptgauge
        try:
            one = map_span(span)
        except SpanProblem as problem:
            mapped.reject(span.trace_id.hex(), span.span_id.hex(), str(problem))
            continue
        if one is not None:
            mapped.spans.append(one)
    return mapped

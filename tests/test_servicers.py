"""The servicers, called directly with fake domain objects: they only
translate request messages to domain calls and results to response messages.
No socket, no database."""

import asyncio
import contextlib
import datetime

import grpc
import pytest

from promptgauge.server import interceptors
from promptgauge.server.accounts import Caller
from promptgauge.server.analytics import DUPLICATE, RECORDED, VersionMetrics
from promptgauge.server.errors import InvalidArgument, NotFound
from promptgauge.server.registry import VersionView
from promptgauge.server.servicers import AnalyticsServicer, PromptServicer
from promptgauge.server.workers import Workers
from promptgauge.v1 import analytics_pb2, prompts_pb2

CALLER = Caller(account_id=3, key_id="key_x")
WHEN = datetime.datetime(2026, 11, 30, 12, 0, 0, 250000)


@pytest.fixture(autouse=True)
def caller():
    token = interceptors._call.set(interceptors.Call("/test", CALLER))
    yield
    interceptors._call.reset(token)


def view(version: int = 1, text: str = "Hi {name}") -> VersionView:
    return VersionView(id="6f1c", name="p", version=version, template_text=text, description="d",
                       is_active=True, parent_version=None, created_by="key_x", create_time=WHEN,
                       variables=["name"])


class Registry:
    def __init__(self):
        self.calls: list[tuple] = []

    def create_version(self, caller, **kwargs):
        self.calls.append((caller, kwargs))
        return view()


def test_create_passes_unset_optionals_as_none_and_returns_the_version():
    registry = Registry()
    servicer = PromptServicer(registry)
    response = servicer.CreatePromptVersion(
        prompts_pb2.CreatePromptVersionRequest(name="p", template_text="Hi {name}"), None
    )
    servicer.CreatePromptVersion(
        prompts_pb2.CreatePromptVersionRequest(name="p", template_text="t", version=4, parent_version=0,
                                               activate=False), None
    )
    (first_caller, first), (_, second) = registry.calls
    assert first_caller == CALLER
    assert (first["version"], first["parent_version"], first["activate"]) == (None, None, None)
    # Set to zero or false is not unset.
    assert (second["version"], second["parent_version"], second["activate"]) == (4, 0, False)
    v = response.prompt_version
    assert (v.id, v.name, v.version, v.template_text, v.is_active, list(v.variables)) == (
        "6f1c", "p", 1, "Hi {name}", True, ["name"])
    assert not v.HasField("parent_version")
    assert v.create_time.ToDatetime() == WHEN


class Analytics:
    """Rejects trace "bad", says "dup" is a duplicate; remembers each batch."""

    def __init__(self, metrics=()):
        self.batches: list[list] = []
        self.metrics = list(metrics)

    def record_usage(self, caller, fields):
        assert caller == CALLER
        self.batches.append(fields)
        results = []
        for name, _, trace, _ in fields:
            if trace == "bad":
                results.append(NotFound(f"no {name}", field="prompt_version", reason="VERSION_NOT_FOUND"))
            else:
                results.append(DUPLICATE if trace == "dup" else RECORDED)
        return results

    def compare(self, caller, name, **window):
        return self.metrics


def _servicer(analytics, max_records=10, max_errors=2, max_message_bytes=1 << 20) -> AnalyticsServicer:
    scope = contextlib.nullcontext
    return AnalyticsServicer(analytics, Workers(1, scope=scope), max_records, max_errors, max_message_bytes)


async def _stream(*messages):
    for message in messages:
        yield message


def _usage(*traces):
    return analytics_pb2.StreamUsageRequest(
        records=[analytics_pb2.UsageRecord(prompt_name="p", prompt_version=1, trace_id=t) for t in traces]
    )


def test_a_stream_summary_counts_results_and_lists_errors_with_index_code_reason_up_to_the_cap():
    analytics = Analytics()
    servicer = _servicer(analytics)
    messages = [_usage("a", "bad", "dup"), _usage("bad", "b"), _usage("bad")]
    summary = asyncio.run(servicer.StreamUsage(_stream(*messages), None)).summary
    assert (summary.received, summary.recorded, summary.duplicates, summary.rejected) == (6, 2, 1, 3)
    assert [(e.index, e.code, e.reason) for e in summary.errors] == [
        (1, grpc.StatusCode.NOT_FOUND.value[0], "VERSION_NOT_FOUND"),
        (3, grpc.StatusCode.NOT_FOUND.value[0], "VERSION_NOT_FOUND"),
    ]  # the third error is counted, not listed: max_errors is 2
    # Every record reached the domain once, in order, with unset span ids as None.
    assert [f for batch in analytics.batches for f in batch] == [
        ("p", 1, t, None) for t in ("a", "bad", "dup", "bad", "b", "bad")
    ]


def test_a_message_over_the_record_limit_fails_after_storing_the_messages_before_it():
    analytics = Analytics()
    servicer = _servicer(analytics, max_records=2)
    with pytest.raises(InvalidArgument) as error:
        asyncio.run(servicer.StreamUsage(_stream(_usage("a"), _usage("b", "c", "d"), _usage("e")), None))
    assert error.value.reason == "TOO_MANY_RECORDS" and "stream message 1" in error.value.message
    assert [f[2] for batch in analytics.batches for f in batch] == ["a"]


def _metrics(version: int, text: str) -> VersionMetrics:
    return VersionMetrics(version, text, 10, 0.5, 0.01, 100.0, 150.0)


@pytest.mark.parametrize("view, omitted, texts", [
    (analytics_pb2.COMPARISON_VIEW_UNSPECIFIED, False, ["one", "two"]),
    (analytics_pb2.COMPARISON_VIEW_FULL, False, ["one", "two"]),
    (analytics_pb2.COMPARISON_VIEW_BASIC, False, ["", ""]),
])
def test_a_comparison_carries_templates_as_its_view_says(view, omitted, texts):
    servicer = _servicer(Analytics([_metrics(1, "one"), _metrics(2, "two")]))
    request = analytics_pb2.ComparePromptVersionsRequest(name="p", view=view)
    response = servicer.ComparePromptVersions(request, None)
    assert [v.template_text for v in response.versions] == texts
    assert response.templates_omitted is omitted
    assert [(v.version, v.total_traces, v.p95_latency_ms) for v in response.versions] == [(1, 10, 150.0),
                                                                                          (2, 10, 150.0)]


def test_templates_that_would_not_fit_are_left_out_and_said_so():
    servicer = _servicer(Analytics([_metrics(1, "x" * 600), _metrics(2, "y" * 600)]), max_message_bytes=1000)
    response = servicer.ComparePromptVersions(analytics_pb2.ComparePromptVersionsRequest(name="p"), None)
    assert response.templates_omitted and [v.template_text for v in response.versions] == ["", ""]
    assert response.ByteSize() <= 1000


def test_an_unknown_view_is_invalid_argument():
    servicer = _servicer(Analytics())
    with pytest.raises(InvalidArgument) as error:
        servicer.ComparePromptVersions(analytics_pb2.ComparePromptVersionsRequest(name="p", view=9), None)
    assert error.value.field == "view"


def test_a_group_that_fails_ends_the_stream_with_its_error_after_the_groups_before_it():
    class Failing(Analytics):
        def record_usage(self, caller, fields):
            if any(trace == "boom" for _, _, trace, _ in fields):
                raise RuntimeError("the database went away")
            return super().record_usage(caller, fields)

    analytics = Failing()
    servicer = _servicer(analytics)
    with pytest.raises(RuntimeError, match="went away"):
        messages = _stream(_usage("a"), _usage("b"), _usage("boom"), _usage("c"))
        asyncio.run(servicer.StreamUsage(messages, None))
    stored = [f[2] for batch in analytics.batches for f in batch]
    assert stored[0] == "a" and "boom" not in stored

"""gRPC glue: request message -> domain call -> response message.

Nothing here decides anything; authentication, connections and error
mapping happen once, in the interceptors. Unary methods are plain functions
(ConnectionScope runs them on a worker thread); a method that reads a stream
is async and hands each batch to a worker, so an idle stream holds no thread.
"""

import asyncio
import collections
import datetime

from google.protobuf import timestamp_pb2

from promptgauge.v1 import analytics_pb2, analytics_pb2_grpc, prompts_pb2, prompts_pb2_grpc

from .analytics import DUPLICATE, RECORDED, Analytics, VersionMetrics
from .errors import DomainError, InvalidArgument
from .interceptors import current_caller, status_code_of
from .observability import count_records
from .registry import PromptRegistry, VersionView
from .watch import ComparisonHub
from .workers import Workers


def _opt(message, field: str):
    """The value of an `optional` field, or None when it is unset."""
    return getattr(message, field) if message.HasField(field) else None


def version_message(view: VersionView) -> prompts_pb2.PromptVersion:
    create_time = timestamp_pb2.Timestamp()
    create_time.FromDatetime(view.create_time)
    return prompts_pb2.PromptVersion(
        id=view.id,
        name=view.name,
        version=view.version,
        template_text=view.template_text,
        description=view.description,
        is_active=view.is_active,
        parent_version=view.parent_version,
        created_by=view.created_by,
        create_time=create_time,
        variables=view.variables,
    )


class PromptServicer(prompts_pb2_grpc.PromptServiceServicer):
    def __init__(self, registry: PromptRegistry):
        self.registry = registry

    def CreatePromptVersion(self, request, context):
        view = self.registry.create_version(
            current_caller(),
            name=request.name,
            template_text=request.template_text,
            description=request.description,
            version=_opt(request, "version"),
            parent_version=_opt(request, "parent_version"),
            activate=_opt(request, "activate"),
        )
        return prompts_pb2.CreatePromptVersionResponse(prompt_version=version_message(view))

    def ListPrompts(self, request, context):
        views, token = self.registry.list_all(current_caller(), request.page_size, request.page_token)
        return prompts_pb2.ListPromptsResponse(
            prompt_versions=[version_message(v) for v in views], next_page_token=token
        )

    def ListPromptVersions(self, request, context):
        views, token = self.registry.list_versions(
            current_caller(), request.name, request.page_size, request.page_token
        )
        return prompts_pb2.ListPromptVersionsResponse(
            prompt_versions=[version_message(v) for v in views], next_page_token=token
        )

    def GetPromptVersion(self, request, context):
        view = self.registry.get_version(current_caller(), request.name, _opt(request, "version"))
        return prompts_pb2.GetPromptVersionResponse(prompt_version=version_message(view))

    def ActivatePromptVersion(self, request, context):
        view = self.registry.activate(current_caller(), request.name, request.version)
        return prompts_pb2.ActivatePromptVersionResponse(prompt_version=version_message(view))

    def RenderPrompt(self, request, context):
        text, version = self.registry.render(
            current_caller(), request.name, dict(request.variables), _opt(request, "version")
        )
        return prompts_pb2.RenderPromptResponse(text=text, version=version)


def _time(message, field: str):
    """A Timestamp field as naive UTC, or None when unset."""
    if not message.HasField(field):
        return None
    try:
        return getattr(message, field).ToDatetime()
    except (ValueError, OverflowError) as error:
        raise InvalidArgument(f"{field} is not a valid timestamp: {error}", field=field,
                              reason="INVALID_TIME") from None


def _timestamp(value) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out


def _outcome_fields(outcome: analytics_pb2.TraceOutcome) -> tuple:
    return (
        outcome.trace_id,
        _opt(outcome, "success"),
        _opt(outcome, "total_cost_usd"),
        _opt(outcome, "duration_ms"),
        _opt(outcome, "input_tokens"),
        _opt(outcome, "output_tokens"),
        _time(outcome, "end_time"),
    )


def _compare_args(request: analytics_pb2.ComparePromptVersionsRequest) -> dict:
    return {
        "name": request.name,
        "start_time": _time(request, "start_time"),
        "end_time": _time(request, "end_time"),
        "baseline_version": _opt(request, "baseline_version"),
        "confidence_level": request.confidence_level,
    }


def _metrics_message(m: VersionMetrics) -> analytics_pb2.VersionMetrics:
    fields = {k: v for k, v in vars(m).items() if v is not None}
    interval = fields.pop("success_rate_interval", None)
    vs = fields.pop("vs_baseline", None)
    message = analytics_pb2.VersionMetrics(**fields)
    if interval is not None:
        message.success_rate_interval.low, message.success_rate_interval.high = interval
    if vs is not None:
        message.vs_baseline.CopyFrom(
            analytics_pb2.Significance(**{k: v for k, v in vars(vs).items() if v is not None})
        )
    return message


_GRANULARITY = {
    analytics_pb2.GRANULARITY_HOUR: datetime.timedelta(hours=1),
    analytics_pb2.GRANULARITY_DAY: datetime.timedelta(days=1),
}


def _usage_fields(usage: analytics_pb2.UsageRecord) -> tuple:
    return (usage.prompt_name, usage.prompt_version, usage.trace_id, _opt(usage, "span_id"))


class _Summary:
    """An IngestSummary being added up over a stream."""

    def __init__(self, kind: str, max_errors: int):
        self.kind = kind  # "usage" or "outcome", for the records metric
        self.message = analytics_pb2.IngestSummary()
        self.max_errors = max_errors

    def add(self, first_index: int, results: list) -> None:
        s = self.message
        before = (s.recorded, s.duplicates, s.rejected)
        s.received += len(results)
        for offset, result in enumerate(results):
            if result == RECORDED:
                s.recorded += 1
            elif result == DUPLICATE:
                s.duplicates += 1
            else:
                s.rejected += 1
                if len(s.errors) < self.max_errors:
                    s.errors.add(
                        index=first_index + offset,
                        code=status_code_of(result).value[0],
                        message=result.message,
                        reason=result.reason,
                    )
        count_records(
            self.kind, s.recorded - before[0], s.duplicates - before[1], s.rejected - before[2]
        )


_VIEWS = frozenset(analytics_pb2.ComparisonView.values())

# Records stored in one transaction when several stream messages have already
# arrived: a commit (an fsync on SQLite) per message of one record would bound
# a stream to a few hundred records a second. A larger message is stored alone.
GROUP_RECORDS = 500


class _Pipeline:
    """A stream's records stored in order, one group after another on a
    worker, while the next group gathers what arrives meanwhile: a group is
    sent as soon as the one before it is stored (at once, if none is being
    stored), whether or not more arrives. A worker and a connection are
    taken per group, so an idle stream holds neither; and what was read is
    stored even if the call ends (a deadline) before the stream does."""

    def __init__(self, workers: Workers, store, summary: _Summary):
        self.workers = workers
        self.store = store  # a list of stream records -> their results, on a worker
        self.summary = summary
        self.group: list = []
        self.sent: collections.deque[asyncio.Future] = collections.deque()  # in order

    async def add(self, records) -> None:
        self.group.extend(records)
        if self.sent and not self.sent[-1].done() and len(self.group) >= GROUP_RECORDS:
            await asyncio.wait([self.sent[-1]])  # a fast client waits for the database
        self._send()
        self._count()

    async def close(self) -> None:
        """Wait until everything added is stored; raise a group's error."""
        while self.sent or self.group:
            if self.sent:
                await asyncio.wait([self.sent[-1]])
            self._count()
            self._send()

    def _send(self, _done: asyncio.Future | None = None) -> None:
        busy = self.sent and not self.sent[-1].done()
        if self.group and not busy and not (_done is not None and _done.exception()):
            storing = asyncio.ensure_future(self.workers.run(self.store, self.group))
            storing.add_done_callback(self._send)  # the next group goes at once
            self.sent.append(storing)
            self.group = []

    def _count(self) -> None:
        """Add the results of the groups stored so far to the summary, in order;
        raise a group's error."""
        while self.sent and self.sent[0].done():
            self.summary.add(self.summary.message.received, self.sent.popleft().result())


class AnalyticsServicer(analytics_pb2_grpc.AnalyticsServiceServicer):
    def __init__(
        self, analytics: Analytics, workers: Workers, max_records_per_message: int, max_stream_errors: int,
        max_message_bytes: int,
    ):
        self.analytics = analytics
        self.workers = workers
        self.max_response_bytes = max_message_bytes
        self.max_records = max_records_per_message
        self.max_errors = max_stream_errors
        self.hub = ComparisonHub(workers)

    @staticmethod
    def _single(kind: str, results: list):
        """The one result of a unary call, counted; raised when it is an error."""
        _Summary(kind, 0).add(0, results)
        (result,) = results
        if isinstance(result, DomainError):
            raise result
        return result

    def RecordTraceOutcome(self, request, context):
        if not request.HasField("outcome"):
            raise InvalidArgument("outcome is required", field="outcome", reason="EMPTY_FIELD")
        results = self.analytics.record_outcomes(current_caller(), [_outcome_fields(request.outcome)])
        return analytics_pb2.RecordTraceOutcomeResponse(status=self._single("outcome", results))

    def RecordUsage(self, request, context):
        if not request.HasField("usage"):
            raise InvalidArgument("usage is required", field="usage", reason="EMPTY_FIELD")
        self._single("usage", self.analytics.record_usage(current_caller(), [_usage_fields(request.usage)]))
        # A repeated link changes nothing and is as good as recorded.
        return analytics_pb2.RecordUsageResponse(status=RECORDED)

    async def _ingest(
        self, request_iterator, kind: str, field: str, to_fields, record
    ) -> analytics_pb2.IngestSummary:
        """Messages stored in order, each in one transaction or with those that
        arrived with it; bad records are rejected alone. A worker and a
        connection are taken per group, never for the stream's whole life."""
        caller = current_caller()
        summary = _Summary(kind, self.max_errors)
        pipeline = _Pipeline(
            self.workers, lambda records: record(caller, [to_fields(r) for r in records]), summary
        )
        number = 0
        try:
            async for message in request_iterator:
                records = getattr(message, field)
                if len(records) > self.max_records:
                    raise InvalidArgument(
                        f"stream message {number} has {len(records)} {field}; the limit is "
                        f"{self.max_records} per message (earlier messages were stored)",
                        field=field,
                        reason="TOO_MANY_RECORDS",
                    )
                await pipeline.add(records)
                number += 1
        except DomainError:
            await pipeline.close()  # the messages before the one at fault are stored
            raise
        await pipeline.close()
        return summary.message

    async def StreamTraceOutcomes(self, request_iterator, context):
        summary = await self._ingest(
            request_iterator, "outcome", "outcomes", _outcome_fields, self.analytics.record_outcomes
        )
        return analytics_pb2.StreamTraceOutcomesResponse(summary=summary)

    async def StreamUsage(self, request_iterator, context):
        summary = await self._ingest(
            request_iterator, "usage", "records", _usage_fields, self.analytics.record_usage
        )
        return analytics_pb2.StreamUsageResponse(summary=summary)

    def ComparePromptVersions(self, request, context):
        view = request.view
        if view not in _VIEWS:
            raise InvalidArgument(
                f"view {view} is not a ComparisonView: use COMPARISON_VIEW_BASIC or COMPARISON_VIEW_FULL",
                field="view",
                reason="INVALID_VIEW",
            )
        return self._compare(current_caller(), request)

    def _compare(self, caller, request) -> analytics_pb2.ComparePromptVersionsResponse:
        view = request.view
        metrics = self.analytics.compare(caller, **_compare_args(request))
        response = analytics_pb2.ComparePromptVersionsResponse(
            name=request.name,
            versions=[_metrics_message(m) for m in metrics],
        )
        # Templates are data the service accepted: their size never fails a
        # comparison. They stay out when asked, or when they would not fit.
        if view == analytics_pb2.COMPARISON_VIEW_BASIC or response.ByteSize() > self.max_response_bytes:
            for version in response.versions:
                version.ClearField("template_text")
            response.templates_omitted = view != analytics_pb2.COMPARISON_VIEW_BASIC
        return response

    def GetVersionTimeSeries(self, request, context):
        period = _GRANULARITY.get(request.granularity)
        if period is None:
            raise InvalidArgument(
                f"granularity {request.granularity} is not one of GRANULARITY_HOUR, GRANULARITY_DAY",
                field="granularity",
                reason="INVALID_GRANULARITY",
            )
        series = self.analytics.time_series(
            current_caller(), request.name, _time(request, "start_time"), _time(request, "end_time"), period
        )
        return analytics_pb2.GetVersionTimeSeriesResponse(
            series=[
                analytics_pb2.VersionSeries(
                    version=version,
                    buckets=[
                        analytics_pb2.TimeBucket(
                            start_time=_timestamp(b.start_time),
                            **{k: v for k, v in vars(b).items() if v is not None and k != "start_time"},
                        )
                        for b in buckets
                    ],
                )
                for version, buckets in series
            ]
        )

    async def WatchComparison(self, request, context):
        if request.view not in _VIEWS:
            raise InvalidArgument(
                f"view {request.view} is not a ComparisonView: "
                "use COMPARISON_VIEW_BASIC or COMPARISON_VIEW_FULL",
                field="view",
                reason="INVALID_VIEW",
            )
        caller = current_caller()
        key = (caller.account_id, request.SerializeToString(deterministic=True))
        async for response in self.hub.watch(key, lambda: self._compare(caller, request)):
            yield response

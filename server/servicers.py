"""gRPC glue: request message -> domain call -> response message.

Nothing here decides anything; authentication, connections and error
mapping happen once, in the interceptors. Unary methods are plain functions
(ConnectionScope runs them on a worker thread); a method that reads a stream
is async and hands each batch to a worker, so an idle stream holds no thread.
"""

import asyncio
import collections
import datetime

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from promptgauge.v1 import (
    agents_pb2,
    agents_pb2_grpc,
    analytics_pb2,
    analytics_pb2_grpc,
    prompts_pb2,
    prompts_pb2_grpc,
)

from . import agents, otlp
from .analytics import DUPLICATE, RECORDED, Analytics, VersionMetrics
from .errors import DomainError, InvalidArgument, Unavailable
from .feed import CLOSED, MAX_EVENTS, ChangeFeed, read_changes
from .interceptors import current_caller, status_code_of
from .observability import count_records
from .registry import EventView, PromptRegistry, PromptStateView, PromptView, VersionView
from .releases import Split
from .watch import ComparisonHub
from .workers import Workers


def _opt(message, field: str):
    """The value of an `optional` field, or None when it is unset."""
    return getattr(message, field) if message.HasField(field) else None


def timestamp(when) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(when)
    return out


def struct_dict(message, field: str) -> dict | None:
    """A google.protobuf.Struct field as a dict; None when unset."""
    return json_format.MessageToDict(getattr(message, field)) if message.HasField(field) else None


def struct_of(value: dict | None) -> struct_pb2.Struct | None:
    if value is None:
        return None
    out = struct_pb2.Struct()
    out.update(value)
    return out


def model_config_dict(message, field: str = "model_config") -> dict | None:
    """A ModelConfig field as ModelConfig's fields by name; None when unset."""
    if not message.HasField(field):
        return None
    return json_format.MessageToDict(getattr(message, field), preserving_proto_field_name=True)


def model_config_of(value: dict | None) -> prompts_pb2.ModelConfig | None:
    return None if value is None else json_format.ParseDict(value, prompts_pb2.ModelConfig())


def version_message(view: VersionView) -> prompts_pb2.PromptVersion:
    create_time = timestamp(view.create_time)
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
        model_config=model_config_of(view.model_config),
        input_schema=struct_of(view.input_schema),
        output_schema=struct_of(view.output_schema),
        change=view.change,
        source=view.source,
        labels=view.labels,
    )


def prompt_message(view: PromptView) -> prompts_pb2.Prompt:
    return prompts_pb2.Prompt(
        name=view.name, active_version=view.active_version, latest_version=view.latest_version,
        version_count=view.version_count, create_time=timestamp(view.create_time),
        update_time=timestamp(view.update_time),
    )


def _timestamp(when) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    if when is not None:
        stamp.FromDatetime(when)
    return stamp


def split_arms(split: Split) -> list[prompts_pb2.SplitArm]:
    return [
        prompts_pb2.SplitArm(
            version=arm.version, weight=arm.weight,
            buckets=[prompts_pb2.BucketRange(start=s, end=e) for s, e in arm.buckets],
        )
        for arm in split.arms
    ]


def split_message(name: str, split: Split) -> prompts_pb2.TrafficSplit:
    return prompts_pb2.TrafficSplit(
        name=name, arms=split_arms(split), split_id=split.split_id, update_time=_timestamp(split.update_time)
    )


def event_message(event: EventView) -> prompts_pb2.PromptEvent:
    message = prompts_pb2.PromptEvent(
        sequence=event.sequence, kind=int(event.kind), version=event.version or 0,
        previous_version=event.previous_version, label=event.label, created_by=event.created_by,
        create_time=_timestamp(event.create_time), name=event.name,
    )
    if event.split is not None:
        message.split.CopyFrom(split_message(event.name, event.split))
    return message


def state_message(state: PromptStateView) -> prompts_pb2.PromptState:
    return prompts_pb2.PromptState(
        name=state.name, active_version=state.active_version or 0, labels=state.labels,
        split=split_arms(state.split) if state.split else [], sequence=state.sequence,
        latest_version=state.latest_version, split_id=state.split.split_id if state.split else "",
    )


MAX_WATCHED_NAMES = 100


class PromptServicer(prompts_pb2_grpc.PromptServiceServicer):
    def __init__(
        self, registry: PromptRegistry, workers: Workers | None = None, feed: ChangeFeed | None = None,
        keepalive_seconds: float = 20.0,
    ):
        self.registry = registry
        self.workers = workers
        self.feed = feed
        self.keepalive_seconds = keepalive_seconds

    def CreatePromptVersion(self, request, context):
        view = self.registry.create_version(
            current_caller(),
            name=request.name,
            template_text=request.template_text,
            description=request.description,
            version=_opt(request, "version"),
            parent_version=_opt(request, "parent_version"),
            activate=_opt(request, "activate"),
            model_config=model_config_dict(request),
            input_schema=struct_dict(request, "input_schema"),
            output_schema=struct_dict(request, "output_schema"),
            source=request.source,
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
        view = self.registry.get_version(
            current_caller(), request.name, _opt(request, "version"), request.label
        )
        return prompts_pb2.GetPromptVersionResponse(prompt_version=version_message(view))

    def ActivatePromptVersion(self, request, context):
        view = self.registry.activate(current_caller(), request.name, request.version)
        return prompts_pb2.ActivatePromptVersionResponse(prompt_version=version_message(view))

    def RenderPrompt(self, request, context):
        text, version = self.registry.render(
            current_caller(), request.name, dict(request.variables), _opt(request, "version"), request.label
        )
        return prompts_pb2.RenderPromptResponse(text=text, version=version)

    def EditPromptVersion(self, request, context):
        view = self.registry.edit_version(
            current_caller(),
            name=request.name,
            edits=[(e.old_text, e.new_text) for e in request.edits],
            base_version=_opt(request, "base_version"),
            description=request.description,
            activate=_opt(request, "activate"),
            source=request.source,
        )
        return prompts_pb2.EditPromptVersionResponse(prompt_version=version_message(view))

    def DiffPromptVersions(self, request, context):
        diff, fields = self.registry.diff(
            current_caller(), request.name, request.from_version, request.to_version
        )
        return prompts_pb2.DiffPromptVersionsResponse(unified_diff=diff, changed_fields=fields)

    def GetPrompt(self, request, context):
        view = self.registry.get_prompt(current_caller(), request.name)
        return prompts_pb2.GetPromptResponse(prompt=prompt_message(view))

    def SetPromptLabel(self, request, context):
        view = self.registry.set_label(current_caller(), request.name, request.label, request.version)
        return prompts_pb2.SetPromptLabelResponse(prompt_version=version_message(view))

    def DeletePromptLabel(self, request, context):
        self.registry.delete_label(current_caller(), request.name, request.label)
        return prompts_pb2.DeletePromptLabelResponse()

    def SetTrafficSplit(self, request, context):
        split = self.registry.set_split(
            current_caller(), request.name, [(arm.version, arm.weight) for arm in request.arms]
        )
        return prompts_pb2.SetTrafficSplitResponse(split=split_message(request.name, split))

    def ClearTrafficSplit(self, request, context):
        self.registry.clear_split(current_caller(), request.name)
        return prompts_pb2.ClearTrafficSplitResponse()

    def ResolvePrompt(self, request, context):
        view, rendered = self.registry.resolve(
            current_caller(), request.name, request.subject, request.label, request.trace_id,
            dict(request.variables),
        )
        return prompts_pb2.ResolvePromptResponse(prompt_version=version_message(view), rendered_text=rendered)

    def _catch_up(self, caller, names: list[str], after: int) -> tuple[prompts_pb2.WatchPromptsResponse, int]:
        """On a worker: a new watch stream's first message and the sequence
        it is current as of (events after `after`, or the current states)."""
        registry = self.registry
        registry.check_watch(caller, names)
        wanted = set(names)

        def watched(name: str) -> bool:
            return not wanted or name in wanted

        if after:
            last = registry.last_sequence(caller.account_id)
            changes = read_changes(registry, caller.account_id, after, MAX_EVENTS)
            if len(changes.events) < MAX_EVENTS:
                sequence = max([last, *(e.sequence for e in changes.events)])
                return prompts_pb2.WatchPromptsResponse(
                    events=[event_message(e) for e in changes.events if watched(e.name)],
                    states=[state_message(s) for s in changes.states if watched(s.name)],
                ), sequence
        states, sequence = registry.states(caller.account_id, names)
        return prompts_pb2.WatchPromptsResponse(states=[state_message(s) for s in states]), sequence

    async def WatchPrompts(self, request, context):
        caller = current_caller()
        names = list(request.names)
        if len(names) > MAX_WATCHED_NAMES:
            raise InvalidArgument(f"names lists {len(names)} prompts; the limit is {MAX_WATCHED_NAMES}",
                                  field="names", reason="TOO_MANY_NAMES")
        if request.after_sequence < 0:
            raise InvalidArgument(f"after_sequence must not be negative, got {request.after_sequence}",
                                  field="after_sequence", reason="INVALID_SEQUENCE")
        # Subscribed before the first read, so that nothing committed after
        # that read can pass unseen; what the read saw already is dropped.
        watcher = self.feed.subscribe(caller.account_id, names)
        getter = None
        try:
            first, sequence = await self.workers.run(self._catch_up, caller, names, request.after_sequence)
            self.feed.caught_up(watcher, sequence)
            yield first
            while True:
                # One get kept across keepalives: a get cancelled by a
                # timeout could drop the item it was handed.
                getter = asyncio.ensure_future(watcher.queue.get())
                while not (await asyncio.wait({getter}, timeout=self.keepalive_seconds))[0]:
                    yield prompts_pb2.WatchPromptsResponse()  # a keepalive
                changes = getter.result()
                if changes is CLOSED:
                    raise Unavailable(
                        "the server is shutting down: watch again (on another replica, or after the "
                        "restart) from the last sequence seen",
                        reason="SHUTTING_DOWN",
                    )
                events = [e for e in changes.events if e.sequence > sequence and watcher.wants(e.name)]
                sequence = max(sequence, changes.events[-1].sequence)
                if events:
                    changed = {e.name for e in events}
                    yield prompts_pb2.WatchPromptsResponse(
                        events=[event_message(e) for e in events],
                        states=[state_message(s) for s in changes.states if s.name in changed],
                    )
        finally:
            if getter is not None:
                getter.cancel()
            self.feed.unsubscribe(watcher)

    def ListPromptHistory(self, request, context):
        events, token = self.registry.list_history(
            current_caller(), request.name, request.page_size, request.page_token
        )
        return prompts_pb2.ListPromptHistoryResponse(
            events=[event_message(e) for e in events], next_page_token=token
        )


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
    try:
        end_time = _time(outcome, "end_time")
    except InvalidArgument as error:
        # Rejected with its record (Outcome.checked), not as a malformed
        # stream: the records around it are stored.
        end_time = error
    return (
        outcome.trace_id,
        _opt(outcome, "success"),
        _opt(outcome, "total_cost_usd"),
        _opt(outcome, "duration_ms"),
        _opt(outcome, "input_tokens"),
        _opt(outcome, "output_tokens"),
        end_time,
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


class TraceServicer(trace_service_pb2_grpc.TraceServiceServicer):
    """OTLP/gRPC traces: what any OpenTelemetry SDK's standard exporter sends
    (opentelemetry.proto.collector.trace.v1.TraceService/Export). Spans map
    to links and outcomes as otlp.py says; each export is stored in one
    transaction, and a span that cannot be used is counted in
    partial_success, as OTLP specifies, never failing the rest."""

    def __init__(self, analytics: Analytics):
        self.analytics = analytics

    def Export(self, request, context):
        mapped = otlp.map_export(otlp.spans_of(request))
        links = [span for span in mapped.spans if span.link is not None]
        outcomes = [span for span in mapped.spans if span.outcome is not None]
        link_results, outcome_results = self.analytics.record_export(
            current_caller(),
            [span.link.fields() for span in links],
            [span.outcome.fields() for span in outcomes],
        )
        _Summary("usage", 0).add(0, link_results)
        _Summary("outcome", 0).add(0, outcome_results)
        # A span with a link and an outcome is one span: rejected once, for
        # the first of its problems.
        failed: dict[int, tuple[otlp.MappedSpan, str]] = {}
        for spans, results in ((links, link_results), (outcomes, outcome_results)):
            for span, result in zip(spans, results, strict=True):
                if isinstance(result, DomainError):
                    failed.setdefault(id(span), (span, result.message))
        for span, message in failed.values():
            mapped.reject(span.trace_id, span.span_id, message)
        response = trace_service_pb2.ExportTraceServiceResponse()
        if mapped.rejected:
            response.partial_success.rejected_spans = mapped.rejected
            response.partial_success.error_message = mapped.error_message()
        return response


def agent_config_of(message: agents_pb2.AgentConfig) -> agents.AgentConfig:
    return agents.AgentConfig(
        kind=message.kind,
        model_config=model_config_dict(message),
        prompts=tuple(
            agents.PromptLink(link.prompt_name, link.role, link.sort_order, _opt(link, "pinned_version"))
            for link in message.prompts
        ),
        extra=struct_dict(message, "extra"),
    )


def agent_config_message(config: agents.AgentConfig) -> agents_pb2.AgentConfig:
    return agents_pb2.AgentConfig(
        kind=config.kind,
        model_config=model_config_of(config.model_config),
        prompts=[
            agents_pb2.PromptLink(prompt_name=link.prompt_name, role=link.role, sort_order=link.sort_order,
                                  pinned_version=link.pinned_version)
            for link in config.prompts
        ],
        extra=struct_of(config.extra),
    )


def agent_version_message(view: agents.AgentVersionView) -> agents_pb2.AgentVersion:
    return agents_pb2.AgentVersion(
        id=view.id, agent=view.agent, version=view.version, config=agent_config_message(view.config),
        input_schema=struct_of(view.input_schema), output_schema=struct_of(view.output_schema),
        message=view.message, is_current=view.is_current, created_by=view.created_by,
        create_time=timestamp(view.create_time),
    )


class AgentServicer(agents_pb2_grpc.AgentServiceServicer):
    def __init__(self, registry: agents.AgentRegistry):
        self.registry = registry

    def CreateAgentVersion(self, request, context):
        view = self.registry.create_version(
            current_caller(),
            agent=request.agent,
            version=request.version,
            config=agent_config_of(request.config) if request.HasField("config") else None,
            input_schema=struct_dict(request, "input_schema"),
            output_schema=struct_dict(request, "output_schema"),
            message=request.message,
            promote=_opt(request, "promote"),
        )
        return agents_pb2.CreateAgentVersionResponse(agent_version=agent_version_message(view))

    def ListAgents(self, request, context):
        views, token = self.registry.list_agents(current_caller(), request.page_size, request.page_token)
        return agents_pb2.ListAgentsResponse(
            agents=[
                agents_pb2.Agent(
                    name=v.name, current_version=v.current_version, version_count=v.version_count,
                    create_time=timestamp(v.create_time), update_time=timestamp(v.update_time),
                )
                for v in views
            ],
            next_page_token=token,
        )

    def ListAgentVersions(self, request, context):
        views, token = self.registry.list_versions(
            current_caller(), request.agent, request.page_size, request.page_token
        )
        return agents_pb2.ListAgentVersionsResponse(
            agent_versions=[agent_version_message(v) for v in views], next_page_token=token
        )

    def GetAgentVersion(self, request, context):
        view = self.registry.get_version(current_caller(), request.agent, _opt(request, "version"))
        return agents_pb2.GetAgentVersionResponse(agent_version=agent_version_message(view))

    def PromoteAgentVersion(self, request, context):
        view = self.registry.promote(current_caller(), request.agent, request.version)
        return agents_pb2.PromoteAgentVersionResponse(agent_version=agent_version_message(view))

    def ResolveAgent(self, request, context):
        view, prompts = self.registry.resolve(
            current_caller(), request.agent, _opt(request, "version"), request.trace_id,
            dict(request.variables),
        )
        return agents_pb2.ResolveAgentResponse(
            agent_version=agent_version_message(view),
            prompts=[
                agents_pb2.ResolvedPrompt(role=p.role, sort_order=p.sort_order,
                                          prompt_version=version_message(p.prompt_version),
                                          rendered_text=p.rendered_text)
                for p in prompts
            ],
        )

    def CompareAgentVersions(self, request, context):
        metrics = self.registry.compare(current_caller(), request.agent)
        return agents_pb2.CompareAgentVersionsResponse(
            agent=request.agent, versions=[agents_pb2.AgentVersionMetrics(**vars(m)) for m in metrics]
        )

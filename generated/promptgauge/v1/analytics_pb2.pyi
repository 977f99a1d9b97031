from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ComparisonView(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMPARISON_VIEW_UNSPECIFIED: _ClassVar[ComparisonView]
    COMPARISON_VIEW_BASIC: _ClassVar[ComparisonView]
    COMPARISON_VIEW_FULL: _ClassVar[ComparisonView]
COMPARISON_VIEW_UNSPECIFIED: ComparisonView
COMPARISON_VIEW_BASIC: ComparisonView
COMPARISON_VIEW_FULL: ComparisonView

class TraceOutcome(_message.Message):
    __slots__ = ("trace_id", "success", "total_cost_usd", "duration_ms")
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COST_USD_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    trace_id: str
    success: bool
    total_cost_usd: float
    duration_ms: float
    def __init__(self, trace_id: _Optional[str] = ..., success: _Optional[bool] = ..., total_cost_usd: _Optional[float] = ..., duration_ms: _Optional[float] = ...) -> None: ...

class UsageRecord(_message.Message):
    __slots__ = ("prompt_name", "prompt_version", "trace_id", "span_id")
    PROMPT_NAME_FIELD_NUMBER: _ClassVar[int]
    PROMPT_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    prompt_name: str
    prompt_version: int
    trace_id: str
    span_id: str
    def __init__(self, prompt_name: _Optional[str] = ..., prompt_version: _Optional[int] = ..., trace_id: _Optional[str] = ..., span_id: _Optional[str] = ...) -> None: ...

class IngestSummary(_message.Message):
    __slots__ = ("received", "recorded", "duplicates", "rejected", "errors")
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    received: int
    recorded: int
    duplicates: int
    rejected: int
    errors: _containers.RepeatedCompositeFieldContainer[RecordError]
    def __init__(self, received: _Optional[int] = ..., recorded: _Optional[int] = ..., duplicates: _Optional[int] = ..., rejected: _Optional[int] = ..., errors: _Optional[_Iterable[_Union[RecordError, _Mapping]]] = ...) -> None: ...

class RecordError(_message.Message):
    __slots__ = ("index", "code", "message", "reason")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    index: int
    code: int
    message: str
    reason: str
    def __init__(self, index: _Optional[int] = ..., code: _Optional[int] = ..., message: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class VersionMetrics(_message.Message):
    __slots__ = ("version", "template_text", "total_traces", "success_rate", "avg_cost_usd", "avg_latency_ms", "p95_latency_ms")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_TEXT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TRACES_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RATE_FIELD_NUMBER: _ClassVar[int]
    AVG_COST_USD_FIELD_NUMBER: _ClassVar[int]
    AVG_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    P95_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    version: int
    template_text: str
    total_traces: int
    success_rate: float
    avg_cost_usd: float
    avg_latency_ms: float
    p95_latency_ms: float
    def __init__(self, version: _Optional[int] = ..., template_text: _Optional[str] = ..., total_traces: _Optional[int] = ..., success_rate: _Optional[float] = ..., avg_cost_usd: _Optional[float] = ..., avg_latency_ms: _Optional[float] = ..., p95_latency_ms: _Optional[float] = ...) -> None: ...

class RecordTraceOutcomeRequest(_message.Message):
    __slots__ = ("outcome",)
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    outcome: TraceOutcome
    def __init__(self, outcome: _Optional[_Union[TraceOutcome, _Mapping]] = ...) -> None: ...

class RecordTraceOutcomeResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: str
    def __init__(self, status: _Optional[str] = ...) -> None: ...

class StreamTraceOutcomesRequest(_message.Message):
    __slots__ = ("outcomes",)
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    outcomes: _containers.RepeatedCompositeFieldContainer[TraceOutcome]
    def __init__(self, outcomes: _Optional[_Iterable[_Union[TraceOutcome, _Mapping]]] = ...) -> None: ...

class StreamTraceOutcomesResponse(_message.Message):
    __slots__ = ("summary",)
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    summary: IngestSummary
    def __init__(self, summary: _Optional[_Union[IngestSummary, _Mapping]] = ...) -> None: ...

class RecordUsageRequest(_message.Message):
    __slots__ = ("usage",)
    USAGE_FIELD_NUMBER: _ClassVar[int]
    usage: UsageRecord
    def __init__(self, usage: _Optional[_Union[UsageRecord, _Mapping]] = ...) -> None: ...

class RecordUsageResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: str
    def __init__(self, status: _Optional[str] = ...) -> None: ...

class StreamUsageRequest(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[UsageRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[UsageRecord, _Mapping]]] = ...) -> None: ...

class StreamUsageResponse(_message.Message):
    __slots__ = ("summary",)
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    summary: IngestSummary
    def __init__(self, summary: _Optional[_Union[IngestSummary, _Mapping]] = ...) -> None: ...

class ComparePromptVersionsRequest(_message.Message):
    __slots__ = ("name", "view")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    name: str
    view: ComparisonView
    def __init__(self, name: _Optional[str] = ..., view: _Optional[_Union[ComparisonView, str]] = ...) -> None: ...

class ComparePromptVersionsResponse(_message.Message):
    __slots__ = ("name", "versions", "templates_omitted")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    TEMPLATES_OMITTED_FIELD_NUMBER: _ClassVar[int]
    name: str
    versions: _containers.RepeatedCompositeFieldContainer[VersionMetrics]
    templates_omitted: bool
    def __init__(self, name: _Optional[str] = ..., versions: _Optional[_Iterable[_Union[VersionMetrics, _Mapping]]] = ..., templates_omitted: _Optional[bool] = ...) -> None: ...

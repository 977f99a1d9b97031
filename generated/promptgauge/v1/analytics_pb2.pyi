import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
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

class Granularity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GRANULARITY_UNSPECIFIED: _ClassVar[Granularity]
    GRANULARITY_HOUR: _ClassVar[Granularity]
    GRANULARITY_DAY: _ClassVar[Granularity]
COMPARISON_VIEW_UNSPECIFIED: ComparisonView
COMPARISON_VIEW_BASIC: ComparisonView
COMPARISON_VIEW_FULL: ComparisonView
GRANULARITY_UNSPECIFIED: Granularity
GRANULARITY_HOUR: Granularity
GRANULARITY_DAY: Granularity

class TraceOutcome(_message.Message):
    __slots__ = ("trace_id", "success", "total_cost_usd", "duration_ms", "input_tokens", "output_tokens", "end_time")
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COST_USD_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    trace_id: str
    success: bool
    total_cost_usd: float
    duration_ms: float
    input_tokens: int
    output_tokens: int
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, trace_id: _Optional[str] = ..., success: _Optional[bool] = ..., total_cost_usd: _Optional[float] = ..., duration_ms: _Optional[float] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

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
    __slots__ = ("version", "template_text", "total_traces", "success_rate", "avg_cost_usd", "avg_latency_ms", "p95_latency_ms", "p50_latency_ms", "p90_latency_ms", "p99_latency_ms", "p50_cost_usd", "p95_cost_usd", "avg_input_tokens", "avg_output_tokens", "total_cost_usd", "success_count", "outcome_count", "success_rate_interval", "vs_baseline", "is_active", "is_baseline")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_TEXT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TRACES_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RATE_FIELD_NUMBER: _ClassVar[int]
    AVG_COST_USD_FIELD_NUMBER: _ClassVar[int]
    AVG_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    P95_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    P50_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    P90_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    P99_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    P50_COST_USD_FIELD_NUMBER: _ClassVar[int]
    P95_COST_USD_FIELD_NUMBER: _ClassVar[int]
    AVG_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    AVG_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COST_USD_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_COUNT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_COUNT_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RATE_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    VS_BASELINE_FIELD_NUMBER: _ClassVar[int]
    IS_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    IS_BASELINE_FIELD_NUMBER: _ClassVar[int]
    version: int
    template_text: str
    total_traces: int
    success_rate: float
    avg_cost_usd: float
    avg_latency_ms: float
    p95_latency_ms: float
    p50_latency_ms: float
    p90_latency_ms: float
    p99_latency_ms: float
    p50_cost_usd: float
    p95_cost_usd: float
    avg_input_tokens: float
    avg_output_tokens: float
    total_cost_usd: float
    success_count: int
    outcome_count: int
    success_rate_interval: Interval
    vs_baseline: Significance
    is_active: bool
    is_baseline: bool
    def __init__(self, version: _Optional[int] = ..., template_text: _Optional[str] = ..., total_traces: _Optional[int] = ..., success_rate: _Optional[float] = ..., avg_cost_usd: _Optional[float] = ..., avg_latency_ms: _Optional[float] = ..., p95_latency_ms: _Optional[float] = ..., p50_latency_ms: _Optional[float] = ..., p90_latency_ms: _Optional[float] = ..., p99_latency_ms: _Optional[float] = ..., p50_cost_usd: _Optional[float] = ..., p95_cost_usd: _Optional[float] = ..., avg_input_tokens: _Optional[float] = ..., avg_output_tokens: _Optional[float] = ..., total_cost_usd: _Optional[float] = ..., success_count: _Optional[int] = ..., outcome_count: _Optional[int] = ..., success_rate_interval: _Optional[_Union[Interval, _Mapping]] = ..., vs_baseline: _Optional[_Union[Significance, _Mapping]] = ..., is_active: _Optional[bool] = ..., is_baseline: _Optional[bool] = ...) -> None: ...

class Interval(_message.Message):
    __slots__ = ("low", "high")
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    low: float
    high: float
    def __init__(self, low: _Optional[float] = ..., high: _Optional[float] = ...) -> None: ...

class Significance(_message.Message):
    __slots__ = ("baseline_version", "success_rate_diff", "success_rate_p_value", "avg_cost_diff", "avg_cost_p_value", "avg_latency_diff", "avg_latency_p_value", "significant")
    BASELINE_VERSION_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RATE_DIFF_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RATE_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    AVG_COST_DIFF_FIELD_NUMBER: _ClassVar[int]
    AVG_COST_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    AVG_LATENCY_DIFF_FIELD_NUMBER: _ClassVar[int]
    AVG_LATENCY_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    SIGNIFICANT_FIELD_NUMBER: _ClassVar[int]
    baseline_version: int
    success_rate_diff: float
    success_rate_p_value: float
    avg_cost_diff: float
    avg_cost_p_value: float
    avg_latency_diff: float
    avg_latency_p_value: float
    significant: bool
    def __init__(self, baseline_version: _Optional[int] = ..., success_rate_diff: _Optional[float] = ..., success_rate_p_value: _Optional[float] = ..., avg_cost_diff: _Optional[float] = ..., avg_cost_p_value: _Optional[float] = ..., avg_latency_diff: _Optional[float] = ..., avg_latency_p_value: _Optional[float] = ..., significant: _Optional[bool] = ...) -> None: ...

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
    __slots__ = ("name", "view", "start_time", "end_time", "baseline_version", "confidence_level")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    BASELINE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    view: ComparisonView
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    baseline_version: int
    confidence_level: float
    def __init__(self, name: _Optional[str] = ..., view: _Optional[_Union[ComparisonView, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., baseline_version: _Optional[int] = ..., confidence_level: _Optional[float] = ...) -> None: ...

class ComparePromptVersionsResponse(_message.Message):
    __slots__ = ("name", "versions", "templates_omitted")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    TEMPLATES_OMITTED_FIELD_NUMBER: _ClassVar[int]
    name: str
    versions: _containers.RepeatedCompositeFieldContainer[VersionMetrics]
    templates_omitted: bool
    def __init__(self, name: _Optional[str] = ..., versions: _Optional[_Iterable[_Union[VersionMetrics, _Mapping]]] = ..., templates_omitted: _Optional[bool] = ...) -> None: ...

class GetVersionTimeSeriesRequest(_message.Message):
    __slots__ = ("name", "start_time", "end_time", "granularity")
    NAME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    name: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    granularity: Granularity
    def __init__(self, name: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., granularity: _Optional[_Union[Granularity, str]] = ...) -> None: ...

class GetVersionTimeSeriesResponse(_message.Message):
    __slots__ = ("series",)
    SERIES_FIELD_NUMBER: _ClassVar[int]
    series: _containers.RepeatedCompositeFieldContainer[VersionSeries]
    def __init__(self, series: _Optional[_Iterable[_Union[VersionSeries, _Mapping]]] = ...) -> None: ...

class VersionSeries(_message.Message):
    __slots__ = ("version", "buckets")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    version: int
    buckets: _containers.RepeatedCompositeFieldContainer[TimeBucket]
    def __init__(self, version: _Optional[int] = ..., buckets: _Optional[_Iterable[_Union[TimeBucket, _Mapping]]] = ...) -> None: ...

class TimeBucket(_message.Message):
    __slots__ = ("start_time", "total_traces", "success_rate", "avg_cost_usd", "p50_latency_ms", "p95_latency_ms")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TRACES_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RATE_FIELD_NUMBER: _ClassVar[int]
    AVG_COST_USD_FIELD_NUMBER: _ClassVar[int]
    P50_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    P95_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    total_traces: int
    success_rate: float
    avg_cost_usd: float
    p50_latency_ms: float
    p95_latency_ms: float
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., total_traces: _Optional[int] = ..., success_rate: _Optional[float] = ..., avg_cost_usd: _Optional[float] = ..., p50_latency_ms: _Optional[float] = ..., p95_latency_ms: _Optional[float] = ...) -> None: ...

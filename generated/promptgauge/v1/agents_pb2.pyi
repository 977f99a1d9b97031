import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from promptgauge.v1 import prompts_pb2 as _prompts_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgentKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGENT_KIND_UNSPECIFIED: _ClassVar[AgentKind]
    AGENT_KIND_SIMPLE: _ClassVar[AgentKind]
    AGENT_KIND_CHAIN: _ClassVar[AgentKind]
    AGENT_KIND_MULTI_AGENT: _ClassVar[AgentKind]
    AGENT_KIND_WORKFLOW: _ClassVar[AgentKind]
    AGENT_KIND_COMPOSITE: _ClassVar[AgentKind]
AGENT_KIND_UNSPECIFIED: AgentKind
AGENT_KIND_SIMPLE: AgentKind
AGENT_KIND_CHAIN: AgentKind
AGENT_KIND_MULTI_AGENT: AgentKind
AGENT_KIND_WORKFLOW: AgentKind
AGENT_KIND_COMPOSITE: AgentKind

class PromptLink(_message.Message):
    __slots__ = ("prompt_name", "role", "sort_order", "pinned_version")
    PROMPT_NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SORT_ORDER_FIELD_NUMBER: _ClassVar[int]
    PINNED_VERSION_FIELD_NUMBER: _ClassVar[int]
    prompt_name: str
    role: str
    sort_order: int
    pinned_version: int
    def __init__(self, prompt_name: _Optional[str] = ..., role: _Optional[str] = ..., sort_order: _Optional[int] = ..., pinned_version: _Optional[int] = ...) -> None: ...

class AgentConfig(_message.Message):
    __slots__ = ("kind", "model_config", "prompts", "extra")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MODEL_CONFIG_FIELD_NUMBER: _ClassVar[int]
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    kind: AgentKind
    model_config: _prompts_pb2.ModelConfig
    prompts: _containers.RepeatedCompositeFieldContainer[PromptLink]
    extra: _struct_pb2.Struct
    def __init__(self, kind: _Optional[_Union[AgentKind, str]] = ..., model_config: _Optional[_Union[_prompts_pb2.ModelConfig, _Mapping]] = ..., prompts: _Optional[_Iterable[_Union[PromptLink, _Mapping]]] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class AgentVersion(_message.Message):
    __slots__ = ("id", "agent", "version", "config", "input_schema", "output_schema", "message", "is_current", "created_by", "create_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    INPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    IS_CURRENT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    agent: str
    version: str
    config: AgentConfig
    input_schema: _struct_pb2.Struct
    output_schema: _struct_pb2.Struct
    message: str
    is_current: bool
    created_by: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., agent: _Optional[str] = ..., version: _Optional[str] = ..., config: _Optional[_Union[AgentConfig, _Mapping]] = ..., input_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., output_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., message: _Optional[str] = ..., is_current: _Optional[bool] = ..., created_by: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Agent(_message.Message):
    __slots__ = ("name", "current_version", "version_count", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CURRENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSION_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    current_version: str
    version_count: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., current_version: _Optional[str] = ..., version_count: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateAgentVersionRequest(_message.Message):
    __slots__ = ("agent", "version", "config", "input_schema", "output_schema", "message", "promote")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    INPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PROMOTE_FIELD_NUMBER: _ClassVar[int]
    agent: str
    version: str
    config: AgentConfig
    input_schema: _struct_pb2.Struct
    output_schema: _struct_pb2.Struct
    message: str
    promote: bool
    def __init__(self, agent: _Optional[str] = ..., version: _Optional[str] = ..., config: _Optional[_Union[AgentConfig, _Mapping]] = ..., input_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., output_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., message: _Optional[str] = ..., promote: _Optional[bool] = ...) -> None: ...

class CreateAgentVersionResponse(_message.Message):
    __slots__ = ("agent_version",)
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    agent_version: AgentVersion
    def __init__(self, agent_version: _Optional[_Union[AgentVersion, _Mapping]] = ...) -> None: ...

class ListAgentsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAgentsResponse(_message.Message):
    __slots__ = ("agents", "next_page_token")
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedCompositeFieldContainer[Agent]
    next_page_token: str
    def __init__(self, agents: _Optional[_Iterable[_Union[Agent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListAgentVersionsRequest(_message.Message):
    __slots__ = ("agent", "page_size", "page_token")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    agent: str
    page_size: int
    page_token: str
    def __init__(self, agent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAgentVersionsResponse(_message.Message):
    __slots__ = ("agent_versions", "next_page_token")
    AGENT_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    agent_versions: _containers.RepeatedCompositeFieldContainer[AgentVersion]
    next_page_token: str
    def __init__(self, agent_versions: _Optional[_Iterable[_Union[AgentVersion, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetAgentVersionRequest(_message.Message):
    __slots__ = ("agent", "version")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    agent: str
    version: str
    def __init__(self, agent: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class GetAgentVersionResponse(_message.Message):
    __slots__ = ("agent_version",)
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    agent_version: AgentVersion
    def __init__(self, agent_version: _Optional[_Union[AgentVersion, _Mapping]] = ...) -> None: ...

class PromoteAgentVersionRequest(_message.Message):
    __slots__ = ("agent", "version")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    agent: str
    version: str
    def __init__(self, agent: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class PromoteAgentVersionResponse(_message.Message):
    __slots__ = ("agent_version",)
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    agent_version: AgentVersion
    def __init__(self, agent_version: _Optional[_Union[AgentVersion, _Mapping]] = ...) -> None: ...

class ResolveAgentRequest(_message.Message):
    __slots__ = ("agent", "version", "trace_id", "variables")
    class VariablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    AGENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    agent: str
    version: str
    trace_id: str
    variables: _containers.ScalarMap[str, str]
    def __init__(self, agent: _Optional[str] = ..., version: _Optional[str] = ..., trace_id: _Optional[str] = ..., variables: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ResolvedPrompt(_message.Message):
    __slots__ = ("role", "sort_order", "prompt_version", "rendered_text")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SORT_ORDER_FIELD_NUMBER: _ClassVar[int]
    PROMPT_VERSION_FIELD_NUMBER: _ClassVar[int]
    RENDERED_TEXT_FIELD_NUMBER: _ClassVar[int]
    role: str
    sort_order: int
    prompt_version: _prompts_pb2.PromptVersion
    rendered_text: str
    def __init__(self, role: _Optional[str] = ..., sort_order: _Optional[int] = ..., prompt_version: _Optional[_Union[_prompts_pb2.PromptVersion, _Mapping]] = ..., rendered_text: _Optional[str] = ...) -> None: ...

class ResolveAgentResponse(_message.Message):
    __slots__ = ("agent_version", "prompts")
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    agent_version: AgentVersion
    prompts: _containers.RepeatedCompositeFieldContainer[ResolvedPrompt]
    def __init__(self, agent_version: _Optional[_Union[AgentVersion, _Mapping]] = ..., prompts: _Optional[_Iterable[_Union[ResolvedPrompt, _Mapping]]] = ...) -> None: ...

class CompareAgentVersionsRequest(_message.Message):
    __slots__ = ("agent",)
    AGENT_FIELD_NUMBER: _ClassVar[int]
    agent: str
    def __init__(self, agent: _Optional[str] = ...) -> None: ...

class AgentVersionMetrics(_message.Message):
    __slots__ = ("version", "total_traces", "success_rate", "avg_cost_usd", "avg_latency_ms", "p95_latency_ms")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TRACES_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RATE_FIELD_NUMBER: _ClassVar[int]
    AVG_COST_USD_FIELD_NUMBER: _ClassVar[int]
    AVG_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    P95_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    version: str
    total_traces: int
    success_rate: float
    avg_cost_usd: float
    avg_latency_ms: float
    p95_latency_ms: float
    def __init__(self, version: _Optional[str] = ..., total_traces: _Optional[int] = ..., success_rate: _Optional[float] = ..., avg_cost_usd: _Optional[float] = ..., avg_latency_ms: _Optional[float] = ..., p95_latency_ms: _Optional[float] = ...) -> None: ...

class CompareAgentVersionsResponse(_message.Message):
    __slots__ = ("agent", "versions")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    agent: str
    versions: _containers.RepeatedCompositeFieldContainer[AgentVersionMetrics]
    def __init__(self, agent: _Optional[str] = ..., versions: _Optional[_Iterable[_Union[AgentVersionMetrics, _Mapping]]] = ...) -> None: ...

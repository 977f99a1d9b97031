import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChangeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANGE_KIND_UNSPECIFIED: _ClassVar[ChangeKind]
    CHANGE_KIND_CREATE: _ClassVar[ChangeKind]
    CHANGE_KIND_WRITE: _ClassVar[ChangeKind]
    CHANGE_KIND_EDIT: _ClassVar[ChangeKind]
    CHANGE_KIND_MODIFY: _ClassVar[ChangeKind]

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    EVENT_KIND_VERSION_CREATED: _ClassVar[EventKind]
    EVENT_KIND_VERSION_ACTIVATED: _ClassVar[EventKind]
    EVENT_KIND_LABEL_SET: _ClassVar[EventKind]
    EVENT_KIND_LABEL_DELETED: _ClassVar[EventKind]
    EVENT_KIND_SPLIT_SET: _ClassVar[EventKind]
    EVENT_KIND_SPLIT_CLEARED: _ClassVar[EventKind]
CHANGE_KIND_UNSPECIFIED: ChangeKind
CHANGE_KIND_CREATE: ChangeKind
CHANGE_KIND_WRITE: ChangeKind
CHANGE_KIND_EDIT: ChangeKind
CHANGE_KIND_MODIFY: ChangeKind
EVENT_KIND_UNSPECIFIED: EventKind
EVENT_KIND_VERSION_CREATED: EventKind
EVENT_KIND_VERSION_ACTIVATED: EventKind
EVENT_KIND_LABEL_SET: EventKind
EVENT_KIND_LABEL_DELETED: EventKind
EVENT_KIND_SPLIT_SET: EventKind
EVENT_KIND_SPLIT_CLEARED: EventKind

class ModelConfig(_message.Message):
    __slots__ = ("provider", "model", "temperature", "max_tokens", "top_p", "stop_sequences", "extra")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    STOP_SEQUENCES_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    provider: str
    model: str
    temperature: float
    max_tokens: int
    top_p: float
    stop_sequences: _containers.RepeatedScalarFieldContainer[str]
    extra: _struct_pb2.Struct
    def __init__(self, provider: _Optional[str] = ..., model: _Optional[str] = ..., temperature: _Optional[float] = ..., max_tokens: _Optional[int] = ..., top_p: _Optional[float] = ..., stop_sequences: _Optional[_Iterable[str]] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class PromptVersion(_message.Message):
    __slots__ = ("id", "name", "version", "template_text", "description", "is_active", "parent_version", "created_by", "create_time", "variables", "model_config", "input_schema", "output_schema", "change", "source", "labels")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_TEXT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    IS_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    PARENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    MODEL_CONFIG_FIELD_NUMBER: _ClassVar[int]
    INPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    version: int
    template_text: str
    description: str
    is_active: bool
    parent_version: int
    created_by: str
    create_time: _timestamp_pb2.Timestamp
    variables: _containers.RepeatedScalarFieldContainer[str]
    model_config: ModelConfig
    input_schema: _struct_pb2.Struct
    output_schema: _struct_pb2.Struct
    change: ChangeKind
    source: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ..., template_text: _Optional[str] = ..., description: _Optional[str] = ..., is_active: _Optional[bool] = ..., parent_version: _Optional[int] = ..., created_by: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., variables: _Optional[_Iterable[str]] = ..., model_config: _Optional[_Union[ModelConfig, _Mapping]] = ..., input_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., output_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., change: _Optional[_Union[ChangeKind, str]] = ..., source: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ...) -> None: ...

class CreatePromptVersionRequest(_message.Message):
    __slots__ = ("name", "version", "template_text", "description", "parent_version", "activate", "model_config", "input_schema", "output_schema", "source")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_TEXT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTIVATE_FIELD_NUMBER: _ClassVar[int]
    MODEL_CONFIG_FIELD_NUMBER: _ClassVar[int]
    INPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    template_text: str
    description: str
    parent_version: int
    activate: bool
    model_config: ModelConfig
    input_schema: _struct_pb2.Struct
    output_schema: _struct_pb2.Struct
    source: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., template_text: _Optional[str] = ..., description: _Optional[str] = ..., parent_version: _Optional[int] = ..., activate: _Optional[bool] = ..., model_config: _Optional[_Union[ModelConfig, _Mapping]] = ..., input_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., output_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., source: _Optional[str] = ...) -> None: ...

class CreatePromptVersionResponse(_message.Message):
    __slots__ = ("prompt_version",)
    PROMPT_VERSION_FIELD_NUMBER: _ClassVar[int]
    prompt_version: PromptVersion
    def __init__(self, prompt_version: _Optional[_Union[PromptVersion, _Mapping]] = ...) -> None: ...

class ListPromptsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPromptsResponse(_message.Message):
    __slots__ = ("prompt_versions", "next_page_token")
    PROMPT_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    prompt_versions: _containers.RepeatedCompositeFieldContainer[PromptVersion]
    next_page_token: str
    def __init__(self, prompt_versions: _Optional[_Iterable[_Union[PromptVersion, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListPromptVersionsRequest(_message.Message):
    __slots__ = ("name", "page_size", "page_token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    page_size: int
    page_token: str
    def __init__(self, name: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPromptVersionsResponse(_message.Message):
    __slots__ = ("prompt_versions", "next_page_token")
    PROMPT_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    prompt_versions: _containers.RepeatedCompositeFieldContainer[PromptVersion]
    next_page_token: str
    def __init__(self, prompt_versions: _Optional[_Iterable[_Union[PromptVersion, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetPromptVersionRequest(_message.Message):
    __slots__ = ("name", "version", "label")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    label: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., label: _Optional[str] = ...) -> None: ...

class GetPromptVersionResponse(_message.Message):
    __slots__ = ("prompt_version",)
    PROMPT_VERSION_FIELD_NUMBER: _ClassVar[int]
    prompt_version: PromptVersion
    def __init__(self, prompt_version: _Optional[_Union[PromptVersion, _Mapping]] = ...) -> None: ...

class ActivatePromptVersionRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ActivatePromptVersionResponse(_message.Message):
    __slots__ = ("prompt_version",)
    PROMPT_VERSION_FIELD_NUMBER: _ClassVar[int]
    prompt_version: PromptVersion
    def __init__(self, prompt_version: _Optional[_Union[PromptVersion, _Mapping]] = ...) -> None: ...

class RenderPromptRequest(_message.Message):
    __slots__ = ("name", "version", "variables", "label")
    class VariablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    variables: _containers.ScalarMap[str, str]
    label: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., variables: _Optional[_Mapping[str, str]] = ..., label: _Optional[str] = ...) -> None: ...

class RenderPromptResponse(_message.Message):
    __slots__ = ("text", "version")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    text: str
    version: int
    def __init__(self, text: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class TextEdit(_message.Message):
    __slots__ = ("old_text", "new_text")
    OLD_TEXT_FIELD_NUMBER: _ClassVar[int]
    NEW_TEXT_FIELD_NUMBER: _ClassVar[int]
    old_text: str
    new_text: str
    def __init__(self, old_text: _Optional[str] = ..., new_text: _Optional[str] = ...) -> None: ...

class EditPromptVersionRequest(_message.Message):
    __slots__ = ("name", "base_version", "edits", "description", "activate", "source")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BASE_VERSION_FIELD_NUMBER: _ClassVar[int]
    EDITS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ACTIVATE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    base_version: int
    edits: _containers.RepeatedCompositeFieldContainer[TextEdit]
    description: str
    activate: bool
    source: str
    def __init__(self, name: _Optional[str] = ..., base_version: _Optional[int] = ..., edits: _Optional[_Iterable[_Union[TextEdit, _Mapping]]] = ..., description: _Optional[str] = ..., activate: _Optional[bool] = ..., source: _Optional[str] = ...) -> None: ...

class EditPromptVersionResponse(_message.Message):
    __slots__ = ("prompt_version",)
    PROMPT_VERSION_FIELD_NUMBER: _ClassVar[int]
    prompt_version: PromptVersion
    def __init__(self, prompt_version: _Optional[_Union[PromptVersion, _Mapping]] = ...) -> None: ...

class DiffPromptVersionsRequest(_message.Message):
    __slots__ = ("name", "from_version", "to_version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    TO_VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    from_version: int
    to_version: int
    def __init__(self, name: _Optional[str] = ..., from_version: _Optional[int] = ..., to_version: _Optional[int] = ...) -> None: ...

class DiffPromptVersionsResponse(_message.Message):
    __slots__ = ("unified_diff", "changed_fields")
    UNIFIED_DIFF_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    unified_diff: str
    changed_fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, unified_diff: _Optional[str] = ..., changed_fields: _Optional[_Iterable[str]] = ...) -> None: ...

class Prompt(_message.Message):
    __slots__ = ("name", "active_version", "latest_version", "version_count", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_VERSION_FIELD_NUMBER: _ClassVar[int]
    LATEST_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSION_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    active_version: int
    latest_version: int
    version_count: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., active_version: _Optional[int] = ..., latest_version: _Optional[int] = ..., version_count: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetPromptRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetPromptResponse(_message.Message):
    __slots__ = ("prompt",)
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    prompt: Prompt
    def __init__(self, prompt: _Optional[_Union[Prompt, _Mapping]] = ...) -> None: ...

class SetPromptLabelRequest(_message.Message):
    __slots__ = ("name", "label", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    label: str
    version: int
    def __init__(self, name: _Optional[str] = ..., label: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class SetPromptLabelResponse(_message.Message):
    __slots__ = ("prompt_version",)
    PROMPT_VERSION_FIELD_NUMBER: _ClassVar[int]
    prompt_version: PromptVersion
    def __init__(self, prompt_version: _Optional[_Union[PromptVersion, _Mapping]] = ...) -> None: ...

class DeletePromptLabelRequest(_message.Message):
    __slots__ = ("name", "label")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    label: str
    def __init__(self, name: _Optional[str] = ..., label: _Optional[str] = ...) -> None: ...

class DeletePromptLabelResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SplitArm(_message.Message):
    __slots__ = ("version", "weight", "buckets")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    version: int
    weight: int
    buckets: _containers.RepeatedCompositeFieldContainer[BucketRange]
    def __init__(self, version: _Optional[int] = ..., weight: _Optional[int] = ..., buckets: _Optional[_Iterable[_Union[BucketRange, _Mapping]]] = ...) -> None: ...

class BucketRange(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...

class TrafficSplit(_message.Message):
    __slots__ = ("name", "arms", "split_id", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARMS_FIELD_NUMBER: _ClassVar[int]
    SPLIT_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    arms: _containers.RepeatedCompositeFieldContainer[SplitArm]
    split_id: str
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., arms: _Optional[_Iterable[_Union[SplitArm, _Mapping]]] = ..., split_id: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SetTrafficSplitRequest(_message.Message):
    __slots__ = ("name", "arms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    arms: _containers.RepeatedCompositeFieldContainer[SplitArm]
    def __init__(self, name: _Optional[str] = ..., arms: _Optional[_Iterable[_Union[SplitArm, _Mapping]]] = ...) -> None: ...

class SetTrafficSplitResponse(_message.Message):
    __slots__ = ("split",)
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    split: TrafficSplit
    def __init__(self, split: _Optional[_Union[TrafficSplit, _Mapping]] = ...) -> None: ...

class ClearTrafficSplitRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ClearTrafficSplitResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResolvePromptRequest(_message.Message):
    __slots__ = ("name", "subject", "label", "trace_id", "variables")
    class VariablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    name: str
    subject: str
    label: str
    trace_id: str
    variables: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., subject: _Optional[str] = ..., label: _Optional[str] = ..., trace_id: _Optional[str] = ..., variables: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ResolvePromptResponse(_message.Message):
    __slots__ = ("prompt_version", "rendered_text")
    PROMPT_VERSION_FIELD_NUMBER: _ClassVar[int]
    RENDERED_TEXT_FIELD_NUMBER: _ClassVar[int]
    prompt_version: PromptVersion
    rendered_text: str
    def __init__(self, prompt_version: _Optional[_Union[PromptVersion, _Mapping]] = ..., rendered_text: _Optional[str] = ...) -> None: ...

class PromptEvent(_message.Message):
    __slots__ = ("sequence", "kind", "version", "previous_version", "label", "created_by", "create_time", "name", "split")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    kind: EventKind
    version: int
    previous_version: int
    label: str
    created_by: str
    create_time: _timestamp_pb2.Timestamp
    name: str
    split: TrafficSplit
    def __init__(self, sequence: _Optional[int] = ..., kind: _Optional[_Union[EventKind, str]] = ..., version: _Optional[int] = ..., previous_version: _Optional[int] = ..., label: _Optional[str] = ..., created_by: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., name: _Optional[str] = ..., split: _Optional[_Union[TrafficSplit, _Mapping]] = ...) -> None: ...

class ListPromptHistoryRequest(_message.Message):
    __slots__ = ("name", "page_size", "page_token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    page_size: int
    page_token: str
    def __init__(self, name: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPromptHistoryResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[PromptEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[PromptEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchPromptsRequest(_message.Message):
    __slots__ = ("names", "after_sequence")
    NAMES_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    after_sequence: int
    def __init__(self, names: _Optional[_Iterable[str]] = ..., after_sequence: _Optional[int] = ...) -> None: ...

class PromptState(_message.Message):
    __slots__ = ("name", "active_version", "labels", "split", "sequence", "latest_version", "split_id")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_VERSION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LATEST_VERSION_FIELD_NUMBER: _ClassVar[int]
    SPLIT_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    active_version: int
    labels: _containers.ScalarMap[str, int]
    split: _containers.RepeatedCompositeFieldContainer[SplitArm]
    sequence: int
    latest_version: int
    split_id: str
    def __init__(self, name: _Optional[str] = ..., active_version: _Optional[int] = ..., labels: _Optional[_Mapping[str, int]] = ..., split: _Optional[_Iterable[_Union[SplitArm, _Mapping]]] = ..., sequence: _Optional[int] = ..., latest_version: _Optional[int] = ..., split_id: _Optional[str] = ...) -> None: ...

class WatchPromptsResponse(_message.Message):
    __slots__ = ("events", "states")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[PromptEvent]
    states: _containers.RepeatedCompositeFieldContainer[PromptState]
    def __init__(self, events: _Optional[_Iterable[_Union[PromptEvent, _Mapping]]] = ..., states: _Optional[_Iterable[_Union[PromptState, _Mapping]]] = ...) -> None: ...

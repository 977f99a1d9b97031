"""PromptGaugeClient: typed calls with one deadline each, retried as the
service config says, and status-coded errors."""

import datetime
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

import grpc
from google.protobuf import json_format, struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from promptgauge.v1 import (
    agents_pb2,
    agents_pb2_grpc,
    analytics_pb2,
    analytics_pb2_grpc,
    prompts_pb2,
    prompts_pb2_grpc,
)

from .recorder import Recorder

if TYPE_CHECKING:
    from .cache import PromptCache
from .retries import (
    NO_RETRY,
    RetryPolicy,
    load_service_config,
    retry_policy,
    with_retry_policy,
    without_retry_policies,
)
from .times import timestamp

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "NO_RETRY", "PromptGaugeClient", "PromptGaugeError", "RetryPolicy"]

DEFAULT_TIMEOUT_SECONDS = 10.0

_sleep = time.sleep  # the backoff's wait; tests put a hook here

# gRPC's own words when it fails a call in the client, before sending it,
# because it has no connection: no server said them.
_CONNECT_FAILURE = "failed to connect to all addresses; last error: "
_RESOLVE_FAILURE = "errors resolving "
_ATTEMPT_PREFIX = re.compile(r"^[A-Z_]+: (?:(?:ipv4|ipv6|unix|unix-abstract|vsock):\S*?: )?")


def _unsent_reason(details: str) -> str | None:
    """Why gRPC failed a call before it left the client, for want of a
    connection ("connection refused"); None when it did not."""
    if details.startswith(_CONNECT_FAILURE):
        # "UNKNOWN: ipv4:127.0.0.1:1: Failed to connect to remote host: Connection refused"
        reason = _ATTEMPT_PREFIX.sub("", details[len(_CONNECT_FAILURE) :])
        return _lower_first(reason.removeprefix("Failed to connect to remote host: "))
    if details.startswith(_RESOLVE_FAILURE):
        # "errors resolving host:1: [field:hostname lookup error:... for host:1: Domain name not found]"
        return "name resolution failed: " + _lower_first(details.rstrip("]").rsplit(": ", 1)[-1])
    return None


def _lower_first(text: str) -> str:
    """ "Connection refused" as a clause: "connection refused" (but "SSL ..." stays)."""
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


class PromptGaugeError(Exception):
    """A failed call: `code` is the grpc.StatusCode, `reason` the server's
    machine-readable reason (ErrorInfo) when it sent one, `field` the request
    field at fault. `sent` is False when the call never left the client
    (there was no connection), so the server cannot have acted on it."""

    def __init__(
        self, code: grpc.StatusCode, message: str, reason: str = "", field: str = "", *, sent: bool = True
    ):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.reason = reason
        self.field = field
        self.sent = sent

    @classmethod
    def from_rpc_error(
        cls, error: grpc.RpcError, target: str = "", timeout: float | None = None
    ) -> "PromptGaugeError":
        """The error of a failed call. What the server said is kept as it
        said it; gRPC's own failures name the `target`: "cannot reach
        127.0.0.1:1: connection refused", "no answer from ... within 10 s"."""
        reason = field = ""
        message = error.details() or ""
        status = rpc_status.from_call(error)
        if status is not None:
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    reason = info.reason
                    field = info.metadata.get("field", "")
        else:
            target = target or "the server"
            unsent = _unsent_reason(message)
            if unsent is not None:
                return cls(error.code(), f"cannot reach {target}: {unsent}", sent=False)
            # gRPC's own words for a deadline that passed in the client.
            expired = error.code() == grpc.StatusCode.DEADLINE_EXCEEDED and message == "Deadline Exceeded"
            if expired and timeout:
                message = f"no answer from {target} within {timeout:g} s"
        return cls(error.code(), message, reason, field)


def _struct(value: Mapping | struct_pb2.Struct | None) -> struct_pb2.Struct | None:
    """A JSON object (a dict, such as a JSON Schema) as a google.protobuf.Struct."""
    if value is None or isinstance(value, struct_pb2.Struct):
        return value
    out = struct_pb2.Struct()
    out.update(dict(value))
    return out


def _model_config(value: Mapping | prompts_pb2.ModelConfig | None) -> prompts_pb2.ModelConfig | None:
    """A ModelConfig from its fields by name ({"model": "gpt-4o", "temperature": 0.2})."""
    if value is None or isinstance(value, prompts_pb2.ModelConfig):
        return value
    return json_format.ParseDict(dict(value), prompts_pb2.ModelConfig())


def _pem(value: bytes | str | os.PathLike | None) -> bytes | None:
    """PEM bytes given as such, or read from a file path."""
    if value is None or isinstance(value, bytes):
        return value
    with open(value, "rb") as f:
        return f.read()


def _check_resendable(batches: Iterable, retry: bool) -> None:
    if retry and iter(batches) is batches:
        # A second send would find the iterator spent and send nothing.
        raise TypeError("retry=True sends the batches again after a failure: give a list, not an iterator")


def _wait_for_connection(channel: grpc.Channel, timeout: float) -> bool:
    """Whether `channel` is connected within `timeout` seconds; it tries to
    connect meanwhile, on its own reconnect backoff."""
    if timeout <= 0:
        return False
    ready = grpc.channel_ready_future(channel)
    try:
        ready.result(timeout=timeout)
    except grpc.FutureTimeoutError:
        ready.cancel()
        return False
    return True


def _every(fetch: Callable[[str], object], field: str) -> Iterator:
    """The items of every page: `fetch(page_token)` each page in turn, until
    one comes back with an empty next_page_token."""
    token = ""
    while True:
        page = fetch(token)
        yield from getattr(page, field)
        token = page.next_page_token
        if not token:
            return


class PromptGaugeClient:
    """A connection to a promptgauge server, authenticated with one API key.

    >>> with PromptGaugeClient("127.0.0.1:50051", api_key) as pg:
    ...     pg.create_prompt_version("support-classifier", "Classify: {ticket}")

    TLS: `tls=True` verifies the server against the system's roots, or
    against `root_certificates` (PEM bytes or a file path); `client_certificate`
    and `client_key` present a certificate for mutual TLS.

    Every call has one deadline, `timeout` seconds, for all its tries and
    waits. Calls are retried as the gRPC service config says: the one
    packaged with the client (service_config.json: every call but
    CreatePromptVersion, EditPromptVersion and CreateAgentVersion, on
    UNAVAILABLE), or `service_config` (a mapping,
    JSON text or a file path; a `grpc.service_config` in `options` is merged
    over it). `retry` replaces the numbers of its retry policies, and
    NO_RETRY turns them off; the `service_config` attribute is the config in
    use. docs/retries.md has the rules. A `channel` made by the caller is
    used as it is, its retries applied by this client all the same.
    """

    def __init__(
        self,
        target: str,
        api_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        tls: bool = False,
        root_certificates: bytes | str | os.PathLike | None = None,
        client_certificate: bytes | str | os.PathLike | None = None,
        client_key: bytes | str | os.PathLike | None = None,
        retry: RetryPolicy | None = None,
        service_config: Mapping | str | os.PathLike | None = None,
        channel: grpc.Channel | None = None,
        options: list[tuple[str, object]] | None = None,
    ):
        config = load_service_config(service_config)
        options = list(options or [])
        for key, value in options:
            if key == "grpc.service_config":
                config.update(json.loads(value))
        if retry is not None:
            config = with_retry_policy(config, retry)
        self.service_config = config
        # This client applies the retry policies itself (see _call), so the
        # channel gets the rest of the config: gRPC's retries would sleep
        # into the deadline and hide the failure behind DEADLINE_EXCEEDED.
        options = [(k, v) for k, v in options if k != "grpc.service_config"]
        options.append(("grpc.service_config", json.dumps(without_retry_policies(config))))
        if channel is None:
            if tls or root_certificates or client_certificate or client_key:
                credentials = grpc.ssl_channel_credentials(
                    root_certificates=_pem(root_certificates),
                    private_key=_pem(client_key),
                    certificate_chain=_pem(client_certificate),
                )
                channel = grpc.secure_channel(target, credentials, options=options)
            else:
                channel = grpc.insecure_channel(target, options=options)
        self.target = target
        self._channel = channel
        self._metadata = (("authorization", f"Bearer {api_key}"),)
        self.timeout = timeout
        self.prompts = prompts_pb2_grpc.PromptServiceStub(self._channel)
        self.analytics = analytics_pb2_grpc.AnalyticsServiceStub(self._channel)
        self.traces = trace_service_pb2_grpc.TraceServiceStub(self._channel)
        self.agents = agents_pb2_grpc.AgentServiceStub(self._channel)
        # Each stub method's policy, looked up by the method object itself.
        self._policies = {
            getattr(stub, method.name): retry_policy(config, service.full_name, method.name)
            for stub, service in (
                (self.prompts, prompts_pb2.DESCRIPTOR.services_by_name["PromptService"]),
                (self.analytics, analytics_pb2.DESCRIPTOR.services_by_name["AnalyticsService"]),
                (self.agents, agents_pb2.DESCRIPTOR.services_by_name["AgentService"]),
            )
            for method in service.methods
        }

    def __enter__(self) -> "PromptGaugeClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method, request, timeout: float | None = None, *, retry: bool = True):
        """Call `method` with `request` (or, for a stream, a function making a
        fresh request iterator) within one deadline, `timeout` seconds (the
        client's by default) for every try and wait. With `retry`, the
        method's policy applies:

        - a call gRPC failed before it left the client, for want of a
          connection, is sent once the channel connects: the server never saw
          it, so it is no attempt (gRFC A6's transparent retry), and a server
          that comes back within the deadline is reached once the channel
          reconnects (on gRPC's reconnect backoff: 1 s, then growing);
        - one the server failed with a retryable code is tried again after the
          policy's backoff, up to its attempts;
        - a backoff that would outlast the deadline is not waited: the last
          failure is raised at once, saying what it was, rather than a
          DEADLINE_EXCEEDED that names nothing. A call that ran out of its
          deadline has nothing left to try again with.
        """
        budget = timeout or self.timeout
        deadline = time.monotonic() + budget
        policy = self._policies.get(method, NO_RETRY) if retry else NO_RETRY
        attempts = 0
        while True:
            try:
                return method(
                    request() if callable(request) else request,
                    timeout=deadline - time.monotonic(),
                    metadata=self._metadata,
                )
            except grpc.RpcError as rpc_error:
                error = PromptGaugeError.from_rpc_error(rpc_error, self.target, budget)
            if policy.max_attempts < 2:
                raise error
            if not error.sent:
                if not _wait_for_connection(self._channel, deadline - time.monotonic()):
                    raise error
                continue
            attempts += 1
            if error.code not in policy.retryable_codes or attempts >= policy.max_attempts:
                raise error
            delay = policy.backoff(attempts)
            if delay >= deadline - time.monotonic():
                raise error
            _sleep(delay)

    # -- PromptService ----------------------------------------------------

    def create_prompt_version(
        self,
        name: str,
        template_text: str,
        *,
        version: int | None = None,
        description: str = "",
        parent_version: int | None = None,
        activate: bool | None = None,
        model_config: Mapping | prompts_pb2.ModelConfig | None = None,
        input_schema: Mapping | None = None,
        output_schema: Mapping | None = None,
        source: str = "",
    ) -> prompts_pb2.PromptVersion:
        """Register a version; `version` left out is one more than the highest,
        `parent_version` left out the active one. `model_config` is a
        ModelConfig or its fields by name; the schemas are JSON Schemas
        (draft 2020-12) as dicts."""
        request = prompts_pb2.CreatePromptVersionRequest(
            name=name,
            template_text=template_text,
            description=description,
            version=version,
            parent_version=parent_version,
            activate=activate,
            model_config=_model_config(model_config),
            input_schema=_struct(input_schema),
            output_schema=_struct(output_schema),
            source=source,
        )
        return self._call(self.prompts.CreatePromptVersion, request).prompt_version

    def edit_prompt_version(
        self,
        name: str,
        edits: Iterable[tuple[str, str]],
        *,
        base_version: int | None = None,
        description: str = "",
        activate: bool | None = None,
        source: str = "",
    ) -> prompts_pb2.PromptVersion:
        """A new version from exact-match (old_text, new_text) replacements of
        `base_version`'s text (the active one by default), applied in order."""
        request = prompts_pb2.EditPromptVersionRequest(
            name=name,
            base_version=base_version,
            edits=[prompts_pb2.TextEdit(old_text=old, new_text=new) for old, new in edits],
            description=description,
            activate=activate,
            source=source,
        )
        return self._call(self.prompts.EditPromptVersion, request).prompt_version

    def diff_prompt_versions(
        self, name: str, from_version: int, to_version: int
    ) -> prompts_pb2.DiffPromptVersionsResponse:
        """`.unified_diff` of the templates and `.changed_fields`, the other fields that differ."""
        request = prompts_pb2.DiffPromptVersionsRequest(
            name=name, from_version=from_version, to_version=to_version
        )
        return self._call(self.prompts.DiffPromptVersions, request)

    def get_prompt(self, name: str) -> prompts_pb2.Prompt:
        """The prompt as a whole: active and latest version, count, times."""
        return self._call(self.prompts.GetPrompt, prompts_pb2.GetPromptRequest(name=name)).prompt

    def list_prompts(self, page_size: int = 0, page_token: str = "") -> prompts_pb2.ListPromptsResponse:
        """One page of every version of every prompt."""
        request = prompts_pb2.ListPromptsRequest(page_size=page_size, page_token=page_token)
        return self._call(self.prompts.ListPrompts, request)

    def iter_prompts(self, page_size: int = 0) -> Iterator[prompts_pb2.PromptVersion]:
        """Every version of every prompt, following page tokens."""
        return _every(lambda token: self.list_prompts(page_size, token), "prompt_versions")

    def list_prompt_versions(
        self, name: str, page_size: int = 0, page_token: str = ""
    ) -> prompts_pb2.ListPromptVersionsResponse:
        """One page of a prompt's versions, newest first."""
        request = prompts_pb2.ListPromptVersionsRequest(name=name, page_size=page_size, page_token=page_token)
        return self._call(self.prompts.ListPromptVersions, request)

    def iter_prompt_versions(self, name: str, page_size: int = 0) -> Iterator[prompts_pb2.PromptVersion]:
        """Every version of a prompt, newest first, following page tokens."""
        return _every(lambda token: self.list_prompt_versions(name, page_size, token), "prompt_versions")

    def get_prompt_version(
        self, name: str, version: int | None = None, *, label: str = ""
    ) -> prompts_pb2.PromptVersion:
        """One version, by number or `label`; with neither, the active one."""
        request = prompts_pb2.GetPromptVersionRequest(name=name, version=version, label=label)
        return self._call(self.prompts.GetPromptVersion, request).prompt_version

    def activate_prompt_version(self, name: str, version: int) -> prompts_pb2.PromptVersion:
        """Promote a version, or roll back to an earlier one."""
        request = prompts_pb2.ActivatePromptVersionRequest(name=name, version=version)
        return self._call(self.prompts.ActivatePromptVersion, request).prompt_version

    def render_prompt(
        self, name: str, variables: Mapping[str, str], version: int | None = None, *, label: str = ""
    ) -> prompts_pb2.RenderPromptResponse:
        """The template filled with `variables` (`.text`, `.version`)."""
        request = prompts_pb2.RenderPromptRequest(
            name=name, variables=dict(variables), version=version, label=label
        )
        return self._call(self.prompts.RenderPrompt, request)

    def set_prompt_label(self, name: str, label: str, version: int) -> prompts_pb2.PromptVersion:
        """Point `label` at `version` (creating or moving it); returns that version."""
        request = prompts_pb2.SetPromptLabelRequest(name=name, label=label, version=version)
        return self._call(self.prompts.SetPromptLabel, request).prompt_version

    def delete_prompt_label(self, name: str, label: str) -> None:
        """Delete a label of a prompt."""
        request = prompts_pb2.DeletePromptLabelRequest(name=name, label=label)
        self._call(self.prompts.DeletePromptLabel, request)

    def set_traffic_split(self, name: str, weights: Mapping[int, int]) -> prompts_pb2.TrafficSplit:
        """Split ResolvePrompt's traffic: `weights` maps versions to relative weights."""
        arms = [prompts_pb2.SplitArm(version=v, weight=w) for v, w in weights.items()]
        request = prompts_pb2.SetTrafficSplitRequest(name=name, arms=arms)
        return self._call(self.prompts.SetTrafficSplit, request).split

    def clear_traffic_split(self, name: str) -> None:
        """Remove a prompt's traffic split."""
        self._call(self.prompts.ClearTrafficSplit, prompts_pb2.ClearTrafficSplitRequest(name=name))

    def resolve_prompt(
        self,
        name: str,
        *,
        subject: str = "",
        label: str = "",
        trace_id: str = "",
        variables: Mapping[str, str] | None = None,
    ) -> prompts_pb2.ResolvePromptResponse:
        """The version to use now (`.prompt_version`, and `.rendered_text`
        with `variables`): the label's, else the split's for `subject`, else
        the active one; `trace_id` links the trace to it."""
        request = prompts_pb2.ResolvePromptRequest(
            name=name, subject=subject, label=label, trace_id=trace_id, variables=dict(variables or {})
        )
        return self._call(self.prompts.ResolvePrompt, request)

    def list_prompt_history(
        self, name: str, page_size: int = 0, page_token: str = ""
    ) -> prompts_pb2.ListPromptHistoryResponse:
        """One page of a prompt's history, newest first."""
        request = prompts_pb2.ListPromptHistoryRequest(name=name, page_size=page_size, page_token=page_token)
        return self._call(self.prompts.ListPromptHistory, request)

    def watch_prompts(
        self, names: Iterable[str] = (), after_sequence: int = 0, timeout: float | None = None
    ) -> grpc.Future:
        """Open a WatchPrompts stream: iterate it for WatchPromptsResponse
        messages (the first holds the current states), `.cancel()` it to
        stop. It never ends by itself; `timeout` (none by default) bounds it.
        A failure is raised, while iterating, as a grpc.RpcError
        (PromptGaugeError.from_rpc_error tells what it was)."""
        request = prompts_pb2.WatchPromptsRequest(names=list(names), after_sequence=after_sequence)
        return self.prompts.WatchPrompts(request, timeout=timeout, metadata=self._metadata)

    def prompt_cache(self, names: Iterable[str] = (), **kwargs) -> "PromptCache":
        """A PromptCache of these prompts (all of the account's if none),
        kept fresh by WatchPrompts; close it (or use `with`) when done."""
        from .cache import PromptCache

        return PromptCache(self, names, **kwargs)

    def iter_prompt_history(self, name: str, page_size: int = 0) -> Iterator[prompts_pb2.PromptEvent]:
        """Every event of a prompt, newest first, following page tokens."""
        return _every(lambda token: self.list_prompt_history(name, page_size, token), "events")

    # -- AnalyticsService -------------------------------------------------

    def record_trace_outcome(
        self,
        trace_id: str,
        *,
        success: bool | None = None,
        total_cost_usd: float | None = None,
        duration_ms: float | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        end_time: datetime.datetime | None = None,
    ) -> str:
        """Record how a trace went; returns "recorded" or "duplicate".
        `end_time` (aware, or naive UTC) places the run in time; unset, the
        server's receipt time does."""
        outcome = analytics_pb2.TraceOutcome(
            trace_id=trace_id,
            success=success,
            total_cost_usd=total_cost_usd,
            duration_ms=duration_ms,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            end_time=timestamp(end_time),
        )
        request = analytics_pb2.RecordTraceOutcomeRequest(outcome=outcome)
        return self._call(self.analytics.RecordTraceOutcome, request).status

    def record_usage(
        self, prompt_name: str, prompt_version: int, trace_id: str, span_id: str | None = None
    ) -> str:
        """Link a trace to the prompt version that produced it; returns "recorded"."""
        usage = analytics_pb2.UsageRecord(
            prompt_name=prompt_name, prompt_version=prompt_version, trace_id=trace_id, span_id=span_id
        )
        return self._call(self.analytics.RecordUsage, analytics_pb2.RecordUsageRequest(usage=usage)).status

    def stream_usage(
        self,
        batches: Iterable[Iterable[analytics_pb2.UsageRecord]],
        timeout: float | None = None,
        *,
        retry: bool = False,
    ) -> analytics_pb2.IngestSummary:
        """Send batches of usage records as one stream; returns its summary.

        `retry=True` sends the whole stream again after a retryable failure,
        as the method's retry policy says, within the one deadline (records
        stored already count as duplicates): `batches` must then be a
        sequence that can be iterated again, such as a list."""
        _check_resendable(batches, retry)
        return self._call(
            self.analytics.StreamUsage,
            lambda: (analytics_pb2.StreamUsageRequest(records=list(b)) for b in batches),
            timeout,
            retry=retry,
        ).summary

    def stream_trace_outcomes(
        self,
        batches: Iterable[Iterable[analytics_pb2.TraceOutcome]],
        timeout: float | None = None,
        *,
        retry: bool = False,
    ) -> analytics_pb2.IngestSummary:
        """Send batches of outcomes as one stream; returns its summary
        (`retry` as in stream_usage)."""
        _check_resendable(batches, retry)
        return self._call(
            self.analytics.StreamTraceOutcomes,
            lambda: (analytics_pb2.StreamTraceOutcomesRequest(outcomes=list(b)) for b in batches),
            timeout,
            retry=retry,
        ).summary

    def compare_prompt_versions(
        self,
        name: str,
        view: int = analytics_pb2.COMPARISON_VIEW_FULL,
        *,
        start_time: datetime.datetime | None = None,
        end_time: datetime.datetime | None = None,
        baseline_version: int | None = None,
        confidence_level: float = 0.0,
    ) -> analytics_pb2.ComparePromptVersionsResponse:
        """Per-version traces, success rate and its interval, cost, latency
        and cost percentiles, tokens, and each version against the baseline
        (the active version unless given), by version ascending; over
        [start_time, end_time) of run end times when given (aware, or naive
        UTC), else all time. `view` COMPARISON_VIEW_BASIC leaves the
        templates out; `confidence_level` 0 means 0.95."""
        request = comparison_request(name, view, start_time, end_time, baseline_version, confidence_level)
        return self._call(self.analytics.ComparePromptVersions, request)

    def export_traces(
        self, request: trace_service_pb2.ExportTraceServiceRequest, timeout: float | None = None
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        """Send OpenTelemetry spans as an OTLP exporter would (TraceService/
        Export; docs/opentelemetry.md has the mapping). The response's
        partial_success counts the spans that could not be used, and says why.
        Not retried here: an exporter retries as OTLP says, and a re-export
        changes nothing."""
        return self._call(self.traces.Export, request, timeout, retry=False)

    # -- AgentService -----------------------------------------------------

    def create_agent_version(
        self,
        agent: str,
        config: agents_pb2.AgentConfig,
        *,
        version: str = "",
        input_schema: Mapping | None = None,
        output_schema: Mapping | None = None,
        message: str = "",
        promote: bool | None = None,
    ) -> agents_pb2.AgentVersion:
        """A new agent version ("v<n>" when `version` is empty); the first
        creates the agent. Not retried: sent twice it would make two."""
        request = agents_pb2.CreateAgentVersionRequest(
            agent=agent, version=version, config=config, input_schema=_struct(input_schema),
            output_schema=_struct(output_schema), message=message, promote=promote,
        )
        return self._call(self.agents.CreateAgentVersion, request).agent_version

    def list_agents(self, page_size: int = 0, page_token: str = "") -> agents_pb2.ListAgentsResponse:
        """One page of the account's agents, by name."""
        request = agents_pb2.ListAgentsRequest(page_size=page_size, page_token=page_token)
        return self._call(self.agents.ListAgents, request)

    def list_agent_versions(
        self, agent: str, page_size: int = 0, page_token: str = ""
    ) -> agents_pb2.ListAgentVersionsResponse:
        """One page of an agent's versions, newest first."""
        request = agents_pb2.ListAgentVersionsRequest(agent=agent, page_size=page_size, page_token=page_token)
        return self._call(self.agents.ListAgentVersions, request)

    def get_agent_version(self, agent: str, version: str | None = None) -> agents_pb2.AgentVersion:
        """One agent version; without `version`, the current one."""
        request = agents_pb2.GetAgentVersionRequest(agent=agent, version=version)
        return self._call(self.agents.GetAgentVersion, request).agent_version

    def promote_agent_version(self, agent: str, version: str) -> agents_pb2.AgentVersion:
        """Make a version current: promote or roll back."""
        request = agents_pb2.PromoteAgentVersionRequest(agent=agent, version=version)
        return self._call(self.agents.PromoteAgentVersion, request).agent_version

    def resolve_agent(
        self,
        agent: str,
        *,
        version: str | None = None,
        trace_id: str = "",
        variables: Mapping[str, str] | None = None,
    ) -> agents_pb2.ResolveAgentResponse:
        """What a run of the agent executes now (`.agent_version`, `.prompts`
        in sort order, rendered when `variables` are given); with `trace_id`
        the run is linked for CompareAgentVersions and ComparePromptVersions."""
        request = agents_pb2.ResolveAgentRequest(
            agent=agent, version=version, trace_id=trace_id, variables=dict(variables or {})
        )
        return self._call(self.agents.ResolveAgent, request)

    def compare_agent_versions(self, agent: str) -> agents_pb2.CompareAgentVersionsResponse:
        """Per agent version, oldest first: traces, success rate, cost, latency."""
        request = agents_pb2.CompareAgentVersionsRequest(agent=agent)
        return self._call(self.agents.CompareAgentVersions, request)

    def get_version_time_series(
        self,
        name: str,
        granularity: int = analytics_pb2.GRANULARITY_HOUR,
        *,
        start_time: datetime.datetime | None = None,
        end_time: datetime.datetime | None = None,
    ) -> analytics_pb2.GetVersionTimeSeriesResponse:
        """Per version, one bucket per hour (GRANULARITY_HOUR) or day
        (GRANULARITY_DAY) with data in [start_time, end_time)."""
        request = analytics_pb2.GetVersionTimeSeriesRequest(
            name=name, granularity=granularity, start_time=timestamp(start_time), end_time=timestamp(end_time)
        )
        return self._call(self.analytics.GetVersionTimeSeries, request)

    def watch_comparison(
        self,
        name: str,
        view: int = analytics_pb2.COMPARISON_VIEW_FULL,
        *,
        start_time: datetime.datetime | None = None,
        end_time: datetime.datetime | None = None,
        baseline_version: int | None = None,
        confidence_level: float = 0.0,
        timeout: float | None = None,
    ) -> Iterator[analytics_pb2.ComparePromptVersionsResponse]:
        """The comparison now, then each time new data changes it (at most
        once a second), until the iterator is closed or `timeout` seconds
        (none by default: a watch lasts) pass. Errors raise PromptGaugeError."""
        request = comparison_request(name, view, start_time, end_time, baseline_version, confidence_level)
        call = self.analytics.WatchComparison(request, timeout=timeout, metadata=self._metadata)
        try:
            yield from call
        except grpc.RpcError as rpc_error:
            raise PromptGaugeError.from_rpc_error(rpc_error, self.target, timeout or 0) from None
        finally:
            call.cancel()

    def recorder(self, **kwargs) -> Recorder:
        """A Recorder that batches usage records and outcomes into streams."""
        return Recorder(self, **kwargs)


def comparison_request(
    name: str,
    view: int,
    start_time=None,
    end_time=None,
    baseline_version: int | None = None,
    confidence_level: float = 0.0,
) -> analytics_pb2.ComparePromptVersionsRequest:
    return analytics_pb2.ComparePromptVersionsRequest(
        name=name,
        view=view,
        start_time=timestamp(start_time),
        end_time=timestamp(end_time),
        baseline_version=baseline_version,
        confidence_level=confidence_level,
    )

"""PromptGaugeClient: typed calls with deadlines and status-coded errors."""

import itertools
import os
import random
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from promptgauge.v1 import (
    analytics_pb2,
    analytics_pb2_grpc,
    prompts_pb2,
    prompts_pb2_grpc,
)

from .recorder import Recorder

DEFAULT_TIMEOUT_SECONDS = 10.0


class PromptGaugeError(Exception):
    """A failed call: `code` is the grpc.StatusCode, `reason` the server's
    machine-readable reason (ErrorInfo) when it sent one, `field` the request
    field at fault."""

    def __init__(self, code: grpc.StatusCode, message: str, reason: str = "", field: str = ""):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.reason = reason
        self.field = field

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> "PromptGaugeError":
        reason = field = ""
        status = rpc_status.from_call(error)
        if status is not None:
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    reason = info.reason
                    field = info.metadata.get("field", "")
        return cls(error.code(), error.details() or "", reason, field)


@dataclass(frozen=True)
class RetryPolicy:
    """How an idempotent call is tried again after a transient failure:
    exponential backoff with full jitter, `max_attempts` tries in all."""

    max_attempts: int = 5
    initial_backoff_seconds: float = 0.2
    max_backoff_seconds: float = 5.0
    multiplier: float = 2.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before try number `attempt` + 1 (attempt counts from 1)."""
        growth = self.multiplier ** (attempt - 1)
        ceiling = min(self.max_backoff_seconds, self.initial_backoff_seconds * growth)
        return random.uniform(0, ceiling)


NO_RETRY = RetryPolicy(max_attempts=1)
_sleep = time.sleep  # the backoff's wait; tests put a hook here

# Safe to try again only where a repeat cannot change the outcome: every
# promptgauge call but CreatePromptVersion is idempotent (a usage record or an
# outcome sent twice is stored once), so UNAVAILABLE (the server was not
# reached, is shutting down, or lost its database) and DEADLINE_EXCEEDED (it
# may or may not have stored the call) are retried there.
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def _pem(value: bytes | str | os.PathLike | None) -> bytes | None:
    """PEM bytes given as such, or read from a file path."""
    if value is None or isinstance(value, bytes):
        return value
    with open(value, "rb") as f:
        return f.read()


class PromptGaugeClient:
    """A connection to a promptgauge server, authenticated with one API key.

    >>> with PromptGaugeClient("127.0.0.1:50051", api_key) as pg:
    ...     pg.create_prompt_version("support-classifier", "Classify: {ticket}")

    TLS: `tls=True` verifies the server against the system's roots, or
    against `root_certificates` (PEM bytes or a file path); `client_certificate`
    and `client_key` present a certificate for mutual TLS. Idempotent calls are
    retried on UNAVAILABLE and DEADLINE_EXCEEDED as `retry` says.
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
        retry: RetryPolicy = RetryPolicy(),
        channel: grpc.Channel | None = None,
        options: list[tuple[str, object]] | None = None,
    ):
        if channel is None:
            if tls or root_certificates or client_certificate or client_key:
                credentials = grpc.ssl_channel_credentials(
                    root_certificates=_pem(root_certificates),
                    private_key=_pem(client_key),
                    certificate_chain=_pem(client_certificate),
                )
                channel = grpc.secure_channel(target, credentials, options=options or [])
            else:
                channel = grpc.insecure_channel(target, options=options or [])
        self._channel = channel
        self._metadata = (("authorization", f"Bearer {api_key}"),)
        self.timeout = timeout
        self.retry = retry
        self.prompts = prompts_pb2_grpc.PromptServiceStub(self._channel)
        self.analytics = analytics_pb2_grpc.AnalyticsServiceStub(self._channel)

    def __enter__(self) -> "PromptGaugeClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method, request, timeout: float | None = None, idempotent: bool = True):
        """Call `method` with `request` (or, for a stream, a function making a
        fresh request iterator), retried as `self.retry` says when idempotent.
        A retry waits for the channel to be ready (within its deadline), so a
        server that comes back is reached as soon as it listens."""
        policy = self.retry if idempotent else NO_RETRY
        for number in itertools.count(1):
            try:
                return method(
                    request() if callable(request) else request,
                    timeout=timeout or self.timeout,
                    metadata=self._metadata,
                    wait_for_ready=True if number > 1 else None,
                )
            except grpc.RpcError as rpc_error:
                error = PromptGaugeError.from_rpc_error(rpc_error)
            if error.code not in RETRYABLE or number >= policy.max_attempts:
                raise error
            _sleep(policy.backoff(number))
        raise AssertionError("unreachable")

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
    ) -> prompts_pb2.PromptVersion:
        """Register a version; `version` left out is one more than the highest."""
        request = prompts_pb2.CreatePromptVersionRequest(
            name=name,
            template_text=template_text,
            description=description,
            version=version,
            parent_version=parent_version,
            activate=activate,
        )
        return self._call(self.prompts.CreatePromptVersion, request, idempotent=False).prompt_version

    def list_prompts(self, page_size: int = 0, page_token: str = "") -> prompts_pb2.ListPromptsResponse:
        """One page of every version of every prompt."""
        request = prompts_pb2.ListPromptsRequest(page_size=page_size, page_token=page_token)
        return self._call(self.prompts.ListPrompts, request)

    def iter_prompts(self, page_size: int = 0) -> Iterator[prompts_pb2.PromptVersion]:
        """Every version of every prompt, following page tokens."""
        token = ""
        while True:
            page = self.list_prompts(page_size, token)
            yield from page.prompt_versions
            token = page.next_page_token
            if not token:
                return

    def list_prompt_versions(
        self, name: str, page_size: int = 0, page_token: str = ""
    ) -> prompts_pb2.ListPromptVersionsResponse:
        """One page of a prompt's versions, newest first."""
        request = prompts_pb2.ListPromptVersionsRequest(
            name=name, page_size=page_size, page_token=page_token
        )
        return self._call(self.prompts.ListPromptVersions, request)

    def iter_prompt_versions(self, name: str, page_size: int = 0) -> Iterator[prompts_pb2.PromptVersion]:
        """Every version of a prompt, newest first, following page tokens."""
        token = ""
        while True:
            page = self.list_prompt_versions(name, page_size, token)
            yield from page.prompt_versions
            token = page.next_page_token
            if not token:
                return

    def get_prompt_version(self, name: str, version: int | None = None) -> prompts_pb2.PromptVersion:
        """One version; without `version`, the active one."""
        request = prompts_pb2.GetPromptVersionRequest(name=name, version=version)
        return self._call(self.prompts.GetPromptVersion, request).prompt_version

    def activate_prompt_version(self, name: str, version: int) -> prompts_pb2.PromptVersion:
        """Promote a version, or roll back to an earlier one."""
        request = prompts_pb2.ActivatePromptVersionRequest(name=name, version=version)
        return self._call(self.prompts.ActivatePromptVersion, request).prompt_version

    def render_prompt(
        self, name: str, variables: Mapping[str, str], version: int | None = None
    ) -> prompts_pb2.RenderPromptResponse:
        """The template filled with `variables` (`.text`, `.version`)."""
        request = prompts_pb2.RenderPromptRequest(name=name, variables=dict(variables), version=version)
        return self._call(self.prompts.RenderPrompt, request)

    # -- AnalyticsService -------------------------------------------------

    def record_trace_outcome(
        self,
        trace_id: str,
        *,
        success: bool | None = None,
        total_cost_usd: float | None = None,
        duration_ms: float | None = None,
    ) -> str:
        """Record how a trace went; returns "recorded" or "duplicate"."""
        outcome = analytics_pb2.TraceOutcome(
            trace_id=trace_id, success=success, total_cost_usd=total_cost_usd, duration_ms=duration_ms
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

        `retry=True` sends the whole stream again after a retryable failure
        (records stored already count as duplicates): `batches` must then be
        a sequence that can be iterated again, such as a list."""
        return self._call(
            self.analytics.StreamUsage,
            lambda: (analytics_pb2.StreamUsageRequest(records=list(b)) for b in batches),
            timeout,
            idempotent=retry,
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
        return self._call(
            self.analytics.StreamTraceOutcomes,
            lambda: (analytics_pb2.StreamTraceOutcomesRequest(outcomes=list(b)) for b in batches),
            timeout,
            idempotent=retry,
        ).summary

    def compare_prompt_versions(self, name: str) -> analytics_pb2.ComparePromptVersionsResponse:
        """Per-version traces, success rate, cost and latency, by version ascending."""
        request = analytics_pb2.ComparePromptVersionsRequest(name=name)
        return self._call(self.analytics.ComparePromptVersions, request)

    def recorder(self, **kwargs) -> Recorder:
        """A Recorder that batches usage records and outcomes into streams."""
        return Recorder(self, **kwargs)

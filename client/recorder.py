"""Recorder: batches usage records and outcomes into streamed calls."""

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from promptgauge.v1 import analytics_pb2

from .times import timestamp

MESSAGE_RECORDS = 500  # records per stream message: well under the server's limit


@dataclass
class RecorderTotals:
    """What every stream a Recorder sent came to, and their summaries."""

    received: int = 0
    recorded: int = 0
    duplicates: int = 0
    rejected: int = 0
    summaries: list[tuple[str, analytics_pb2.IngestSummary]] = field(default_factory=list)

    def add(self, kind: str, summary: analytics_pb2.IngestSummary) -> None:
        self.received += summary.received
        self.recorded += summary.recorded
        self.duplicates += summary.duplicates
        self.rejected += summary.rejected
        self.summaries.append((kind, summary))


class StreamSender(Protocol):
    """What a Recorder sends through: the two streaming calls of
    PromptGaugeClient, each returning the stream's summary."""

    def stream_usage(
        self,
        batches: Iterable[Iterable[analytics_pb2.UsageRecord]],
        timeout: float | None = None,
        *,
        retry: bool = False,
    ) -> analytics_pb2.IngestSummary: ...

    def stream_trace_outcomes(
        self,
        batches: Iterable[Iterable[analytics_pb2.TraceOutcome]],
        timeout: float | None = None,
        *,
        retry: bool = False,
    ) -> analytics_pb2.IngestSummary: ...


class Recorder:
    """Collects usage records and outcomes, and sends them in streams through
    `client` (a PromptGaugeClient, or anything with its two stream methods).

    A batch goes out when it holds `max_batch` records, or `max_delay_seconds`
    after its first record, whichever comes first; `flush()` sends at once and
    `close()` (or leaving the `with` block) sends what is left. Each stream is
    sent with `retry=True`, so a retryable failure sends it again within its
    deadline, as the client's retry policy says; one that still fails keeps
    its records, in order, for the next send and raises from the next call.
    """

    def __init__(self, client: StreamSender, max_batch: int = 2000, max_delay_seconds: float = 1.0):
        self.client = client
        self.max_batch = max_batch
        self.max_delay = max_delay_seconds
        self.totals = RecorderTotals()
        self._usage: list[analytics_pb2.UsageRecord] = []
        self._outcomes: list[analytics_pb2.TraceOutcome] = []
        self._first_at: float | None = None
        self._lock = threading.Lock()  # the pending lists
        self._send_lock = threading.Lock()  # one send at a time, in order
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._error: Exception | None = None
        self._timer = threading.Thread(target=self._run_timer, name="promptgauge-recorder", daemon=True)
        self._timer.start()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def record_usage(
        self, prompt_name: str, prompt_version: int, trace_id: str, span_id: str | None = None
    ) -> None:
        self._add(
            self._usage,
            analytics_pb2.UsageRecord(
                prompt_name=prompt_name, prompt_version=prompt_version, trace_id=trace_id, span_id=span_id
            ),
        )

    def record_outcome(
        self,
        trace_id: str,
        *,
        success: bool | None = None,
        total_cost_usd: float | None = None,
        duration_ms: float | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        end_time=None,
    ) -> None:
        """Queue an outcome; `end_time` (a datetime, aware or naive UTC) is
        when the run ended, unset meaning when the server receives it."""
        self._add(
            self._outcomes,
            analytics_pb2.TraceOutcome(
                trace_id=trace_id, success=success, total_cost_usd=total_cost_usd, duration_ms=duration_ms,
                input_tokens=input_tokens, output_tokens=output_tokens, end_time=timestamp(end_time),
            ),
        )

    def _add(self, pending: list, record) -> None:
        self._raise_pending_error()
        with self._lock:
            if self._closed:
                raise RuntimeError("the recorder is closed")
            pending.append(record)
            if self._first_at is None:
                self._first_at = time.monotonic()
                self._wake.notify()
            full = len(self._usage) + len(self._outcomes) >= self.max_batch
        if full:
            self.flush()

    @property
    def pending(self) -> int:
        """Records held and not yet acknowledged by the server."""
        with self._lock:
            return len(self._usage) + len(self._outcomes)

    def flush(self) -> RecorderTotals:
        """Send everything pending now; return the running totals."""
        with self._send_lock:
            with self._lock:
                usage, self._usage = self._usage, []
                outcomes, self._outcomes = self._outcomes, []
                self._first_at = None
            try:
                # Links first, then outcomes; the server joins them in either order.
                # Each stream is idempotent, so a retryable failure sends the
                # whole of it again: what was stored counts as duplicates.
                if usage:
                    self.totals.add("usage", self.client.stream_usage(_messages(usage), retry=True))
                    usage = []
                if outcomes:
                    self.totals.add(
                        "outcomes", self.client.stream_trace_outcomes(_messages(outcomes), retry=True)
                    )
            except Exception:
                with self._lock:  # keep what was not acknowledged, for the next send
                    self._usage[:0] = usage
                    self._outcomes[:0] = outcomes
                    if self._first_at is None and (self._usage or self._outcomes):
                        self._first_at = time.monotonic()
                raise
        return self.totals

    def close(self) -> RecorderTotals:
        """Send what is left and stop the timer; return the totals."""
        with self._lock:
            self._closed = True
            self._wake.notify()
        self._timer.join()
        self._raise_pending_error()
        return self.flush()

    def _raise_pending_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run_timer(self) -> None:
        while True:
            with self._lock:
                while not self._closed and (
                    self._first_at is None or time.monotonic() - self._first_at < self.max_delay
                ):
                    timeout = None if self._first_at is None else self.max_delay - (
                        time.monotonic() - self._first_at
                    )
                    self._wake.wait(timeout)
                if self._closed:
                    return
            try:
                self.flush()
            except Exception as error:  # noqa: BLE001 - surfaced on the caller's next call
                self._error = error
                with self._lock:  # wait for the caller before trying again
                    self._first_at = None


def _messages(records: list) -> list[list]:
    return [records[i : i + MESSAGE_RECORDS] for i in range(0, len(records), MESSAGE_RECORDS)]

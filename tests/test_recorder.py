"""The Recorder alone, sending through a stand-in for the client (no socket):
batching by count and by age, flushing on close, keeping records through a
failed send, and keeping their order."""

import ast
import threading
from pathlib import Path

import grpc
import pytest

from promptgauge.client import PromptGaugeError
from promptgauge.client import recorder as recorder_module
from promptgauge.client.recorder import MESSAGE_RECORDS, Recorder
from promptgauge.v1 import analytics_pb2


class FakeSender:
    """A StreamSender that keeps what it is sent, in order; a stream of a kind
    fails with the errors queued in `failures[kind]` first."""

    def __init__(self):
        self.sent: list[tuple[str, list[str]]] = []  # (kind, trace ids) per stream
        self.messages: list[int] = []  # stream messages per stream
        self.failures: dict[str, list[Exception]] = {"usage": [], "outcomes": []}
        self.has_sent = threading.Event()

    def _send(self, kind: str, batches, retry: bool) -> analytics_pb2.IngestSummary:
        assert retry, "a Recorder's streams are sent again after a retryable failure"
        batches = list(batches)
        if self.failures[kind]:
            raise self.failures[kind].pop(0)
        traces = [record.trace_id for batch in batches for record in batch]
        self.sent.append((kind, traces))
        self.messages.append(len(batches))
        self.has_sent.set()
        return analytics_pb2.IngestSummary(received=len(traces), recorded=len(traces))

    def stream_usage(self, batches, timeout=None, *, retry=False):
        return self._send("usage", batches, retry)

    def stream_trace_outcomes(self, batches, timeout=None, *, retry=False):
        return self._send("outcomes", batches, retry)


UNAVAILABLE = PromptGaugeError(grpc.StatusCode.UNAVAILABLE, "cannot reach 127.0.0.1:1: connection refused")


def _trace(n: int) -> str:
    return f"{n:032x}"


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()


def test_the_recorder_does_not_import_the_client():
    # client.py imports the Recorder; the Recorder knows only its StreamSender protocol.
    nodes = list(ast.walk(ast.parse(Path(recorder_module.__file__).read_text())))
    imported = [node.module or "" for node in nodes if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in nodes if isinstance(node, ast.Import) for alias in node.names]
    assert not [name for name in imported if name.split(".")[-1] == "client"], imported


def test_a_batch_goes_out_when_it_is_full(sender):
    recorder = Recorder(sender, max_batch=10, max_delay_seconds=3600)
    for n in range(25):
        recorder.record_usage("p", 1, _trace(n))
        if n == 9:
            # Sent from the caller's thread by the record that filled the batch.
            assert sender.sent == [("usage", [_trace(i) for i in range(10)])]
    assert [len(traces) for _, traces in sender.sent] == [10, 10]
    assert recorder.pending == 5
    totals = recorder.close()
    assert [traces for _, traces in sender.sent] == [[_trace(i) for i in range(s, min(s + 10, 25))]
                                                    for s in (0, 10, 20)]
    assert (totals.received, totals.recorded, len(totals.summaries)) == (25, 25, 3)


def test_usage_and_outcomes_fill_one_batch_and_usage_goes_first(sender):
    recorder = Recorder(sender, max_batch=4, max_delay_seconds=3600)
    recorder.record_outcome(_trace(1), success=True)
    recorder.record_usage("p", 1, _trace(1))
    recorder.record_outcome(_trace(2), success=False)
    recorder.record_usage("p", 1, _trace(2))
    assert sender.sent == [("usage", [_trace(1), _trace(2)]), ("outcomes", [_trace(1), _trace(2)])]
    recorder.close()


def test_a_batch_goes_out_when_it_is_old_enough(sender):
    with Recorder(sender, max_batch=1000, max_delay_seconds=0.01) as recorder:
        recorder.record_usage("p", 1, _trace(1))
        # No flush, no close: the timer sends it.
        assert sender.has_sent.wait(10)
        assert sender.sent == [("usage", [_trace(1)])]
        assert recorder.pending == 0


def test_close_sends_what_is_left_and_then_takes_no_more(sender):
    recorder = Recorder(sender, max_batch=1000, max_delay_seconds=3600)
    recorder.record_usage("p", 1, _trace(1))
    recorder.record_outcome(_trace(1), duration_ms=5.0)
    assert sender.sent == []
    totals = recorder.close()
    assert sender.sent == [("usage", [_trace(1)]), ("outcomes", [_trace(1)])]
    assert totals.received == 2
    with pytest.raises(RuntimeError, match="closed"):
        recorder.record_usage("p", 1, _trace(2))


def test_a_failed_send_keeps_its_records_for_the_next_in_order(sender):
    recorder = Recorder(sender, max_batch=1000, max_delay_seconds=3600)
    for n in range(3):
        recorder.record_usage("p", 1, _trace(n))
    sender.failures["usage"] = [UNAVAILABLE]
    with pytest.raises(PromptGaugeError) as error:
        recorder.flush()
    assert error.value is UNAVAILABLE
    assert recorder.pending == 3
    for n in range(3, 5):
        recorder.record_usage("p", 1, _trace(n))
    recorder.flush()
    assert sender.sent == [("usage", [_trace(n) for n in range(5)])]
    assert recorder.close().received == 5


def test_a_failed_outcome_send_does_not_send_the_acknowledged_usage_again(sender):
    recorder = Recorder(sender, max_batch=1000, max_delay_seconds=3600)
    recorder.record_usage("p", 1, _trace(1))
    recorder.record_outcome(_trace(1), success=True)
    recorder.record_outcome(_trace(2), success=True)
    sender.failures["outcomes"] = [UNAVAILABLE]
    with pytest.raises(PromptGaugeError):
        recorder.flush()
    assert sender.sent == [("usage", [_trace(1)])]
    assert recorder.pending == 2
    recorder.close()
    assert sender.sent == [("usage", [_trace(1)]), ("outcomes", [_trace(1), _trace(2)])]


def test_a_large_batch_is_split_into_stream_messages(sender):
    recorder = Recorder(sender, max_batch=10_000, max_delay_seconds=3600)
    for n in range(2 * MESSAGE_RECORDS + 1):
        recorder.record_usage("p", 1, _trace(n))
    recorder.close()
    assert sender.messages == [3]
    assert sender.sent[0][1] == [_trace(n) for n in range(2 * MESSAGE_RECORDS + 1)]

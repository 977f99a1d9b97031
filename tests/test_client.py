"""The Python client's helpers: unary calls, the batching Recorder, errors,
and the `promptgauge compare` command that prints through it."""

import subprocess
import sys
import threading
import time

import grpc
import pytest
from conftest import new_trace

from promptgauge.client import PromptGaugeClient, PromptGaugeError


def _eventually(predicate, timeout: float = 10.0) -> bool:
    """Wait, in short bounded steps, for a condition another thread makes true."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            return False
        tick.wait(0.01)
    return True


def test_unary_helpers_report_status(client):
    client.create_prompt_version("unary", "Q: {q}")
    trace = new_trace()
    assert client.record_usage("unary", 1, trace) == "recorded"
    assert client.record_usage("unary", 1, trace) == "recorded"
    assert client.record_trace_outcome(trace, success=True, duration_ms=12.5) == "recorded"
    assert client.record_trace_outcome(trace, success=True, duration_ms=12.5) == "duplicate"
    (v1,) = client.compare_prompt_versions("unary").versions
    assert (v1.total_traces, v1.success_rate, v1.avg_latency_ms) == (1, 1.0, 12.5)


def test_errors_carry_code_reason_and_field(client):
    with pytest.raises(PromptGaugeError) as err:
        client.record_usage("no-such-prompt", 1, new_trace())
    assert err.value.code == grpc.StatusCode.NOT_FOUND
    assert err.value.reason == "VERSION_NOT_FOUND"
    assert err.value.field == "prompt_version"
    with pytest.raises(PromptGaugeError) as err:
        client.record_trace_outcome("not-a-trace", success=True)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.field == "trace_id"


def test_recorder_sends_a_batch_when_it_is_full(client):
    client.create_prompt_version("batched", "x")
    recorder = client.recorder(max_batch=10, max_delay_seconds=3600)
    for _ in range(25):
        recorder.record_usage("batched", 1, new_trace())
    # Two full batches went out from the caller's thread; five wait.
    assert recorder.totals.received == 20
    assert client.compare_prompt_versions("batched").versions[0].total_traces == 20
    totals = recorder.close()
    assert (totals.received, totals.recorded, totals.rejected) == (25, 25, 0)
    assert client.compare_prompt_versions("batched").versions[0].total_traces == 25


def test_recorder_sends_a_batch_when_it_is_old_enough(client):
    client.create_prompt_version("timed", "x")
    with client.recorder(max_batch=1000, max_delay_seconds=0.05) as recorder:
        recorder.record_usage("timed", 1, new_trace())
        # No flush, no close: the timer sends it.
        assert _eventually(lambda: recorder.totals.received == 1)
    assert client.compare_prompt_versions("timed").versions[0].total_traces == 1


def test_recorder_flushes_on_close_and_returns_summaries(client):
    client.create_prompt_version("closing", "x")
    traces = [new_trace() for _ in range(5)]
    with client.recorder(max_batch=1000, max_delay_seconds=3600) as recorder:
        for t in traces:
            recorder.record_usage("closing", 1, t)
            recorder.record_outcome(t, success=True, total_cost_usd=0.5, duration_ms=100)
        recorder.record_usage("closing", 7, traces[0])  # no such version
        recorder.record_outcome(traces[1], success=False)  # conflicts with the first
    totals = recorder.totals
    assert (totals.received, totals.recorded, totals.rejected) == (12, 10, 2)
    kinds = {kind: summary for kind, summary in totals.summaries}
    assert [e.code for e in kinds["usage"].errors] == [grpc.StatusCode.NOT_FOUND.value[0]]
    assert [e.index for e in kinds["usage"].errors] == [5]
    assert [e.code for e in kinds["outcomes"].errors] == [grpc.StatusCode.ALREADY_EXISTS.value[0]]
    (v1,) = client.compare_prompt_versions("closing").versions
    assert (v1.total_traces, v1.success_rate, v1.avg_cost_usd) == (5, 1.0, 0.5)


def test_recorder_keeps_records_when_a_send_fails(server, api_key):
    with PromptGaugeClient(server.target, api_key) as good:
        good.create_prompt_version("kept", "x")
    broken = PromptGaugeClient(server.target, "pgk_wrong")
    recorder = broken.recorder(max_batch=1000, max_delay_seconds=3600)
    recorder.record_usage("kept", 1, new_trace())
    with pytest.raises(PromptGaugeError) as err:
        recorder.flush()
    assert err.value.code == grpc.StatusCode.UNAUTHENTICATED
    # The record is still pending: fix the key, and it goes out.
    recorder.client = PromptGaugeClient(server.target, api_key)
    assert recorder.close().recorded == 1


def _compare_cli(server, api_key, *args):
    return subprocess.run(
        [sys.executable, "-m", "promptgauge.server.cli", "compare", *args, "--target", server.target],
        env={"PROMPTGAUGE_API_KEY": api_key, "PATH": ""} if api_key else {"PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compare_command_prints_a_table(server, client, api_key):
    client.create_prompt_version("cli-compare", "one")
    client.create_prompt_version("cli-compare", "two")
    trace = new_trace()
    client.record_usage("cli-compare", 2, trace)
    client.record_trace_outcome(trace, success=True, total_cost_usd=0.0048, duration_ms=2210)
    result = _compare_cli(server, api_key, "cli-compare")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "cli-compare"
    assert lines[1].split()[:3] == ["VERSION", "TRACES", "SUCCESS"]
    # v2 is active, so the baseline: v1 has nothing to test against it with.
    assert lines[2].split() == ["v1", "0", "-", "-", "-", "-", "-", "-", "-"]
    assert lines[3].split() == [
        "v2", "active,", "baseline", "1", "100.0%", "20.7%-100.0%", "0.0048", "2,210", "2,210", "2,210"
    ]


def test_compare_command_reports_errors(server, api_key):
    result = _compare_cli(server, api_key, "missing-prompt")
    assert result.returncode == 1
    assert "NOT_FOUND" in result.stderr
    result = _compare_cli(server, None, "missing-prompt")
    assert result.returncode == 2
    assert "PROMPTGAUGE_API_KEY" in result.stderr

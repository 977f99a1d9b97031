"""Shutdown without loss: a SIGTERM in the middle of a large stream either
commits what it acknowledged or fails the call UNAVAILABLE; the client sends
the same records again and each is stored exactly once. And the Recorder
waits, within its deadline, for a server that is away."""

import signal
import uuid
from contextlib import ExitStack

import grpc
import pytest
from conftest import (
    create_account,
    database_url,
    in_batches,
    read_sql,
    refused_port,
    serve_process,
    usage_record,
)

from promptgauge.client import PromptGaugeClient, PromptGaugeError
from promptgauge.client import client as client_module
from promptgauge.client.client import RetryPolicy

N = 100_000


def test_sigterm_during_a_100k_stream_loses_nothing_and_a_retry_stores_each_record_once(backend, tmp_path):
    with database_url(backend, tmp_path) as url:
        key = create_account(url)
        messages = in_batches([usage_record("big", 1, str(uuid.uuid4())) for _ in range(N)], 500)

        with serve_process(url) as (proc, target), PromptGaugeClient(target, key) as pg:
            pg.create_prompt_version("big", "Answer {question}")

            def stream():
                for number, message in enumerate(messages):
                    if number == len(messages) // 4:
                        proc.send_signal(signal.SIGTERM)
                    yield message

            try:
                summary = pg.stream_usage(stream(), timeout=300)
            except PromptGaugeError as error:
                assert error.code == grpc.StatusCode.UNAVAILABLE, error
                summary = None
            assert proc.wait(timeout=60) == 0, "".join(proc.output)

        stored = read_sql(url, "SELECT COUNT(*) FROM usage_link")[0][0]
        if summary is None:
            # Not acknowledged: whatever part was stored, the client will resend it all.
            assert stored < N
        else:
            # Acknowledged: every record is committed.
            assert (summary.recorded, stored) == (N, N)

        with serve_process(url) as (_, target), PromptGaugeClient(target, key) as pg:
            again = pg.stream_usage(messages, timeout=300)
            assert (again.received, again.rejected) == (N, 0)
            assert (again.recorded, again.duplicates) == (N - stored, stored)
            (v1,) = pg.compare_prompt_versions("big").versions
            assert v1.total_traces == N

        assert read_sql(url, "SELECT COUNT(*), COUNT(DISTINCT trace_id) FROM usage_link")[0] == (N, N)
        assert read_sql(url, "SELECT COUNT(*) FROM observation")[0][0] == N


def test_recorder_waits_within_its_deadline_for_the_server_to_come_back(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'retry.db'}"
    key = create_account(url)
    with serve_process(url) as (_, target), PromptGaugeClient(target, key) as pg:
        pg.create_prompt_version("retried", "Answer {question}")
    port = int(target.rsplit(":", 1)[1])  # the server comes back where it was

    wait_for_connection = client_module._wait_for_connection
    waits: list[float] = []
    with ExitStack() as servers:

        def server_back(channel, timeout: float) -> bool:
            # The stream found no server; it comes back while the client waits.
            waits.append(timeout)
            if len(waits) == 1:
                servers.enter_context(serve_process(url, port=port))
            return wait_for_connection(channel, timeout)

        monkeypatch.setattr(client_module, "_wait_for_connection", server_back)
        traces = [str(uuid.uuid4()) for _ in range(1200)]
        with PromptGaugeClient(target, key, timeout=60) as pg:
            with pg.recorder(max_batch=10_000, max_delay_seconds=3600) as rec:
                for trace in traces:
                    rec.record_usage("retried", 1, trace)
                    rec.record_outcome(trace, success=True, duration_ms=10.0)
            assert (rec.totals.recorded, rec.totals.rejected) == (2 * len(traces), 0)
            (v1,) = pg.compare_prompt_versions("retried").versions
            assert (v1.total_traces, v1.success_rate) == (len(traces), 1.0)

    # Each wait had what was left of the one 60 s deadline.
    assert waits and all(0 < wait <= 60 for wait in waits)


def test_recorder_gives_up_at_its_deadline_and_keeps_the_records(tmp_path, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(client_module, "_sleep", waits.append)
    with refused_port() as port, PromptGaugeClient(
        f"127.0.0.1:{port}", "pgk_x", retry=RetryPolicy(max_attempts=3), timeout=0.5
    ) as pg:
        rec = pg.recorder(max_batch=10_000, max_delay_seconds=3600)
        rec.record_usage("p", 1, str(uuid.uuid4()))
        with pytest.raises(PromptGaugeError) as error:
            rec.flush()
        # The stream never left the client: no attempt was spent, the deadline was.
        assert error.value.code == grpc.StatusCode.UNAVAILABLE
        assert error.value.message == f"cannot reach {pg.target}: connection refused"
        assert waits == []
        # Nothing acknowledged, nothing dropped: the record waits for the next send.
        assert rec.pending == 1
        with pytest.raises(PromptGaugeError):
            rec.close()
        assert rec.pending == 1

"""Open streams, idle or busy, never starve a replica: health checks and
unary calls answer however many streams are open (issue 11, defect 3)."""

import threading
import uuid

import grpc
from conftest import create_account, database_url, serve_process, usage_record
from grpc_health.v1 import health_pb2, health_pb2_grpc

from promptgauge.client import PromptGaugeClient
from promptgauge.v1 import analytics_pb2, analytics_pb2_grpc

WORKERS = 2


def test_more_idle_streams_than_workers_leave_health_and_unary_calls_answering(backend, tmp_path):
    release = threading.Event()

    def idle(first: list):
        yield from first  # the stream is open and authenticated ...
        release.wait(60)  # ... then sends nothing

    with database_url(backend, tmp_path) as url:
        key = create_account(url)
        metadata = (("authorization", f"Bearer {key}"),)
        with serve_process(url, "--workers", str(WORKERS)) as (_, target), \
                grpc.insecure_channel(target) as channel, PromptGaugeClient(target, key) as pg:
            pg.create_prompt_version("idle", "Answer {q}")
            stub = analytics_pb2_grpc.AnalyticsServiceStub(channel)
            opened = []
            try:
                for _ in range(WORKERS + 4):
                    record = usage_record("idle", 1, str(uuid.uuid4()))
                    first = [analytics_pb2.StreamUsageRequest(records=[record])]
                    opened.append(stub.StreamUsage.future(idle(first), metadata=metadata, timeout=60))
                # Every stream has stored its first message: all are open on the server.
                tick = threading.Event()
                while pg.compare_prompt_versions("idle").versions[0].total_traces < len(opened):
                    assert not any(f.done() for f in opened)
                    tick.wait(0.02)

                health = health_pb2_grpc.HealthStub(channel)
                reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
                # More unary calls than there are workers, each within a short deadline.
                with PromptGaugeClient(target, key, timeout=2) as short:
                    for n in range(2, 2 + WORKERS + 2):
                        assert short.create_prompt_version("idle", f"v{n} {{q}}", activate=False).version == n
                        assert short.record_usage("idle", n, str(uuid.uuid4())) == "recorded"
                    assert short.get_prompt_version("idle").version == 1
            finally:
                release.set()
            summaries = [f.result(timeout=30).summary for f in opened]
    assert [(s.received, s.recorded) for s in summaries] == [(1, 1)] * (WORKERS + 4)

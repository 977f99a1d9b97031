"""The echo server: promptgauge's message types and transport, nothing stored.

It bounds what gRPC in Python can do on this machine, so that the real
server's figures for small messages can be read as a fraction of it.
`python -m benchmarks.echo --listen HOST:PORT` prints "echo listening on ..."
once serving.
"""

import argparse
import signal
import threading
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from promptgauge.v1 import analytics_pb2, analytics_pb2_grpc


def _summary(count: int) -> analytics_pb2.IngestSummary:
    return analytics_pb2.IngestSummary(received=count, recorded=count)


class EchoAnalytics(analytics_pb2_grpc.AnalyticsServiceServicer):
    """Reads every message as the real server does, answers as if all were recorded."""

    def RecordUsage(self, request, context):
        return analytics_pb2.RecordUsageResponse(status="recorded")

    def RecordTraceOutcome(self, request, context):
        return analytics_pb2.RecordTraceOutcomeResponse(status="recorded")

    def StreamUsage(self, request_iterator, context):
        count = sum(len(m.records) for m in request_iterator)
        return analytics_pb2.StreamUsageResponse(summary=_summary(count))

    def StreamTraceOutcomes(self, request_iterator, context):
        count = sum(len(m.outcomes) for m in request_iterator)
        return analytics_pb2.StreamTraceOutcomesResponse(summary=_summary(count))


class EchoTraces(trace_service_pb2_grpc.TraceServiceServicer):
    """Reads an OTLP export as the real server does (parsed whole), stores nothing."""

    def Export(self, request, context):
        return trace_service_pb2.ExportTraceServiceResponse()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.echo")
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--workers", type=int, default=16)  # as `promptgauge serve`
    args = parser.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.workers))
    analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server(EchoAnalytics(), server)
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(EchoTraces(), server)
    port = server.add_insecure_port(args.listen)
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"echo listening on {args.listen.rsplit(':', 1)[0]}:{port}", flush=True)
    stop.wait()
    server.stop(1).wait()


if __name__ == "__main__":
    main()

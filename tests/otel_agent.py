"""An agent instrumented with the OpenTelemetry Python SDK and its standard
OTLP/gRPC exporter, and nothing of promptgauge's: it runs as its own process
so that what reaches the server is what any such agent would send.

    PROMPTGAUGE_API_KEY=... python tests/otel_agent.py TARGET < plan.json

plan.json: {"runs": [{"prompt", "version", "duration_ms" (whole ms), "ok",
"how" ("status": a failure is status ERROR; "attribute": promptgauge.success),
"cost_usd", "input_tokens", "output_tokens", "root_ends_first"}],
"noise_traces": N (traces with nothing for promptgauge), "batch_size",
"export_twice" (every batch sent again, as an exporter retrying after a lost
answer does)}. Each run is a trace: a root span "agent.run" (the outcome),
a child "llm.call" with the prompt version's attributes, and a child
"tool.search" that carries nothing for promptgauge.

stdout: {"traces": [hex trace id per run], "exports": N, "failed": N}; the
exit code is 1 when an export failed.
"""

import json
import os
import sys
import time

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import Status, StatusCode

MS = 1_000_000


class CountingExporter(OTLPSpanExporter):
    """The standard exporter, counting its exports (and sending each twice if asked)."""

    def __init__(self, twice: bool, **kwargs):
        super().__init__(**kwargs)
        self.twice = twice
        self.exports = self.failed = 0

    def export(self, spans):
        for _ in range(2 if self.twice else 1):
            result = super().export(spans)
            self.exports += 1
            self.failed += result is not SpanExportResult.SUCCESS
        return result


def main() -> int:
    target = sys.argv[1]
    plan = json.load(sys.stdin)
    exporter = CountingExporter(
        plan.get("export_twice", False),
        endpoint=target,
        insecure=True,
        headers=(("authorization", f"Bearer {os.environ['PROMPTGAUGE_API_KEY']}"),),
        timeout=20,
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "otel-agent"}))
    size = plan.get("batch_size", 512)
    batches = BatchSpanProcessor(exporter, max_export_batch_size=size, schedule_delay_millis=50)
    provider.add_span_processor(batches)
    tracer = provider.get_tracer("otel-agent")
    base = time.time_ns() - 3600 * 10**9
    traces = []
    for i, run in enumerate(plan["runs"]):
        start = base + i * 10**9
        end = start + run["duration_ms"] * MS
        root = tracer.start_span("agent.run", start_time=start)
        traces.append(format(root.get_span_context().trace_id, "032x"))
        if run["cost_usd"] is not None:
            root.set_attribute("promptgauge.cost_usd", run["cost_usd"])
        root.set_attribute("gen_ai.usage.input_tokens", run["input_tokens"])
        root.set_attribute("gen_ai.usage.output_tokens", run["output_tokens"])
        if run["how"] == "attribute":
            root.set_attribute("promptgauge.success", run["ok"])
        elif not run["ok"]:
            root.set_status(Status(StatusCode.ERROR, "the tool call failed"))
        inside = trace.set_span_in_context(root)
        llm = tracer.start_span("llm.call", context=inside, start_time=start + MS // 2)
        llm.set_attribute("promptgauge.prompt.name", run["prompt"])
        llm.set_attribute("promptgauge.prompt.version", run["version"])
        llm.set_attribute("gen_ai.request.model", "demo-model")
        tool = tracer.start_span("tool.search", context=inside, start_time=start + MS)
        tool.set_attribute("tool.name", "search")
        tool.end(end_time=start + 2 * MS)
        # An ended root before its child: the outcome is exported before the link.
        ends = [(root, end), (llm, end - MS // 2)]
        for span, at in ends if run.get("root_ends_first") else reversed(ends):
            span.end(end_time=at)
    for n in range(plan.get("noise_traces", 0)):
        with tracer.start_as_current_span("healthcheck", start_time=base - n * MS):
            with tracer.start_as_current_span("db.query") as query:
                query.set_attribute("db.system", "postgresql")
    provider.shutdown()  # flushes every batch
    print(json.dumps({"traces": traces, "exports": exporter.exports, "failed": exporter.failed}))
    return 1 if exporter.failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Plain-text rendering of a comparison, for terminals and logs."""

from promptgauge.v1 import analytics_pb2


def _cell(message, field: str, fmt: str) -> str:
    return format(getattr(message, field), fmt) if message.HasField(field) else "-"


def comparison_table(response: analytics_pb2.ComparePromptVersionsResponse) -> str:
    """The comparison as an aligned table, one row per version; '-' marks a
    metric that no linked trace carries."""
    header = ("VERSION", "TRACES", "SUCCESS", "AVG COST USD", "AVG LATENCY MS", "P95 LATENCY MS")
    rows = [
        (
            f"v{v.version}",
            f"{v.total_traces:,}",
            _cell(v, "success_rate", ".1%"),
            _cell(v, "avg_cost_usd", ".4f"),
            _cell(v, "avg_latency_ms", ",.0f"),
            _cell(v, "p95_latency_ms", ",.0f"),
        )
        for v in response.versions
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"{response.name}"]
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)

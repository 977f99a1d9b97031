"""Plain-text tables for terminals and logs: a comparison, and any aligned table."""

from collections.abc import Collection, Iterable, Sequence

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


def table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric: Collection[int] = ()) -> str:
    """An aligned plain-text table: columns two spaces apart, those whose
    index is in `numeric` aligned right, no trailing spaces (greppable, and
    as wide as its widest cell: nothing is wrapped or cut for a terminal)."""
    rows = [list(header), *(list(r) for r in rows)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for row in rows:
        cells = zip(row, widths, strict=True)
        lines.append("  ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(cells)))
    return "\n".join(line.rstrip() for line in lines)

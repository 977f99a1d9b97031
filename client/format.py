"""Plain-text tables for terminals and logs: a comparison, and any aligned table."""

from collections.abc import Collection, Iterable, Sequence

from promptgauge.v1 import analytics_pb2


def _cell(message, field: str, fmt: str) -> str:
    return format(getattr(message, field), fmt) if message.HasField(field) else "-"


def comparison_table(response: analytics_pb2.ComparePromptVersionsResponse, confidence: float = 0.95) -> str:
    """The comparison as an aligned table, one row per version; '-' marks a
    metric that no linked trace carries. The baseline and the active version
    are named, and each other version's success-rate difference against the
    baseline with its p-value, '*' when the difference is significant (any
    of its tests, Holm-corrected, at the confidence level)."""
    level = f"{confidence:.0%}"
    header = ("VERSION", "", "TRACES", "SUCCESS", f"{level} INTERVAL", "AVG COST USD", "AVG LATENCY MS",
              "P50 MS", "P95 MS", "VS BASELINE")
    rows = []
    for v in response.versions:
        marks = ", ".join(m for m, on in (("active", v.is_active), ("baseline", v.is_baseline)) if on)
        interval = "-"
        if v.HasField("success_rate_interval"):
            interval = f"{v.success_rate_interval.low:.1%}-{v.success_rate_interval.high:.1%}"
        rows.append((
            f"v{v.version}",
            marks,
            f"{v.total_traces:,}",
            _cell(v, "success_rate", ".1%"),
            interval,
            _cell(v, "avg_cost_usd", ".4f"),
            _cell(v, "avg_latency_ms", ",.0f"),
            _cell(v, "p50_latency_ms", ",.0f"),
            _cell(v, "p95_latency_ms", ",.0f"),
            _versus(v),
        ))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"{response.name}"]
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [c.rjust(w) for c, w in zip(row[2:], widths[2:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    if any(v.HasField("vs_baseline") for v in response.versions):
        lines.append(f"* significant at {level}: success rate, cost or latency (Holm over the versions)")
    return "\n".join(lines)


def _versus(v: analytics_pb2.VersionMetrics) -> str:
    """Success-rate difference against the baseline in points, its p-value,
    and '*' when significant."""
    if not v.HasField("vs_baseline"):
        return ""
    vs = v.vs_baseline
    marker = " *" if vs.significant else ""
    if not vs.HasField("success_rate_diff"):
        return f"-{marker}"
    p = f"p={vs.success_rate_p_value:.2g}" if vs.HasField("success_rate_p_value") else "p=-"
    return f"{vs.success_rate_diff * 100:+.1f} pts {p}{marker}"


def verdict(response: analytics_pb2.ComparePromptVersionsResponse, confidence: float = 0.95) -> str:
    """One sentence: which version beats the baseline's success rate, by how
    much and how sure the comparison is; or that none does, significantly."""
    base = next((v for v in response.versions if v.is_baseline), None)
    if base is None or not base.HasField("success_rate"):
        return "No baseline with outcomes to compare against."
    better = [
        v for v in response.versions
        if v.HasField("vs_baseline") and v.vs_baseline.significant and v.vs_baseline.success_rate_diff > 0
        and v.vs_baseline.HasField("success_rate_p_value")
        and v.vs_baseline.success_rate_p_value < 1 - confidence
    ]
    if not better:
        return (f"No version succeeds significantly more often than v{base.version} "
                f"({base.success_rate:.1%}) at {confidence:.0%} confidence.")
    win = max(better, key=lambda v: v.success_rate)
    vs = win.vs_baseline
    sentence = (
        f"v{win.version} wins: it succeeds {win.success_rate:.1%} of the time "
        f"({confidence:.0%} interval {win.success_rate_interval.low:.1%}-"
        f"{win.success_rate_interval.high:.1%}) "
        f"against v{base.version}'s {base.success_rate:.1%}: {vs.success_rate_diff * 100:+.1f} points, "
        f"p = {vs.success_rate_p_value:.2g}, significant at {confidence:.0%} after Holm's correction"
    )
    costs = []
    if vs.HasField("avg_cost_diff"):
        costs.append(f"{'+' if vs.avg_cost_diff >= 0 else '-'}${abs(vs.avg_cost_diff):.4f} a run")
    if vs.HasField("avg_latency_diff"):
        costs.append(f"{vs.avg_latency_diff:+,.0f} ms")
    return sentence + (f"; it costs {' and '.join(costs)} on average." if costs else ".")


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

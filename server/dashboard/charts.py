"""Charts drawn on the server as inline SVG: no JavaScript, nothing fetched,
and the page's stylesheet colours them (classes, never inline styles, so the
Content-Security-Policy can forbid those)."""

import math
from datetime import datetime, timedelta

from markupsafe import Markup, escape

# Narrow, so that the text stays legible where a card is a phone's width.
WIDTH = 440
LABEL_WIDTH = 36
TEXT_WIDTH = 140
ROW_HEIGHT = 30
TOP = 8
AXIS_HEIGHT = 22
PLOT_WIDTH = WIDTH - LABEL_WIDTH - TEXT_WIDTH
MAX_LABEL_CHARS = 12


# Axis ends whose quarters are round numbers too.
_NICE_STEPS = (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)


def nice_maximum(value: float) -> float:
    """The smallest round number (one of _NICE_STEPS times a power of ten)
    that is >= value; 1 for nothing to show."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in _NICE_STEPS:
        if step * power >= value * (1 - 1e-12):
            return step * power
    return 10 * power


def label_width(labels: list[str]) -> int:
    """Room for the longest row label (a version label such as "1.0.0-rc1"),
    at least LABEL_WIDTH; a longer one than MAX_LABEL_CHARS is cut."""
    longest = max((len(label) for label in labels), default=0)
    return max(LABEL_WIDTH, round(7.5 * min(longest, MAX_LABEL_CHARS)) + 6)


def _cut(label: str) -> str:
    return label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 1] + "…"


def _svg(title: str, rows: int, body: list[str], maximum: float, tick, left: int) -> Markup:
    height = TOP + rows * ROW_HEIGHT + AXIS_HEIGHT
    axis = []
    for i in range(5):
        x = left + (WIDTH - left - TEXT_WIDTH) * i / 4
        axis.append(f'<line class="grid" x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{height - AXIS_HEIGHT}"/>')
        axis.append(
            f'<text class="axis" x="{x:.1f}" y="{height - 6}" text-anchor="middle">'
            f"{escape(tick(maximum * i / 4))}</text>"
        )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        + "".join(axis) + "".join(body) + "</svg>"
    )


def _x(value: float, maximum: float, left: int) -> float:
    return left + (WIDTH - left - TEXT_WIDTH) * min(value / maximum, 1.0)


def bar_chart(title: str, rows: list[tuple[str, float | None, str]], maximum: float, tick) -> Markup:
    """One horizontal bar per row: (label, value or None, the value as shown);
    the axis runs from 0 to `maximum`, its ticks written by `tick(value)`."""
    left = label_width([label for label, _, _ in rows])
    body = []
    for i, (label, value, shown) in enumerate(rows):
        y = TOP + i * ROW_HEIGHT
        body.append(f'<text class="label" x="0" y="{y + 19}">{escape(_cut(label))}</text>')
        if value is not None:
            width = _x(value, maximum, left) - left
            body.append(
                f'<rect class="bar" x="{left}" y="{y + 6}" width="{width:.1f}" '
                f'height="{ROW_HEIGHT - 12}"/>'
            )
        body.append(
            f'<text class="value" x="{WIDTH - TEXT_WIDTH + 8}" y="{y + 19}">{escape(shown)}</text>'
        )
    return _svg(title, len(rows), body, maximum, tick, left)


# The points written beside a distribution's row (all of them are drawn):
# what fits in TEXT_WIDTH.
LISTED_MARKS = ("avg", "p95")


def distribution_chart(
    title: str, rows: list[tuple[str, list[tuple[str, float]]]], unit: str, tick
) -> Markup:
    """Per row, a version's known points of a distribution (("avg", 1978.0),
    ("p95", 3609.0), ...): a band from 0 to the largest, a tick at each
    point, the mean as a dot. The axis is shared, from 0 to a round number."""
    largest = max((v for _, marks in rows for _, v in marks), default=0.0)
    maximum = nice_maximum(largest)
    left = label_width([label for label, _ in rows])
    body = []
    for i, (label, marks) in enumerate(rows):
        y = TOP + i * ROW_HEIGHT
        middle = y + ROW_HEIGHT / 2
        body.append(f'<text class="label" x="0" y="{y + 19}">{escape(_cut(label))}</text>')
        if marks:
            top = max(v for _, v in marks)
            body.append(
                f'<rect class="band" x="{left}" y="{y + 9}" '
                f'width="{_x(top, maximum, left) - left:.1f}" height="{ROW_HEIGHT - 18}"/>'
            )
            for name, value in marks:
                x = _x(value, maximum, left)
                if name == "avg":
                    body.append(f'<circle class="mean" cx="{x:.1f}" cy="{middle:.1f}" r="5"/>')
                else:
                    body.append(
                        f'<line class="mark" x1="{x:.1f}" y1="{y + 5}" x2="{x:.1f}" '
                        f'y2="{y + ROW_HEIGHT - 5}"/>'
                    )
        listed = [(name, value) for name, value in marks if name in LISTED_MARKS]
        shown = "  ".join(f"{name} {tick(value)}" for name, value in listed) or "no latency yet"
        body.append(
            f'<text class="value" x="{WIDTH - TEXT_WIDTH + 8}" y="{y + 19}">{escape(shown)}</text>'
        )
    return _svg(f"{title} ({unit})", len(rows), body, maximum, tick, left)


# Line charts over time: one polyline per series, coloured by its place in
# the list (the stylesheet's .series-0 ... .series-7, then again).
LINE_HEIGHT = 210
LINE_LEFT = 52
LINE_RIGHT = 12
LINE_TOP = 10
LINE_BOTTOM = 26
LEGEND_ROW = 20
SERIES_CLASSES = 8


def line_chart(
    title: str,
    series: list[tuple[str, list[tuple[datetime, float]]]],
    start: datetime,
    end: datetime,
    period: timedelta,
    maximum: float,
    tick,
) -> Markup:
    """Per series (label, [(bucket start, value)] in time order), a line
    over [start, end) on a shared axis from 0 to `maximum` (ticks written by
    `tick`); a line breaks where buckets are missing (no data then), and a
    lone point is a dot. Each point sits at the middle of its bucket."""
    plot_w = WIDTH - LINE_LEFT - LINE_RIGHT
    plot_h = LINE_HEIGHT - LINE_TOP - LINE_BOTTOM
    span = max((end - start).total_seconds(), 1.0)
    legend_rows = math.ceil(len(series) / 4)
    height = LINE_HEIGHT + legend_rows * LEGEND_ROW

    def x(t: datetime) -> float:
        middle = (t - start).total_seconds() + period.total_seconds() / 2
        return LINE_LEFT + plot_w * min(max(middle / span, 0.0), 1.0)

    def y(value: float) -> float:
        return LINE_TOP + plot_h * (1 - min(max(value / maximum, 0.0), 1.0))

    body = []
    for i in range(5):
        gy = LINE_TOP + plot_h * i / 4
        body.append(
            f'<line class="grid" x1="{LINE_LEFT}" y1="{gy:.1f}" x2="{WIDTH - LINE_RIGHT}" y2="{gy:.1f}"/>'
        )
        body.append(
            f'<text class="axis" x="{LINE_LEFT - 6}" y="{gy + 4:.1f}" text-anchor="end">'
            f"{escape(tick(maximum * (4 - i) / 4))}</text>"
        )
    for when, anchor in ((start, "start"), (end, "end")):
        shown = f"{when:%m-%d %H:%M}" if period < timedelta(days=1) else f"{when:%Y-%m-%d}"
        tx = LINE_LEFT if anchor == "start" else WIDTH - LINE_RIGHT
        body.append(
            f'<text class="axis" x="{tx}" y="{LINE_HEIGHT - 8}" text-anchor="{anchor}">{escape(shown)}</text>'
        )
    for n, (label, points) in enumerate(series):
        colour = f"series-{n % SERIES_CLASSES}"
        for run in _runs(points, period):
            if len(run) == 1:
                t, v = run[0]
                body.append(f'<circle class="dot {colour}" cx="{x(t):.1f}" cy="{y(v):.1f}" r="3"/>')
            else:
                coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in run)
                body.append(f'<polyline class="line {colour}" points="{coords}"/>')
        lx = LINE_LEFT + (n % 4) * (plot_w / 4)
        ly = LINE_HEIGHT + (n // 4) * LEGEND_ROW + 4
        body.append(f'<rect class="key {colour}" x="{lx:.1f}" y="{ly}" width="12" height="12" rx="2"/>')
        body.append(f'<text class="value" x="{lx + 17:.1f}" y="{ly + 11}">{escape(_cut(label))}</text>')
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>' + "".join(body) + "</svg>"
    )


def _runs(points: list[tuple[datetime, float]], period: timedelta) -> list[list[tuple[datetime, float]]]:
    """Points split where the next is more than one period after the last."""
    runs: list[list[tuple[datetime, float]]] = []
    for t, v in points:
        if runs and t - runs[-1][-1][0] <= period:
            runs[-1].append((t, v))
        else:
            runs.append([(t, v)])
    return runs

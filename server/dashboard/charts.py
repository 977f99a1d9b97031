"""Charts drawn on the server as inline SVG: no JavaScript, nothing fetched,
and the page's stylesheet colours them (classes, never inline styles, so the
Content-Security-Policy can forbid those)."""

import math

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
        shown = "  ".join(f"{name} {tick(value)}" for name, value in marks) or "no latency yet"
        body.append(
            f'<text class="value" x="{WIDTH - TEXT_WIDTH + 8}" y="{y + 19}">{escape(shown)}</text>'
        )
    return _svg(f"{title} ({unit})", len(rows), body, maximum, tick, left)

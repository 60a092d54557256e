"""Charts drawn on the server as inline SVG (no script, no inline style: app.css's .chart classes).

Built from numbers only, never from user text, so the markup is safe to insert as it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup

MAX_POINTS = 300
WIDTH, HEIGHT = 320, 140
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 10, 22  # room for the value labels left, the step labels below


def downsample(values: Sequence[float], limit: int = MAX_POINTS) -> list[tuple[float, float]]:
    """(position 0..1, value) points, at most ``limit``: consecutive values averaged in equal
    buckets, so a long noisy curve keeps its shape; a short one is kept whole."""
    count = len(values)
    if count == 0:
        return []
    if count == 1:
        return [(0.0, values[0]), (1.0, values[0])]  # one value: a flat line across
    if count <= limit:
        return [(i / (count - 1), v) for i, v in enumerate(values)]
    points = []
    for bucket in range(limit):
        start, end = bucket * count // limit, (bucket + 1) * count // limit
        chunk = values[start:end]
        middle = (start + end - 1) / 2
        points.append((middle / (count - 1), math.fsum(chunk) / len(chunk)))
    # The ends stay where the curve starts and ends.
    points[0] = (0.0, points[0][1])
    points[-1] = (1.0, points[-1][1])
    return points


def _number(value: float) -> str:
    return f"{value:.4g}"


def loss_chart(losses: Sequence[float], steps: int | None = None) -> Markup | None:
    """An SVG line chart of a training's losses (oldest first): the curve, its axes and the lowest
    and highest loss. None when there is nothing to draw (no finite loss)."""
    values = [float(v) for v in losses if math.isfinite(v)]
    if not values:
        return None
    low, high = min(values), max(values)
    span = high - low or abs(high) or 1.0  # a flat curve sits in the middle
    bottom = low - (span / 2 if high == low else 0)
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def y_of(value: float) -> float:
        return TOP + inner_h - (value - bottom) / span * inner_h

    points = downsample(values)
    line = " ".join(f"{LEFT + position * inner_w:.1f},{y_of(value):.1f}" for position, value in points)
    base_y, end_x = TOP + inner_h, LEFT + inner_w
    length = f"{steps} steps" if steps else f"{len(values)} value{'s' if len(values) > 1 else ''}"
    description = (
        f"Training loss over {length}: from {_number(values[0])} to {_number(values[-1])}, "
        f"lowest {_number(low)}, highest {_number(high)}."
    )
    labels = [(high, "max")] if high == low else [(high, "max"), (low, "min")]
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{description}" data-testid="loss-chart" data-points="{len(points)}">',
        f"<title>{description}</title>",
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base_y}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{base_y}" x2="{end_x}" y2="{base_y}"/>',
        f'<polyline class="line" points="{line}"/>',
        *(
            f'<text class="{kind}" x="{LEFT - 4}" y="{y_of(value) + 4:.1f}" text-anchor="end">'
            f"{_number(value)}</text>"
            for value, kind in labels
        ),
        f'<text x="{LEFT}" y="{HEIGHT - 6}">start</text>',
        f'<text x="{end_x}" y="{HEIGHT - 6}" text-anchor="end">{length}</text>',
        "</svg>",
    ]
    return Markup("".join(parts))  # noqa: S704 (numbers and fixed words only)

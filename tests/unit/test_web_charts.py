"""The loss chart (web/charts.py): an SVG drawn from numbers, at most 300 points, none when empty."""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET

from web.charts import HEIGHT, LEFT, MAX_POINTS, TOP, WIDTH, downsample, loss_chart

SVG = "{http://www.w3.org/2000/svg}"


def points(svg: str) -> list[tuple[float, float]]:
    found = re.search(r'<polyline class="line" points="([^"]+)"', svg)
    assert found is not None
    return [(float(x), float(y)) for x, y in (p.split(",") for p in found.group(1).split())]


def test_a_short_curve_keeps_every_loss_across_the_plot() -> None:
    chart = loss_chart([0.9, 0.5, 0.7, 0.1], steps=40)
    assert chart is not None
    drawn = points(chart)
    assert len(drawn) == 4
    xs = [x for x, _ in drawn]
    assert xs == sorted(xs) and xs[0] == LEFT and xs[-1] == WIDTH - 8
    ys = [y for _, y in drawn]
    assert ys[0] == TOP  # the highest loss at the top
    assert ys[3] == max(ys) and ys[1] > ys[2] > ys[0]  # lower loss, lower on the plot (larger y)
    # Well-formed SVG, labelled for assistive technology, only classes for looks.
    tree = ET.fromstring(str(chart).replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1))
    assert tree.get("role") == "img" and tree.get("class") == "chart"
    label = tree.get("aria-label")
    assert label == "Training loss over 40 steps: from 0.9 to 0.1, lowest 0.1, highest 0.9."
    assert tree.find(f"{SVG}title") is not None and tree.find(f"{SVG}title").text == label  # type: ignore[union-attr]
    assert [line.get("class") for line in tree.iter(f"{SVG}line")] == ["axis", "axis"]
    assert sorted(t.text or "" for t in tree.iter(f"{SVG}text")) == ["0.1", "0.9", "40 steps", "start"]
    assert "style" not in chart


def test_a_long_curve_is_averaged_down_to_300_points_keeping_its_ends() -> None:
    losses = [1.0 - i / 10_000 for i in range(10_000)]
    drawn = downsample(losses)
    assert len(drawn) == MAX_POINTS
    assert drawn[0][0] == 0.0 and drawn[-1][0] == 1.0
    assert all(a[0] < b[0] for a, b in itertools.pairwise(drawn))
    # Each point is the mean of its bucket of ~33 losses.
    assert math.isclose(drawn[0][1], sum(losses[:33]) / 33)
    chart = loss_chart(losses)
    assert chart is not None and len(points(chart)) == MAX_POINTS and 'data-points="300"' in chart
    # The labels are the true extremes, not the averaged ones.
    assert "lowest 0.0001, highest 1." in chart
    assert len(downsample(losses[:MAX_POINTS])) == MAX_POINTS
    assert downsample(losses[:MAX_POINTS]) == [(i / 299, v) for i, v in enumerate(losses[:MAX_POINTS])]


def test_nothing_to_draw_gives_no_chart_and_one_loss_a_flat_line() -> None:
    assert loss_chart([]) is None
    assert loss_chart([math.nan, math.inf]) is None
    assert downsample([]) == []
    flat = loss_chart([0.25])
    assert flat is not None
    (left, y1), (right, y2) = points(flat)
    assert (left, right) == (LEFT, WIDTH - 8) and y1 == y2 and TOP < y1 < HEIGHT
    assert "over 1 value:" in flat and flat.count("<text") == 3  # one value label, start, length
    with_gap = loss_chart([0.5, math.nan, 0.25])
    assert with_gap is not None and len(points(with_gap)) == 2

"""The SVG charts: every value drawn is the value given, text is escaped, and bars scale to the largest."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from elt_platform.ops_view import charts

SVG = "{http://www.w3.org/2000/svg}"


def _bars(svg: str) -> list[tuple[str, str, float, float]]:
    root = ET.fromstring(svg)
    return [
        (r.get("data-series"), r.get("data-label"), float(r.get("data-value")), float(r.get("width")))
        for r in root.iter(f"{SVG}rect")
        if r.get("class") == "bar"
    ]


def test_stacked_bars_draw_each_part_to_scale():
    svg = charts.stacked_bars(
        [("A <b>", {"completed": 30, "cancelled": 10}), ("B", {"completed": 20})],
        series=("completed", "cancelled"),
        title="t",
    )
    bars = _bars(svg)  # parses: the label's markup was escaped
    assert [(s, label, v) for s, label, v, _ in bars] == [
        ("completed", "A <b>", 30),
        ("cancelled", "A <b>", 10),
        ("completed", "B", 20),
    ]
    widths = {(s, label): w for s, label, _, w in bars}
    assert widths[("completed", "A <b>")] == 3 * widths[("cancelled", "A <b>")]


def test_bars_with_line_keep_both_measures():
    svg = charts.bars_with_line(
        [("03-03", 3, 15.75), ("03-04", 1, 9.1)], bar="people", line="hours", title="t"
    )
    root = ET.fromstring(svg)
    points = [(c.get("data-label"), float(c.get("data-value"))) for c in root.iter(f"{SVG}circle")]
    assert [(label, v) for _, label, v, _ in _bars(svg)] == [("03-03", 3), ("03-04", 1)]
    assert points == [("03-03", 15.75), ("03-04", 9.1)]


def test_no_rows_say_so():
    root = ET.fromstring(charts.horizontal_bars([], measure="leads", title="Funnel"))
    assert "".join(root.itertext()) == "Funnel: no data in this range"

"""Server-rendered SVG charts: plain series in, one ``<svg>`` string out (no script, no CDN).

Each bar carries its value in ``data-value`` and a ``<title>`` tooltip, so the numbers stay
readable (and testable) without hovering. All text is escaped here; callers insert the result as-is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

#: Colours of the page (Airflow UI-like); series without an entry use ``OTHER``.
COLOURS = {
    "people": "#4c78a8",
    "hours": "#f58518",
    "leads": "#4c78a8",
    "completed": "#54a24b",
    "arrived": "#88d27a",
    "scheduled": "#4c78a8",
    "cancelled": "#e45756",
    "sent": "#54a24b",
    "failed": "#f58518",
    "dead": "#e45756",
    "review": "#b279a2",
    "skipped": "#bab0ac",
}
OTHER = "#9d9d9d"
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _axis(value: float) -> str:
    """An axis label: whole numbers from 100 up (it must fit the margin)."""
    return f"{value:,.0f}" if value >= 100 else _number(value)


def _scale_max(values: Sequence[float]) -> float:
    top = max([v for v in values if v > 0], default=1.0)
    return float(top)


def empty(message: str, width: int = 720, height: int = 60) -> str:
    """A placeholder saying why there is no chart."""
    return (
        f'<svg class="chart empty" role="img" aria-label="{escape(message)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" {FONT} fill="#666">'
        f"{escape(message)}</text></svg>"
    )


def _legend(series: Sequence[str], x: float, y: float) -> str:
    parts = []
    for n, name in enumerate(series):
        left = x + n * 95
        parts.append(
            f'<rect x="{left}" y="{y - 9}" width="10" height="10" fill="{COLOURS.get(name, OTHER)}"/>'
            f'<text x="{left + 14}" y="{y}" {FONT}>{escape(name)}</text>'
        )
    return "".join(parts)


def bars_with_line(
    points: Sequence[tuple[str, float, float]],
    *,
    bar: str,
    line: str,
    title: str,
    width: int = 720,
    height: int = 240,
) -> str:
    """Columns for one measure and a line (own scale, right axis) for another, per category.

    Args:
        points: ``(label, bar value, line value)`` in display order (e.g. days).
        bar / line: the two measures' names (legend, tooltips, colours).
        title: the chart's accessible name.
    """
    if not points:
        return empty(f"{title}: no data in this range", width)
    left, right, top, bottom = 52, 52, 24, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    bar_max = _scale_max([p[1] for p in points])
    line_max = _scale_max([p[2] for p in points])
    step = plot_w / len(points)
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        _legend([bar, line], left, 14),
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" {FONT}>{_axis(bar_max)}</text>',
        f'<text x="{left + plot_w + 4}" y="{top + 4}" {FONT}>{_axis(line_max)}</text>',
    ]
    # A few days must not turn into slabs: columns at most 48 px wide, centred on their day.
    bar_w = min(step * 0.7, 48.0)
    path = []
    label_every = max(1, len(points) // 10)
    for n, (label, bar_value, line_value) in enumerate(points):
        x = left + n * step
        h = plot_h * bar_value / bar_max
        parts.append(
            f'<rect class="bar" data-series="{escape(bar)}" data-label="{escape(label)}" '
            f'data-value="{bar_value:g}" x="{x + (step - bar_w) / 2:.1f}" y="{top + plot_h - h:.1f}" '
            f'width="{bar_w:.1f}" height="{h:.1f}" fill="{COLOURS.get(bar, OTHER)}">'
            f"<title>{escape(label)}: {_number(bar_value)} {escape(bar)}</title></rect>"
        )
        cy = top + plot_h - plot_h * line_value / line_max
        path.append(f"{x + step / 2:.1f},{cy:.1f}")
        parts.append(
            f'<circle class="point" data-series="{escape(line)}" data-label="{escape(label)}" '
            f'data-value="{line_value:g}" cx="{x + step / 2:.1f}" cy="{cy:.1f}" r="3" '
            f'fill="{COLOURS.get(line, OTHER)}"><title>{escape(label)}: {_number(line_value)} '
            f"{escape(line)}</title></circle>"
        )
        if n % label_every == 0:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle" {FONT}>'
                f"{escape(label)}</text>"
            )
    stroke = COLOURS.get(line, OTHER)
    # Under the points (inserted after the axes), so their tooltips stay on top.
    parts.insert(3, f'<polyline points="{" ".join(path)}" fill="none" stroke="{stroke}" stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)


def horizontal_bars(
    rows: Sequence[tuple[str, str, float]], *, measure: str, title: str, width: int = 720
) -> str:
    """One bar per ``(group, label, value)``, groups (e.g. pipelines) under their own heading.

    Args:
        rows: in display order; consecutive rows of one group are drawn together.
        measure: the values' name (colour, tooltips).
        title: the chart's accessible name.
    """
    if not rows:
        return empty(f"{title}: no data in this range", width)
    label_w, row_h, top = 200, 20, 8
    groups = list(dict.fromkeys(group for group, _, _ in rows))
    height = top + len(rows) * row_h + len(groups) * 22 + 8
    top_value = _scale_max([v for _, _, v in rows])
    plot_w = width - label_w - 70
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    y = top
    for group in groups:
        y += 16
        parts.append(f'<text x="4" y="{y}" {FONT} font-weight="bold">{escape(group)}</text>')
        y += 6
        for _, label, value in (r for r in rows if r[0] == group):
            w = plot_w * value / top_value
            parts.append(
                f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" {FONT}>{escape(label)}</text>'
                f'<rect class="bar" data-series="{escape(group)}" data-label="{escape(label)}" '
                f'data-value="{value:g}" x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
                f'fill="{COLOURS.get(measure, OTHER)}"><title>{escape(group)} · {escape(label)}: '
                f"{_number(value)} {escape(measure)}</title></rect>"
                f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" {FONT}>{_number(value)}</text>'
            )
            y += row_h
    parts.append("</svg>")
    return "".join(parts)


def stacked_bars(
    rows: Sequence[tuple[str, Mapping[str, float]]],
    *,
    series: Sequence[str],
    title: str,
    width: int = 720,
) -> str:
    """One horizontal bar per label, split into ``series`` (e.g. statuses, outcomes).

    Args:
        rows: ``(label, {series: value})`` in display order; series missing from a row count 0.
        series: the parts in stacking and legend order.
        title: the chart's accessible name.
    """
    if not rows:
        return empty(f"{title}: no data in this range", width)
    label_w, row_h, top = 200, 22, 26
    height = top + len(rows) * row_h + 8
    top_value = _scale_max([sum(values.get(s, 0) for s in series) for _, values in rows])
    plot_w = width - label_w - 70
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        _legend(series, label_w, 14),
    ]
    for n, (label, values) in enumerate(rows):
        y = top + n * row_h
        x = float(label_w)
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" {FONT}>{escape(label)}</text>')
        for name in series:
            value = values.get(name, 0)
            if not value:
                continue
            w = plot_w * value / top_value
            parts.append(
                f'<rect class="bar" data-series="{escape(name)}" data-label="{escape(label)}" '
                f'data-value="{value:g}" x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" '
                f'fill="{COLOURS.get(name, OTHER)}"><title>{escape(label)} · {escape(name)}: '
                f"{_number(value)}</title></rect>"
            )
            x += w
        total = sum(values.get(s, 0) for s in series)
        parts.append(f'<text x="{x + 4:.1f}" y="{y + 15}" {FONT}>{_number(total)}</text>')
    parts.append("</svg>")
    return "".join(parts)

"""Task bodies of transform DAGs, taking plain values (intervals as ISO strings)."""

from __future__ import annotations

from datetime import date, datetime

from elt_platform.intervals import intervals_from_events, resolve_interval


def interval_for_transform(context) -> dict:
    """What an asset-triggered or manual transform run rebuilds.

    Returns ``{"intervals": [[start, end], ...], "start": first, "end": last}`` (ISO dates, half-open):
    the triggering events' intervals merged where they touch, else the run's params, else its data
    interval, else yesterday.
    """
    events = context.get("triggering_asset_events") or {}
    extras = [event.extra for asset_events in events.values() for event in asset_events]
    spans = intervals_from_events(extras)
    if not spans:
        spans = [
            resolve_interval(
                context.get("params"),
                context.get("data_interval_start"),
                context.get("data_interval_end"),
                today=datetime.now().date(),
            )
        ]
    return {
        "intervals": [[start.isoformat(), end.isoformat()] for start, end in spans],
        "start": spans[0][0].isoformat(),
        "end": spans[-1][1].isoformat(),
    }


def _spans(interval: dict) -> list[tuple[date, date]]:
    pairs = interval.get("intervals") or [[interval["start"], interval["end"]]]
    return [(date.fromisoformat(start), date.fromisoformat(end)) for start, end in pairs]


def build(domain: str, layer: str, interval: dict) -> dict:
    """dbt-build one layer for each interval; returns node counts by status, summed."""
    from elt_platform.transform.layers import build_layer

    totals: dict[str, int] = {}
    for start, end in _spans(interval):
        for status, count in build_layer(domain, layer, start, end).statuses.items():
            totals[status] = totals.get(status, 0) + count
    return totals


def gate(suite: str, interval: dict, run_id: str) -> list[str]:
    """Run a quality gate over each interval; returns where the results were stored."""
    from elt_platform.quality.gate import run_gate

    return [run_gate(suite, start, end, run_id=run_id).result_uri for start, end in _spans(interval)]

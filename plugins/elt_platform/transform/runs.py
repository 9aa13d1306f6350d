"""Task bodies of transform DAGs, taking plain values (the interval as ISO strings)."""

from __future__ import annotations

from datetime import date, datetime

from elt_platform.intervals import interval_from_events, resolve_interval


def interval_for_transform(context) -> dict:
    """Interval of an asset-triggered or manual transform run, as ``{"start", "end"}`` ISO dates.

    Triggering events' extras win; then params; then the run's data interval; then yesterday.
    """
    events = context.get("triggering_asset_events") or {}
    extras = [event.extra for asset_events in events.values() for event in asset_events]
    found = interval_from_events(extras)
    if found is None:
        found = resolve_interval(
            context.get("params"),
            context.get("data_interval_start"),
            context.get("data_interval_end"),
            today=datetime.now().date(),
        )
    start, end = found
    return {"start": start.isoformat(), "end": end.isoformat()}


def build(domain: str, layer: str, interval: dict) -> dict:
    """dbt-build one layer for the interval; returns node counts by status."""
    from elt_platform.transform.layers import build_layer

    summary = build_layer(
        domain, layer, date.fromisoformat(interval["start"]), date.fromisoformat(interval["end"])
    )
    return summary.statuses


def gate(suite: str, interval: dict, run_id: str) -> str:
    """Run a quality gate over the interval; returns where the result was stored."""
    from elt_platform.quality.gate import run_gate

    start, end = date.fromisoformat(interval["start"]), date.fromisoformat(interval["end"])
    return run_gate(suite, start, end, run_id=run_id).result_uri

"""Which days a run covers: explicit params or the run's data interval; merging owed intervals.

Pure functions over plain values so that scheduled runs, backfills, manual triggers and
asset-triggered runs all resolve the same way and can be tested without Airflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta


class IntervalError(ValueError):
    """The run's interval cannot be determined or is inverted."""


def _as_date(value: object) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def resolve_interval(
    params: Mapping[str, object] | None,
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    *,
    today: date,
) -> tuple[date, date]:
    """The half-open day interval ``[start, end)`` a run must load.

    Precedence: ``params.start_date``/``params.end_date`` (manual runs, ``make run``), then the run's
    data interval (scheduled runs and backfills), then yesterday. A point-in-time interval (a cron
    *trigger* timetable, where start == end == the run's date) means the day before that date.

    Raises:
        IntervalError: the interval ends before it starts.
    """
    params = params or {}
    asked_start, asked_end = _as_date(params.get("start_date")), _as_date(params.get("end_date"))
    run_start, run_end = _as_date(data_interval_start), _as_date(data_interval_end)
    one_day = timedelta(days=1)
    if asked_start is not None:
        start, end = asked_start, asked_end if asked_end is not None else asked_start + one_day
    elif asked_end is not None:
        start, end = asked_end - one_day, asked_end
    elif run_start is None or run_end is None or run_end < run_start:
        start, end = today - one_day, today
    elif run_end == run_start:
        start, end = run_end - one_day, run_end
    else:
        start, end = run_start, run_end
    if end <= start:
        raise IntervalError(f"interval [{start}, {end}) is empty or inverted")
    return start, end


def merge_intervals(spans: Iterable[tuple[date, date]]) -> list[tuple[date, date]]:
    """Half-open intervals merged where they touch or overlap, in order.

    A transform owed a year-old backfill day and yesterday's load must rebuild two days, not the 365
    between them (what their hull would cover).
    """
    merged: list[tuple[date, date]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged

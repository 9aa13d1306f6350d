"""Which days a run covers: params, then the data interval, then yesterday; asset-event unions."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from elt_platform.intervals import (
    IntervalError,
    merge_intervals,
    resolve_interval,
)

TODAY = date(2025, 3, 10)
YESTERDAY = (date(2025, 3, 9), TODAY)
SCHEDULED = (datetime(2025, 2, 1, 2, 0, tzinfo=UTC), datetime(2025, 2, 2, 2, 0, tzinfo=UTC))
NO_INTERVAL = (None, None)


@pytest.mark.parametrize(
    ("params", "data_interval", "expected"),
    [
        pytest.param(
            {"start_date": "2025-01-01", "end_date": "2025-01-31"},
            SCHEDULED,
            (date(2025, 1, 1), date(2025, 1, 31)),
            id="params-beat-data-interval",
        ),
        pytest.param(
            {"start_date": "2025-01-05"}, SCHEDULED, (date(2025, 1, 5), date(2025, 1, 6)), id="start-only"
        ),
        pytest.param(
            {"end_date": "2025-01-05"}, SCHEDULED, (date(2025, 1, 4), date(2025, 1, 5)), id="end-only"
        ),
        pytest.param(
            {"start_date": "2025-01-01T00:00:00+00:00", "end_date": date(2025, 1, 3)},
            NO_INTERVAL,
            (date(2025, 1, 1), date(2025, 1, 3)),
            id="timestamp-string-and-date-params",
        ),
        pytest.param(
            {"start_date": None, "end_date": ""},
            SCHEDULED,
            (date(2025, 2, 1), date(2025, 2, 2)),
            id="empty-params-fall-back-to-data-interval",
        ),
        pytest.param(None, SCHEDULED, (date(2025, 2, 1), date(2025, 2, 2)), id="data-interval"),
        pytest.param(
            {},
            (datetime(2024, 1, 1), datetime(2025, 1, 1)),
            (date(2024, 1, 1), date(2025, 1, 1)),
            id="backfill-year",
        ),
        pytest.param(None, NO_INTERVAL, YESTERDAY, id="nothing-means-yesterday"),
        pytest.param(
            {},
            (datetime(2025, 2, 15, 2, 0, tzinfo=UTC), datetime(2025, 2, 15, 2, 0, tzinfo=UTC)),
            (date(2025, 2, 14), date(2025, 2, 15)),
            id="point-in-time-interval-means-the-day-before-it",
        ),
        pytest.param(
            {},
            (datetime(2025, 2, 15, 2, 0, tzinfo=UTC), datetime(2025, 2, 15, 9, 0, tzinfo=UTC)),
            (date(2025, 2, 14), date(2025, 2, 15)),
            id="interval-within-one-day-means-the-day-before-it",
        ),
        pytest.param(
            {},
            (datetime(2025, 2, 16, tzinfo=UTC), datetime(2025, 2, 15, tzinfo=UTC)),
            YESTERDAY,
            id="inverted-data-interval-means-yesterday",
        ),
    ],
)
def test_resolve_interval_precedence(params, data_interval, expected):
    assert resolve_interval(params, *data_interval, today=TODAY) == expected


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"start_date": "2025-02-01", "end_date": "2025-01-01"}, id="inverted"),
        pytest.param({"start_date": "2025-02-01", "end_date": "2025-02-01"}, id="empty"),
    ],
)
def test_inverted_or_empty_params_raise(params):
    with pytest.raises(IntervalError, match=r"\[2025-02-01, 2025-0[12]-01\)"):
        resolve_interval(params, *SCHEDULED, today=TODAY)


D = date.fromisoformat


@pytest.mark.parametrize(
    ("spans", "expected"),
    [
        ([], []),
        (
            [(D("2025-03-04"), D("2025-03-05")), (D("2025-03-03"), D("2025-03-04"))],
            [(D("2025-03-03"), D("2025-03-05"))],
        ),
        (
            [(D("2026-11-16"), D("2026-11-23")), (D("2025-03-03"), D("2025-03-04"))],
            [(D("2025-03-03"), D("2025-03-04")), (D("2026-11-16"), D("2026-11-23"))],
        ),
        (
            [(D("2025-01-01"), D("2025-02-01")), (D("2025-01-10"), D("2025-01-12"))],
            [(D("2025-01-01"), D("2025-02-01"))],
        ),
        (
            [
                (D("2025-03-03"), D("2025-03-04")),
                (D("2025-03-03"), D("2025-03-04")),
                (D("2025-03-06"), D("2025-03-07")),
            ],
            [(D("2025-03-03"), D("2025-03-04")), (D("2025-03-06"), D("2025-03-07"))],
        ),
    ],
    ids=[
        "none",
        "adjacent-days-merge",
        "distant-intervals-stay-apart",
        "contained",
        "rerun-duplicates-collapse",
    ],
)
def test_merge_intervals_merges_only_touching_spans(spans, expected):
    assert merge_intervals(spans) == expected

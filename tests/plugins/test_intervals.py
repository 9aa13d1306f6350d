"""Which days a run covers: params, then the data interval, then yesterday; asset-event unions."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from elt_platform.intervals import (
    IntervalError,
    interval_from_events,
    intervals_from_events,
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


@pytest.mark.parametrize(
    ("extras", "expected"),
    [
        pytest.param(
            [{"start": "2025-03-01", "end": "2025-03-02"}, {"start": "2025-02-20", "end": "2025-02-25"}],
            (date(2025, 2, 20), date(2025, 3, 2)),
            id="union-of-two-events",
        ),
        pytest.param(
            [{"start": "2025-03-03", "end": "2025-03-04", "run_id": "r", "events": 10}],
            (date(2025, 3, 3), date(2025, 3, 4)),
            id="one-event-with-extra-keys",
        ),
        pytest.param(
            [{}, None, {"start": "2025-03-01"}, {"start": "2025-03-05", "end": "2025-03-07"}],
            (date(2025, 3, 5), date(2025, 3, 7)),
            id="incomplete-extras-are-ignored",
        ),
        pytest.param([{}, {"end": "2025-03-01"}], None, id="no-usable-extra"),
        pytest.param([], None, id="no-events"),
    ],
)
def test_interval_from_events(extras, expected):
    assert interval_from_events(extras) == expected


@pytest.mark.parametrize(
    ("extras", "expected"),
    [
        ([], []),
        (
            [{"start": "2025-03-03", "end": "2025-03-04"}, {"start": "2025-03-04", "end": "2025-03-05"}],
            [(date(2025, 3, 3), date(2025, 3, 5))],
        ),
        (
            [
                {"start": "2026-11-16", "end": "2026-11-23"},
                {"start": "2025-03-03", "end": "2025-03-04"},
                None,
            ],
            [(date(2025, 3, 3), date(2025, 3, 4)), (date(2026, 11, 16), date(2026, 11, 23))],
        ),
        (
            [{"start": "2025-01-01", "end": "2025-02-01"}, {"start": "2025-01-10", "end": "2025-01-12"}],
            [(date(2025, 1, 1), date(2025, 2, 1))],
        ),
    ],
    ids=["none", "adjacent-days-merge", "distant-intervals-stay-apart", "contained"],
)
def test_intervals_from_events_merges_only_touching_spans(extras, expected):
    assert intervals_from_events(extras) == expected

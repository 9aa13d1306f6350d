"""Retry-After parsing and the full-jitter backoff."""

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from elt_platform.http.retry import full_jitter, parse_retry_after

NOW = datetime(2025, 1, 30, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("soon", None),
        ("0", 0.0),
        ("7", 7.0),
        (" 120 ", 120.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        (format_datetime(NOW + timedelta(seconds=42), usegmt=True), 42.0),
        ("Thu, 30 Jan 2025 12:01:00 GMT", 60.0),
        ("Thu, 30 Jan 2025 11:00:00 GMT", 0.0),
        ("Thu, 30 Jan 2025 12:01:00", 60.0),  # no zone: read as UTC
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


@pytest.mark.parametrize(
    ("retry_number", "base", "cap", "ceiling"),
    [
        (1, 1.0, 60.0, 1.0),
        (2, 1.0, 60.0, 2.0),
        (6, 1.0, 60.0, 32.0),
        (7, 1.0, 60.0, 60.0),
        (3, 0.5, 1.5, 1.5),
    ],
)
def test_full_jitter_draws_uniformly_below_the_ceiling(
    retry_number: int, base: float, cap: float, ceiling: float
) -> None:
    draws = [full_jitter(retry_number, base=base, cap=cap, rng=random.Random(seed)) for seed in range(200)]

    assert draws == [random.Random(seed).uniform(0.0, ceiling) for seed in range(200)]
    assert 0.0 <= min(draws) and max(draws) <= ceiling
    assert max(draws) > 0.9 * ceiling and min(draws) < 0.1 * ceiling  # spread over the whole range

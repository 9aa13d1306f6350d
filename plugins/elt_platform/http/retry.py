"""Retry policy of the HTTP layer: which failures are transient and how long to wait before the next try.

The waiting itself is done by ``tenacity`` in :mod:`elt_platform.http.client`; this module holds the
pieces it is configured with, as plain functions that tests can check without a server.
"""

import email.utils
import random
from dataclasses import dataclass
from datetime import UTC, datetime

import requests

# One policy for every account; a source overrides a value only when its API asks for another.
DEFAULT_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_MAX_RETRIES = 6
DEFAULT_BACKOFF_BASE_SECONDS = 1.0
DEFAULT_BACKOFF_MAX_SECONDS = 60.0
# A Retry-After beyond this is capped: one header must not park a task slot for hours.
DEFAULT_MAX_RETRY_AFTER_SECONDS = 300.0

# Transport failures worth another attempt. ChunkedEncodingError is how requests reports a body cut
# mid-transfer (fewer bytes than announced): a transport fault, unlike a complete-but-invalid JSON body.
RETRYABLE_EXCEPTIONS: tuple[type[Exception], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Interpret a ``Retry-After`` header.

    Args:
        value: The header value: delay seconds (``"120"``) or an HTTP date
            (``"Wed, 21 Oct 2015 07:28:00 GMT"``); None when absent.
        now: Current time for HTTP dates (defaults to the current UTC time).

    Returns:
        Seconds to wait (never negative), or None when the header is absent or unreadable.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def full_jitter(retry_number: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Backoff before retry number ``retry_number`` (1 = first retry), "full jitter" style.

    Full jitter (AWS architecture blog, "Exponential Backoff And Jitter") draws uniformly below an
    exponentially growing ceiling, which spreads the retries of parallel tasks instead of syncing them.

    Args:
        retry_number: 1 for the first retry, 2 for the second, ...
        base: Ceiling of the first retry, in seconds; doubles per retry.
        cap: Largest ceiling, in seconds.
        rng: Source of randomness (seeded in tests).

    Returns:
        ``uniform(0, min(cap, base * 2 ** (retry_number - 1)))`` seconds.
    """
    ceiling = min(cap, base * 2 ** (retry_number - 1))
    return rng.uniform(0.0, ceiling)


@dataclass(eq=False)  # identity equality: exceptions are tracked in sets by traceback machinery
class RetryableFailure(Exception):
    """One attempt failed in a way worth retrying; tenacity sees this, callers never do.

    Attributes:
        description: ``"HTTP 503"`` or the transport exception's class name (``"ReadTimeout"``).
        status: The response's status, or None when no response came.
        retry_after: Seconds the server asked us to wait, if it did.
        detail: A longer description for the final error (redacted by the client before use).
    """

    description: str
    status: int | None = None
    retry_after: float | None = None
    detail: str = ""

    def __str__(self) -> str:
        return self.description

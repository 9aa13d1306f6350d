"""Request budgets and circuit breakers: the protocols the HTTP client calls, and in-memory versions.

An external account's limits are shared by every task that calls it, so production code passes the
state store's cross-process budget and breaker (keyed by account). The in-memory :class:`LocalBudget` and
:class:`LocalBreaker` cover one process: tests, local runs, and callers without a state store.
"""

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from elt_platform.http.errors import CircuitOpenError


@runtime_checkable
class Budget(Protocol):
    """A request budget: ``acquire()`` blocks until one request may be sent."""

    def acquire(self) -> float:
        """Take one request from the budget, waiting if needed.

        Returns:
            The seconds waited.
        """
        ...


@runtime_checkable
class Breaker(Protocol):
    """A circuit breaker shared by every caller of one account."""

    def check(self) -> None:
        """Raise (e.g. :class:`~elt_platform.http.errors.CircuitOpenError`) when requests must not be sent."""
        ...

    def open(self, reason: str) -> None:
        """Stop every caller sharing this breaker, saying why."""
        ...


class LocalBudget:
    """Thread-safe token bucket: at most ``rate`` acquisitions per second, bursts up to ``burst``.

    A caller that finds the bucket empty reserves the next token (the balance goes negative) and sleeps
    outside the lock, so concurrent callers queue up fairly without holding the lock while waiting.
    """

    def __init__(
        self,
        rate: float | None,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Create a budget.

        Args:
            rate: Requests per second; None or <= 0 disables limiting.
            burst: Bucket capacity (requests allowed back to back after an idle period).
            clock: Monotonic clock, injectable for tests.
            sleep: Sleep function, injectable for tests.
        """
        self.rate = rate if rate and rate > 0 else None
        self.burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(self.burst)
        self._updated = clock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rate={self.rate!r}, burst={self.burst!r})"

    def acquire(self) -> float:
        """Take one token, sleeping until it is available.

        Returns:
            The number of seconds slept.
        """
        if self.rate is None:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1.0
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


class LocalBreaker:
    """An in-process circuit breaker. Once opened it stays open until :meth:`reset`: the reasons it is
    opened for (an account ban) need a human, not a timer.
    """

    def __init__(self, account: str | None = None) -> None:
        """Create a closed breaker.

        Args:
            account: Named in the refusal message.
        """
        self.account = account
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._opened_at: datetime | None = None

    def __repr__(self) -> str:
        state = "open" if self._reason is not None else "closed"
        return f"{type(self).__name__}(account={self.account!r}, {state})"

    @property
    def reason(self) -> str | None:
        """Why the breaker is open, or None while it is closed."""
        return self._reason

    def check(self) -> None:
        """Refuse when open.

        Raises:
            CircuitOpenError: The breaker is open; names the account, when and why it was opened.
        """
        with self._lock:
            reason, opened_at = self._reason, self._opened_at
        if reason is not None and opened_at is not None:
            raise CircuitOpenError(
                f"circuit for {self.account or 'this account'} is open since "
                f"{opened_at:%Y-%m-%d %H:%M:%S} UTC ({reason}); requests are refused until it is reset",
                account=self.account,
                reason=reason,
            )

    def open(self, reason: str) -> None:
        """Open the breaker; the first reason is kept when it is opened again."""
        with self._lock:
            if self._reason is None:
                self._reason, self._opened_at = reason, datetime.now(UTC)

    def reset(self) -> None:
        """Close the breaker again (after a human checked the account)."""
        with self._lock:
            self._reason = self._opened_at = None

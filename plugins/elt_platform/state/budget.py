"""Request budgets: one token bucket per external account, shared by every process through the state store.

A caller *reserves* its requests inside a short transaction (the balance may go negative: those are
requests already promised to callers that are sleeping) and sleeps outside it, so no lock is held while
waiting. Grant ``k`` therefore starts no earlier than ``(k - burst) / rate`` seconds after the bucket was
full, whichever process asked: N processes together never exceed ``rate * t + burst`` requests in any
window of ``t`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update

from elt_platform.state.schema import request_budgets
from elt_platform.state.store import StateStore, utcnow


class RequestBudget:
    """The request rate allowed against one external account.

    Args:
        store: the state store.
        account: the external account the budget belongs to (e.g. ``"amocrm:main"``).
        rate: requests per second; ``None`` or ``<= 0`` means unlimited (nothing is stored).
        burst: requests allowed back to back after an idle period (the bucket's capacity).
        clock: wall-clock seconds shared by all processes (injected by tests).
        sleep: how to wait (injected by tests).

    Raises:
        ValueError: ``burst`` is below 1.
    """

    def __init__(
        self,
        store: StateStore,
        account: str,
        rate: float | None,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self.store = store
        self.account = account
        self.rate = float(rate) if rate and rate > 0 else None
        self.burst = burst
        self._clock = clock
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"RequestBudget({self.account!r}, rate={self.rate}, burst={self.burst})"

    def acquire(self, n: int = 1) -> float:
        """Take ``n`` requests from the budget, sleeping until they are allowed.

        Args:
            n: requests about to be made (a batch endpoint may count as several).

        Returns:
            Seconds slept (0.0 when the budget had room or is unlimited).

        Raises:
            ValueError: ``n`` is below 1.
        """
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        if self.rate is None:
            return 0.0
        ready_at = self._reserve(n)
        delay = ready_at - self._clock()
        if delay <= 0:
            return 0.0
        self._sleep(delay)
        return delay

    def _reserve(self, n: int) -> float:
        """Debit ``n`` tokens in one locked transaction; return the instant the caller may proceed."""
        assert self.rate is not None
        with self.store.transaction() as conn:
            row = self.store.lock_row(
                conn,
                request_budgets,
                {"account": self.account},
                defaults={
                    "rate": self.rate,
                    "burst": self.burst,
                    "tokens": float(self.burst),
                    "refilled_at": self._clock(),
                    "updated_at": utcnow(),
                },
            )
            # Read the clock only once the lock is held: waiting for it may have taken a while.
            now = self._clock()
            # A clock behind the stored instant (another host's skew) refills nothing rather than
            # moving refilled_at back and crediting the same interval twice.
            refilled_at = max(now, row.refilled_at)
            tokens = min(float(self.burst), row.tokens + (refilled_at - row.refilled_at) * self.rate) - n
            conn.execute(
                update(request_budgets)
                .where(request_budgets.c.account == self.account)
                .values(
                    tokens=tokens,
                    refilled_at=refilled_at,
                    rate=self.rate,
                    burst=self.burst,
                    updated_at=utcnow(),
                )
            )
        return refilled_at + max(0.0, -tokens) / self.rate


def list_budgets(store: StateStore, *, clock: Callable[[], float] = time.time) -> list[dict[str, Any]]:
    """Every account's budget with its balance projected to now.

    Args:
        store: the state store.
        clock: wall-clock seconds.

    Returns:
        One dict per account (``account``, ``rate``, ``burst``, ``tokens``, ``updated_at``), by account.
    """
    with store.transaction(write=False) as conn:
        rows = conn.execute(select(request_budgets).order_by(request_budgets.c.account)).all()
    now = clock()
    return [
        {
            "account": row.account,
            "rate": row.rate,
            "burst": row.burst,
            "tokens": min(float(row.burst), row.tokens + max(0.0, now - row.refilled_at) * row.rate),
            "updated_at": row.updated_at,
        }
        for row in rows
    ]

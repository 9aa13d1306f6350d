"""One request budget and one circuit breaker per external account, shared by every process.

The HTTP client takes a ``budget`` and a ``breaker`` (see :mod:`.limits`); these adapters back them by
the transactional state store, keyed by account (``alaqan:<host>``, ``amocrm:<subdomain>``,
``bitrix24:<portal>``), so every task, DAG run, backfill and worker process calling one account draws
from the same bucket — Airflow pools count tasks, not requests — and a ban seen by one of them stops
all of them until an operator runs ``elt breaker reset <account>``.
"""

from __future__ import annotations

from typing import Any

from elt_platform.http.errors import CircuitOpenError


class SharedBudget:
    """:class:`~elt_platform.http.limits.Budget` over the state store's token bucket of an account."""

    def __init__(self, account: str, rate: float | None, burst: int = 1, *, store: Any = None) -> None:
        from elt_platform.state import RequestBudget, open_state_store

        self.account = account
        self.rate = rate
        self._budget = RequestBudget(store or open_state_store(), account, rate, burst)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(account={self.account!r}, rate={self.rate!r})"

    def acquire(self) -> float:
        return self._budget.acquire()


class SharedBreaker:
    """:class:`~elt_platform.http.limits.Breaker` over the state store's breaker of an account."""

    def __init__(self, account: str, *, store: Any = None) -> None:
        from elt_platform.state import CircuitBreaker, open_state_store

        self.account = account
        self._breaker = CircuitBreaker(store or open_state_store(), account)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(account={self.account!r})"

    def check(self) -> None:
        """Raise :class:`~elt_platform.http.errors.CircuitOpenError` while the account's breaker is open."""
        from elt_platform.state import CircuitOpenError as StoreCircuitOpen

        try:
            self._breaker.check()
        except StoreCircuitOpen as exc:
            raise CircuitOpenError(
                str(exc), reason=exc.reason, account=self.account, what="any request", status=None
            ) from None

    def open(self, reason: str) -> None:
        self._breaker.open(reason)


def shared_limits(
    account: str, rate: float | None, burst: int = 1, *, store: Any = None
) -> tuple[SharedBudget, SharedBreaker]:
    """The cross-process budget and breaker of ``account`` (``rate`` requests/s, ``burst``)."""
    return SharedBudget(account, rate, burst, store=store), SharedBreaker(account, store=store)

"""One request budget and one circuit breaker per external account, shared by every process.

The HTTP client takes a ``budget`` and a ``breaker`` (see :mod:`.limits`); these adapters back them by
the transactional state store, keyed by account (``alaqan:<host>``, ``amocrm:<subdomain>``,
``bitrix24:<portal>``), so every task, DAG run, backfill and worker process calling one account draws
from the same bucket — Airflow pools count tasks, not requests — and a ban seen by one of them stops
all of them until an operator runs ``elt breaker reset <account>``.

An account's rate and burst come from its Airflow connection's ``extra`` (``requests_per_second``,
``burst``; else the source's defaults): :func:`connection_limits` reads them, and
:func:`limits_from_connection` turns them into the shared budget and breaker a source's Airflow entry
point hands its client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

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


class ConnectionLimits(NamedTuple):
    """What a connection's ``extra`` says about calling its account.

    Attributes:
        requests_per_second: ``extra.requests_per_second``, else the source's default.
        burst: ``extra.burst``, else the source's default.
        max_retries: ``extra.max_retries``, or None for the client's default.
    """

    requests_per_second: float
    burst: int
    max_retries: int | None


def connection_limits(
    extra: Mapping[str, Any] | None, default_rate: float, default_burst: int
) -> ConnectionLimits:
    """Read ``requests_per_second``, ``burst`` and ``max_retries`` from a connection's ``extra``.

    Args:
        extra: The connection's ``extra_dejson`` (None or empty: the defaults).
        default_rate: The source's requests per second when ``extra`` sets none (or 0).
        default_burst: The source's burst when ``extra`` sets none (or 0).

    Returns:
        The account's limits.
    """
    extra = extra or {}
    retries = extra.get("max_retries")
    return ConnectionLimits(
        float(extra.get("requests_per_second") or default_rate),
        int(extra.get("burst") or default_burst),
        None if retries is None else int(retries),
    )


def limits_from_connection(
    account: str,
    extra: Mapping[str, Any] | None,
    default_rate: float,
    default_burst: int,
    *,
    store: Any = None,
) -> tuple[SharedBudget, SharedBreaker]:
    """The shared budget and breaker of ``account`` at the rate its connection's ``extra`` asks for.

    Args:
        account: ``<source>:<host>``.
        extra: The connection's ``extra_dejson`` (see :func:`connection_limits`).
        default_rate: The source's requests per second.
        default_burst: The source's burst.
        store: The state store (default: ``open_state_store()``).

    Returns:
        ``(budget, breaker)`` for the source's client.
    """
    limits = connection_limits(extra, default_rate, default_burst)
    return shared_limits(account, limits.requests_per_second, limits.burst, store=store)

"""What the other processes of a race do: functions run in the spawned ``process_pool`` workers.

The race functions wait until a shared wall-clock instant (``start_at``) so that the workers hit the
store together. Stores stay open in the worker's ``open_state_store`` cache, as in a real worker: the
next test on the same database reuses the connection instead of paying for a new one.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from elt_platform.state.breaker import CircuitBreaker
from elt_platform.state.budget import RequestBudget
from elt_platform.state.store import open_state_store
from elt_platform.state.tokens import TokenPair, TokenStore

#: How long the provider stub holds a refresh, to give a second worker time to collide with it.
REFRESH_SECONDS = 0.3


class InvalidGrantError(RuntimeError):
    """The provider stub saw a refresh token for the second time."""


def _wait_until(start_at: float) -> None:
    time.sleep(max(0.0, start_at - time.time()))


def warm_up(seconds: float) -> int:
    """Nothing but this module's imports, then a pause (so the pool hands one task to each worker)."""
    time.sleep(seconds)
    return os.getpid()


def first_open(url: str, start_at: float) -> tuple[int, str | None]:
    """Open (and so migrate) the store at ``start_at``; return the pid and the revision found."""
    _wait_until(start_at)
    store = open_state_store(url)
    revision = store.current_revision()
    store.close()
    return os.getpid(), revision


def acquire_many(url: str, account: str, rate: float, burst: int, count: int, start_at: float):
    """Acquire ``count`` requests one by one; return the pid and the instant each was granted."""
    store = open_state_store(url)
    budget = RequestBudget(store, account, rate=rate, burst=burst)
    _wait_until(start_at)
    granted = []
    for _ in range(count):
        budget.acquire()
        granted.append(time.time())
    return os.getpid(), granted


def open_breaker(url: str, account: str, reason: str) -> bool:
    """Open the account's breaker; return whether this call opened it."""
    store = open_state_store(url)
    return CircuitBreaker(store, account).open(reason)


def breaker_state(url: str, account: str) -> str:
    """The account's breaker state as another process sees it."""
    store = open_state_store(url)
    return CircuitBreaker(store, account).status()["state"]


def provider_refresh(provider_dir: Path, pair: TokenPair) -> TokenPair:
    """A token endpoint whose refresh tokens are single-use, as amoCRM's are.

    Each call leaves a ``call-<pid>`` file; a refresh token seen before raises, like the provider's
    ``invalid_grant`` (which in real life also revokes the whole grant).
    """
    try:
        # O_EXCL creation is atomic across processes: exactly one caller can spend a token.
        (provider_dir / f"used-{pair.refresh_token}").touch(exist_ok=False)
    except FileExistsError:
        raise InvalidGrantError("refresh token already used") from None
    (provider_dir / f"call-{os.getpid()}").touch()
    time.sleep(REFRESH_SECONDS)
    return TokenPair(
        access_token=f"access-{os.getpid()}",
        refresh_token=f"refresh-{os.getpid()}",
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )


def refresh_token(url: str, account: str, stale_access_token: str, provider_dir: str, start_at: float):
    """Refresh after seeing ``stale_access_token`` rejected; return the pid and the pair obtained."""
    store = open_state_store(url)
    tokens = TokenStore(store, account)
    _wait_until(start_at)
    pair = tokens.refresh(
        lambda stored: provider_refresh(Path(provider_dir), stored), stale_access_token=stale_access_token
    )
    return os.getpid(), (pair.access_token, pair.refresh_token, pair.expires_at)

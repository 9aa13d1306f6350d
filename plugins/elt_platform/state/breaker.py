"""Circuit breakers per external account: once open, no process calls the account until someone resets it.

A breaker is opened when retrying cannot help (revoked credentials, a refresh token already used, an
account suspended for abuse): hammering the API would only make it worse. It stays open across
processes and restarts because it lives in the state store, and it is closed only by
``elt breaker reset <account>`` (:meth:`CircuitBreaker.reset`) after the cause is fixed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from elt_platform.state.schema import circuit_breakers
from elt_platform.state.store import StateStore, utcnow

OPEN = "open"
CLOSED = "closed"
#: Reasons are short operator-facing text; the cap keeps a pasted response body out of logs and the CLI.
MAX_REASON_LENGTH = 300


class CircuitOpenError(RuntimeError):
    """Raised by :meth:`CircuitBreaker.check` while the account's breaker is open.

    Attributes:
        account: the external account.
        reason: why it was opened (short text, no secrets).
        opened_at: when it was opened (UTC).
    """

    def __init__(self, account: str, reason: str, opened_at: datetime | None) -> None:
        self.account = account
        self.reason = reason
        self.opened_at = opened_at
        since = f" since {opened_at:%Y-%m-%d %H:%M:%S} UTC" if opened_at else ""
        super().__init__(
            f"circuit breaker for account {account!r} is open{since}: {reason}. "
            f"Fix the cause, then close it with: elt breaker reset {account}"
        )


class CircuitBreaker:
    """The breaker of one external account.

    Args:
        store: the state store.
        account: the external account (the same name its :class:`RequestBudget` uses).
    """

    def __init__(self, store: StateStore, account: str) -> None:
        self.store = store
        self.account = account

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.account!r})"

    def check(self) -> None:
        """Return quietly if calls may proceed.

        Raises:
            CircuitOpenError: the breaker is open.
        """
        status = self.status()
        if status["state"] == OPEN:
            raise CircuitOpenError(self.account, status["reason"] or "", status["opened_at"])

    def open(self, reason: str) -> bool:
        """Open the breaker; if it is already open, keep the first reason and time.

        Args:
            reason: short operator-facing text (an HTTP status and error code, not a response body
                or a header); longer text is cut at :data:`MAX_REASON_LENGTH` characters.

        Returns:
            ``True`` if this call opened it, ``False`` if it was already open.
        """
        reason = " ".join(reason.split())[:MAX_REASON_LENGTH]
        now = utcnow()
        with self.store.transaction() as conn:
            row = self.store.lock_row(
                conn,
                circuit_breakers,
                {"account": self.account},
                defaults={"state": CLOSED, "updated_at": now},
            )
            if row.state == OPEN:
                return False
            conn.execute(
                update(circuit_breakers)
                .where(circuit_breakers.c.account == self.account)
                .values(state=OPEN, reason=reason, opened_at=now, reset_at=None, updated_at=now)
            )
        return True

    def reset(self) -> bool:
        """Close the breaker (the reason and opening time are kept for the record).

        Returns:
            ``True`` if it was open.
        """
        now = utcnow()
        with self.store.transaction() as conn:
            result = conn.execute(
                update(circuit_breakers)
                .where(circuit_breakers.c.account == self.account, circuit_breakers.c.state == OPEN)
                .values(state=CLOSED, reset_at=now, updated_at=now)
            )
        return result.rowcount == 1

    def status(self) -> dict[str, Any]:
        """The breaker's state.

        Returns:
            ``account``, ``state`` (``"open"``/``"closed"``), ``reason``, ``opened_at``, ``reset_at``
            (``None`` where never set; an account never seen is closed).
        """
        with self.store.transaction(write=False) as conn:
            row = conn.execute(
                select(circuit_breakers).where(circuit_breakers.c.account == self.account)
            ).one_or_none()
        if row is None:
            return {
                "account": self.account,
                "state": CLOSED,
                "reason": None,
                "opened_at": None,
                "reset_at": None,
            }
        return _as_dict(row)


def list_breakers(store: StateStore) -> list[dict[str, Any]]:
    """Every breaker ever opened, by account.

    Args:
        store: the state store.

    Returns:
        One :meth:`CircuitBreaker.status` dict per account.
    """
    with store.transaction(write=False) as conn:
        rows = conn.execute(select(circuit_breakers).order_by(circuit_breakers.c.account)).all()
    return [_as_dict(row) for row in rows]


def _as_dict(row) -> dict[str, Any]:
    return {
        "account": row.account,
        "state": row.state,
        "reason": row.reason,
        "opened_at": row.opened_at,
        "reset_at": row.reset_at,
    }

"""Open breaches of alert rules, so that each breach is alerted once and again only after it recovered.

A checker calls :func:`observe` with the verdict of a rule for one subject (a source, a destination)
on every run. The first failing verdict opens a breach row; the caller alerts and then calls
:func:`mark_alerted`. Later failing verdicts find the breach already alerted and stay quiet; the first
passing verdict deletes the row (``recovered``), so the next failure is a new breach with a new alert.

If the process dies between the alert and :func:`mark_alerted`, the next check alerts again: a
duplicate is preferred to a breach nobody heard of.

A rule may also fail its task while the breach is open (the reverse-ETL error rate does): it raises
:class:`OpenBreach`, which the task's failure notifiers skip — the alert went out when the breach opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, delete, select, update

from elt_platform.state.schema import alert_breaches
from elt_platform.state.store import StateStore, utcnow

BreachState = Literal["opened", "unalerted", "ongoing", "recovered", "ok"]


class OpenBreach(RuntimeError):
    """A check fails its task because its rule is breached; the breach was alerted when it opened.

    Failure notifiers (:class:`elt_platform.alerts.PlatformNotifier`) do not alert it again, so a
    check failing on every run of a long breach alerts once.
    """


@dataclass(frozen=True)
class BreachCheck:
    """What one verdict did to the breach of ``rule`` for ``subject``.

    Attributes:
        rule: the alert rule (``freshness``, ``reverse_etl_error_rate``).
        subject: what the rule was checked for (a source or destination name).
        state: ``opened`` (new breach), ``unalerted`` (open, its alert never confirmed), ``ongoing``
            (open and alerted), ``recovered`` (was open, passes now) or ``ok``.
        opened_at: when the breach opened (None when there is none).
        detail: the verdict's explanation.
    """

    rule: str
    subject: str
    state: BreachState
    opened_at: datetime | None
    detail: str | None

    @property
    def needs_alert(self) -> bool:
        """Whether the caller must alert now (then call :func:`mark_alerted`)."""
        return self.state in ("opened", "unalerted")


def _key(rule: str, subject: str) -> Any:
    return and_(alert_breaches.c.rule == rule, alert_breaches.c.subject == subject)


def observe(
    store: StateStore,
    rule: str,
    subject: str,
    *,
    breached: bool,
    detail: str | None = None,
    now: datetime | None = None,
) -> BreachCheck:
    """Record one verdict of ``rule`` for ``subject``.

    Args:
        store: the state store.
        rule: the alert rule.
        subject: what it was checked for.
        breached: the verdict.
        detail: a one-line explanation (kept while the breach is open; no personal data).
        now: the check's time (default: now).

    Returns:
        The breach's transition; alert when :attr:`BreachCheck.needs_alert`.
    """
    now = now or utcnow()
    with store.transaction() as conn:
        row = conn.execute(select(alert_breaches).where(_key(rule, subject))).one_or_none()
        if not breached:
            if row is None:
                return BreachCheck(rule, subject, "ok", None, detail)
            conn.execute(delete(alert_breaches).where(_key(rule, subject)))
            return BreachCheck(rule, subject, "recovered", row.opened_at, detail)
        if row is None:
            values = {
                "rule": rule,
                "subject": subject,
                "opened_at": now,
                "detail": detail,
                "alerted_at": None,
                "updated_at": now,
            }
            conn.execute(alert_breaches.insert().values(**values))
            return BreachCheck(rule, subject, "opened", now, detail)
        conn.execute(update(alert_breaches).where(_key(rule, subject)).values(detail=detail, updated_at=now))
        state: BreachState = "ongoing" if row.alerted_at is not None else "unalerted"
        return BreachCheck(rule, subject, state, row.opened_at, detail)


def mark_alerted(store: StateStore, rule: str, subject: str, *, now: datetime | None = None) -> None:
    """Remember that the open breach of ``rule`` for ``subject`` was alerted."""
    now = now or utcnow()
    with store.transaction() as conn:
        conn.execute(update(alert_breaches).where(_key(rule, subject)).values(alerted_at=now, updated_at=now))


def list_breaches(store: StateStore, rule: str | None = None) -> list[dict[str, Any]]:
    """Every open breach (of ``rule``, if given), by rule and subject."""
    query = select(alert_breaches).order_by(alert_breaches.c.rule, alert_breaches.c.subject)
    if rule is not None:
        query = query.where(alert_breaches.c.rule == rule)
    with store.transaction(write=False) as conn:
        return [dict(r._mapping) for r in conn.execute(query).all()]

"""Source freshness: how long since a source last delivered data that passed its gate, against its schedule.

A source's *last success* is the newest transform-ledger slice of that source that passed the bronze
quality gate (status ``pending``, ``claimed`` or ``done``; ``loaded`` slices failed or await their
gate), or the newest run of a ``changes_only`` extract that read the source and found nothing new
(:func:`record_check`): a clinic closed for the night is quiet, not stale. Its age is judged against
the source's *period*, the shortest gap between two scheduled runs of any of its extract DAGs (a
source with a minute micro-batch is expected every minute):

* ``green`` — age ≤ period + grace, where grace = max(period / 2, 15 minutes): the last run is
  on time, allowing for the run's own duration;
* ``amber`` — age ≤ 2 × (period + grace): a run is late or failed once;
* ``red`` — older: the source is stale. This is the breach :func:`check_freshness` alerts;
* ``never`` — the source has no gated slice yet (not started, not stale: no alert).

:func:`check_freshness` runs in the ``check_freshness`` DAG and alerts each red source once per
breach (:mod:`elt_platform.state.breaches`): again only after the source has been green or amber.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from croniter import croniter  # type: ignore[import-untyped]
from sqlalchemy import and_, func, select

from elt_platform.registry import Source, registry
from elt_platform.state.breaches import mark_alerted, observe
from elt_platform.state.ledger import CLAIMED, DONE, PENDING
from elt_platform.state.schema import transform_ledger
from elt_platform.state.store import StateStore, open_state_store, utcnow
from elt_platform.state.watermarks import list_watermarks, set_watermark

log = logging.getLogger(__name__)

FreshnessStatus = Literal["green", "amber", "red", "never"]
#: The alert rule's name in the breach table.
FRESHNESS_RULE = "freshness"
MIN_GRACE = timedelta(minutes=15)
#: Ledger statuses of a slice that passed its bronze gate.
GATED = (PENDING, CLAIMED, DONE)


@dataclass(frozen=True)
class LastSuccess:
    """The newest gated slice of a source.

    Attributes:
        slice_key: the interval (``2025-03-03/2025-03-04``) or package id.
        run_id: the extract run that loaded it.
        at: when its ledger row last changed (gate passed, or transformed since).
    """

    slice_key: str
    run_id: str
    at: datetime


@dataclass(frozen=True)
class Freshness:
    """One source's freshness verdict.

    Attributes:
        source: the source's name.
        status: ``green``, ``amber``, ``red`` or ``never``.
        last: its last success, if any.
        age: time since ``last.at``.
        period: the shortest gap between scheduled extract runs.
        green_within / amber_within: the thresholds ``status`` was judged against.
    """

    source: str
    status: FreshnessStatus
    last: LastSuccess | None
    age: timedelta | None
    period: timedelta
    green_within: timedelta
    amber_within: timedelta

    @property
    def detail(self) -> str:
        """One line for alerts and the page (no personal data)."""
        if self.last is None or self.age is None:
            return f"{self.source}: no gated load yet"
        return (
            f"{self.source}: last gated load {self.last.slice_key} ({self.last.run_id}) "
            f"{_duration(self.age)} ago; expected every {_duration(self.period)}, "
            f"stale after {_duration(self.amber_within)}"
        )


def _duration(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes / 60
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} d"


def schedule_period(cron: str | timedelta, now: datetime) -> timedelta:
    """The gap between the two scheduled times of ``cron`` before ``now`` (UTC cron), or the period
    itself when the schedule is one."""
    if isinstance(cron, timedelta):
        return cron
    ticks = croniter(cron, now)
    last = ticks.get_prev(datetime)
    return last - ticks.get_prev(datetime)


def source_period(source: Source, now: datetime) -> timedelta:
    """The shortest gap between two scheduled runs of any of ``source``'s extract DAGs."""
    return min(schedule_period(extract.schedule, now) for extract in source.extracts)


def thresholds(period: timedelta) -> tuple[timedelta, timedelta]:
    """``(green_within, amber_within)`` for a source expected every ``period``."""
    green = period + max(period / 2, MIN_GRACE)
    return green, 2 * green


def classify(age: timedelta | None, period: timedelta) -> FreshnessStatus:
    """The status of a source whose last success is ``age`` old (None: never)."""
    if age is None:
        return "never"
    green, amber = thresholds(period)
    if age <= green:
        return "green"
    return "amber" if age <= amber else "red"


#: Watermark key of a source's last run that read it and found nothing new (see :func:`record_check`).
CHECK_KEY = "freshness:{source}:checked"
#: ``LastSuccess.slice_key`` of such a run.
NO_CHANGE = "(no change)"


def record_check(store: StateStore, source: str, run_id: str) -> None:
    """Record that ``run_id`` read ``source`` successfully and found nothing new (a ``changes_only``
    extract hands no slice to the ledger then, but the source is fresh)."""
    set_watermark(store, CHECK_KEY.format(source=source), run_id)


def last_successes(store: StateStore) -> dict[str, LastSuccess]:
    """The newest gated ledger slice per source (over every domain consuming it), or its newest
    :func:`record_check` when that is newer."""
    gated = transform_ledger.c.status.in_(GATED)
    newest = (
        select(transform_ledger.c.source, func.max(transform_ledger.c.updated_at).label("at"))
        .where(gated)
        .group_by(transform_ledger.c.source)
        .subquery()
    )
    query = select(
        transform_ledger.c.source,
        transform_ledger.c.slice_key,
        transform_ledger.c.run_id,
        transform_ledger.c.updated_at,
    ).join(
        newest,
        and_(transform_ledger.c.source == newest.c.source, transform_ledger.c.updated_at == newest.c.at),
    )
    with store.transaction(write=False) as conn:
        rows = conn.execute(query.where(gated)).all()
    found: dict[str, LastSuccess] = {}
    for row in sorted(rows, key=lambda r: (r.source, r.slice_key)):
        found.setdefault(row.source, LastSuccess(row.slice_key, row.run_id, row.updated_at))
    prefix, suffix = CHECK_KEY.split("{source}")
    for mark in list_watermarks(store):
        key = mark["key"]
        if key.startswith(prefix) and key.endswith(suffix):
            source = key[len(prefix) : len(key) - len(suffix)]
            last = found.get(source)
            if last is None or _aware(mark["updated_at"]) > _aware(last.at):
                found[source] = LastSuccess(NO_CHANGE, mark["value"], mark["updated_at"])
    return found


def _aware(moment: datetime) -> datetime:
    """SQLite hands timestamps back naive (they are stored in UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def source_freshness(
    store: StateStore, *, now: datetime | None = None, sources: Iterable[Source] | None = None
) -> list[Freshness]:
    """The freshness of every registered source (or of ``sources``), in registry order."""
    now = now or utcnow()
    lasts = last_successes(store)
    verdicts = []
    for source in sources if sources is not None else registry().sources.values():
        last = lasts.get(source.name)
        age = max(now - last.at, timedelta(0)) if last else None
        period = source_period(source, now)
        green, amber = thresholds(period)
        verdicts.append(Freshness(source.name, classify(age, period), last, age, period, green, amber))
    return verdicts


def check_freshness(
    alert: Callable[[str], None], *, store: StateStore | None = None, now: datetime | None = None
) -> dict[str, str]:
    """Alert every source that turned stale (red), once per breach.

    Args:
        alert: sends one alert text (the DAG task passes the platform notifiers).
        store: the state store (default: the configured one).
        now: the check's time.

    Returns:
        Source → its breach transition (``opened``, ``ongoing``, ``recovered``, ``ok``…).
    """
    store = store or open_state_store()
    now = now or utcnow()
    result: dict[str, str] = {}
    for verdict in source_freshness(store, now=now):
        check = observe(
            store,
            FRESHNESS_RULE,
            verdict.source,
            breached=verdict.status == "red",
            now=now,
            detail=verdict.detail,
        )
        if check.needs_alert:
            alert(f"source {verdict.detail}")
            mark_alerted(store, FRESHNESS_RULE, verdict.source, now=now)
        elif check.state == "recovered":
            log.info("freshness recovered: %s", verdict.detail)
        result[verdict.source] = check.state
    return result

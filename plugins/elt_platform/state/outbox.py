"""The reverse-ETL outbox in the state store: records, per-run plans (the operation log) and runs.

Every write a sync makes follows the same three commits, so that a run killed at any point and rerun
neither loses a row nor creates anything twice:

1. :func:`save_plan` — the run's decisions (row, action, rule, diff), before anything is sent;
2. :func:`mark_intent` — the records about to be written get status ``intent`` (committed before the
   CRM call), so a rerun knows their outcome is unknown and looks them up by external id first;
3. :func:`record_outcomes` — after each CRM batch: sent (hash, CRM ids, fields written) or failed
   (attempts, next attempt per the backoff, dead letter after the last attempt).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, select, update

from elt_platform.reverse_etl.plan import (
    DEAD,
    INTENT,
    QUEUED,
    REVIEW,
    SENT,
    SKIPPED,
    Decision,
    Outcome,
    Record,
    next_attempt,
)
from elt_platform.state.schema import reverse_etl_plan, reverse_etl_records, reverse_etl_runs
from elt_platform.state.store import StateStore, utcnow

#: Error text is operator-facing and capped: a pasted response body must not flood the state or logs.
MAX_ERROR_LENGTH = 500


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else {}


#: External ids per ``IN (…)`` list: each is one bind parameter, and Postgres (psycopg) refuses a
#: statement of more than 65,535 — a run skipping 100,000 unchanged rows would fail on every retry.
MAX_IDS_PER_STATEMENT = 10_000


def _slices(external_ids: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(external_ids), MAX_IDS_PER_STATEMENT):
        yield external_ids[start : start + MAX_IDS_PER_STATEMENT]


def _records_by_id(conn: Any, destination: str, external_ids: list[str]) -> dict[str, Any]:
    """The outbox rows of ``external_ids`` (inside the caller's transaction), by external id."""
    found: dict[str, Any] = {}
    for ids in _slices(external_ids):
        rows = conn.execute(
            select(reverse_etl_records).where(
                and_(
                    reverse_etl_records.c.destination == destination,
                    reverse_etl_records.c.external_id.in_(ids),
                )
            )
        ).all()
        found.update((r.external_id, r) for r in rows)
    return found


def load_records(
    store: StateStore, destination: str, external_ids: list[str] | None = None
) -> dict[str, Record]:
    """The outbox records of ``destination`` by external id: every one, or those of ``external_ids``."""
    with store.transaction(write=False) as conn:
        rows: list[Any]
        if external_ids is not None:
            rows = list(_records_by_id(conn, destination, external_ids).values())
        else:
            query = select(reverse_etl_records).where(reverse_etl_records.c.destination == destination)
            rows = list(conn.execute(query).all())
    return {
        r.external_id: Record(
            destination=r.destination,
            external_id=r.external_id,
            status=r.status,
            row_hash=r.row_hash,
            sent_fields=_loads(r.sent_fields),
            crm_ids=_loads(r.crm_ids),
            attempts=r.attempts,
            next_attempt_at=r.next_attempt_at,
            last_error=r.last_error,
        )
        for r in rows
    }


def record_keys(store: StateStore, destination: str) -> dict[str, Record]:
    """Every record of ``destination`` with what picking candidates reads (status, hash, retry time) and
    nothing else: a plan over 100,000 records decodes the sent fields of its candidates only
    (:func:`load_records` with their ids)."""
    records = reverse_etl_records.c
    query = select(records.external_id, records.status, records.row_hash, records.next_attempt_at).where(
        records.destination == destination
    )
    with store.transaction(write=False) as conn:
        rows = conn.execute(query).all()
    return {
        r.external_id: Record(
            destination=destination,
            external_id=r.external_id,
            status=r.status,
            row_hash=r.row_hash,
            next_attempt_at=r.next_attempt_at,
        )
        for r in rows
    }


def start_run(store: StateStore, destination: str, run_id: str, *, dry_run: bool) -> None:
    """Record a run's start; a rerun of the same run id replaces its earlier plan."""
    now = utcnow()
    with store.transaction() as conn:
        conn.execute(
            delete(reverse_etl_plan).where(
                and_(reverse_etl_plan.c.run_id == run_id, reverse_etl_plan.c.destination == destination)
            )
        )
        store.upsert(
            conn,
            reverse_etl_runs,
            {
                "run_id": run_id,
                "destination": destination,
                "status": "planning",
                "dry_run": dry_run,
                "started_at": now,
                "finished_at": None,
                "summary": None,
                "updated_at": now,
            },
        )


def save_plan(store: StateStore, destination: str, run_id: str, decisions: Iterable[Decision]) -> int:
    """Write the run's decisions (one commit). Returns how many."""
    now = utcnow()
    rows = [
        {
            "run_id": run_id,
            "destination": destination,
            "external_id": d.external_id,
            "reason": d.candidate.reason,
            "action": d.action,
            "rule": d.rule,
            "row_hash": d.candidate.row.get("row_hash"),
            "row_json": _dumps(d.candidate.row),
            "fields_json": _dumps(d.fields),
            "diff_json": _dumps({"changed": d.diff, "protected": d.protected, "note": d.note}),
            "crm_ids": _dumps(d.crm_ids),
            "outcome": None,
            "error": None,
            "updated_at": now,
        }
        for d in decisions
    ]
    with store.transaction() as conn:
        store.upsert_many(conn, reverse_etl_plan, rows)
    return len(rows)


def plan_rows(store: StateStore, destination: str, run_id: str) -> list[dict[str, Any]]:
    """The run's plan rows, decoded (``row``, ``fields``, ``diff``, ``crm_ids`` as Python values)."""
    with store.transaction(write=False) as conn:
        rows = conn.execute(
            select(reverse_etl_plan)
            .where(and_(reverse_etl_plan.c.run_id == run_id, reverse_etl_plan.c.destination == destination))
            .order_by(reverse_etl_plan.c.external_id)
        ).all()
    return [
        {
            **{k: v for k, v in r._mapping.items() if not k.endswith("_json") and k != "crm_ids"},
            "row": _loads(r.row_json),
            "fields": _loads(r.fields_json),
            "diff": _loads(r.diff_json),
            "crm_ids": _loads(r.crm_ids),
        }
        for r in rows
    ]


def mark_intent(store: StateStore, destination: str, run_id: str, external_ids: list[str]) -> None:
    """Before a CRM write: mark the records ``intent`` (created when new), in one commit."""
    now = utcnow()
    with store.transaction() as conn:
        existing = _records_by_id(conn, destination, external_ids)
        rows: list[dict[str, Any]] = []
        for external_id in external_ids:
            old = existing.get(external_id)
            rows.append(
                {
                    "destination": destination,
                    "external_id": external_id,
                    "status": INTENT,
                    "row_hash": old.row_hash if old else None,
                    "sent_fields": old.sent_fields if old else None,
                    "crm_ids": old.crm_ids if old else None,
                    "attempts": old.attempts if old else 0,
                    "next_attempt_at": None,
                    "last_error": old.last_error if old else None,
                    "last_run_id": run_id,
                    "updated_at": now,
                }
            )
        store.upsert_many(conn, reverse_etl_records, rows)


def record_outcomes(
    store: StateStore,
    destination: str,
    run_id: str,
    decisions: dict[str, Decision],
    outcomes: list[Outcome],
    *,
    max_attempts: int,
    now: datetime | None = None,
) -> dict[str, int]:
    """After a CRM batch: the records' new state and the plan rows' outcomes, in one commit.

    Returns:
        Counts of ``sent``, ``failed`` (will be retried) and ``dead`` (parked).
    """
    now = now or utcnow()
    counts = {"sent": 0, "failed": 0, "dead": 0}
    with store.transaction() as conn:
        current = _records_by_id(conn, destination, [o.external_id for o in outcomes])
        records: list[dict[str, Any]] = []
        plan_updates: list[dict[str, Any]] = []
        for outcome in outcomes:
            decision = decisions[outcome.external_id]
            old = current.get(outcome.external_id)
            old_fields = _loads(old.sent_fields) if old else {}
            old_ids = _loads(old.crm_ids) if old else {}
            attempts = (old.attempts if old else 0) + 1
            error = (outcome.error or "")[:MAX_ERROR_LENGTH] or None
            if outcome.ok:
                status, when, attempts = SENT, None, 0
                row_hash = decision.candidate.row.get("row_hash")
                fields = {**old_fields, **outcome.written}
            else:
                status, when = (
                    next_attempt(attempts, now, max_attempts) if outcome.retryable else (DEAD, None)
                )
                row_hash, fields = (old.row_hash if old else None), old_fields
            counts["sent" if outcome.ok else ("dead" if status == DEAD else "failed")] += 1
            records.append(
                {
                    "destination": destination,
                    "external_id": outcome.external_id,
                    "status": status,
                    "row_hash": row_hash,
                    "sent_fields": _dumps(fields),
                    "crm_ids": _dumps({**old_ids, **decision.crm_ids, **outcome.crm_ids}),
                    "attempts": attempts,
                    "next_attempt_at": when,
                    "last_error": None if outcome.ok else error,
                    "last_run_id": run_id,
                    "updated_at": now,
                }
            )
            plan_updates.append(
                {
                    "run_id_": run_id,
                    "destination_": destination,
                    "external_id_": outcome.external_id,
                    "outcome_": "sent" if outcome.ok else status,
                    "error_": error,
                    "crm_ids_": _dumps({**decision.crm_ids, **outcome.crm_ids}),
                    "updated_at_": now,
                }
            )
        store.upsert_many(conn, reverse_etl_records, records)
        if plan_updates:
            # One statement, executed for every row: building a statement per row cost ~0.2 ms each
            # (most of an execute of 100,000 outcomes).
            conn.execute(_PLAN_OUTCOME, plan_updates)
    return counts


#: :func:`record_outcomes`' update of one plan row; bind names differ from the columns', which
#: SQLAlchemy reserves for the SET clause.
_PLAN_OUTCOME = (
    update(reverse_etl_plan)
    .where(
        and_(
            reverse_etl_plan.c.run_id == bindparam("run_id_"),
            reverse_etl_plan.c.destination == bindparam("destination_"),
            reverse_etl_plan.c.external_id == bindparam("external_id_"),
        )
    )
    .values(
        outcome=bindparam("outcome_", type_=reverse_etl_plan.c.outcome.type),
        error=bindparam("error_", type_=reverse_etl_plan.c.error.type),
        crm_ids=bindparam("crm_ids_", type_=reverse_etl_plan.c.crm_ids.type),
        updated_at=bindparam("updated_at_", type_=reverse_etl_plan.c.updated_at.type),
    )
)


def record_without_write(
    store: StateStore, destination: str, run_id: str, decisions: list[Decision], status: str
) -> None:
    """Rows decided without a CRM write: ``review`` (ambiguous) or ``skipped`` (nothing to change /
    every change protected — the hash counts as sent so the row is not planned again until it changes)."""
    if not decisions:
        return
    now = utcnow()
    with store.transaction() as conn:
        current = _records_by_id(conn, destination, [d.external_id for d in decisions])
        rows: list[dict[str, Any]] = []
        for decision in decisions:
            old = current.get(decision.external_id)
            rows.append(
                {
                    "destination": destination,
                    "external_id": decision.external_id,
                    "status": REVIEW if status == REVIEW else SENT,
                    "row_hash": decision.candidate.row.get("row_hash"),
                    "sent_fields": old.sent_fields if old else _dumps({}),
                    "crm_ids": _dumps({**(_loads(old.crm_ids) if old else {}), **decision.crm_ids}),
                    "attempts": 0,
                    "next_attempt_at": None,
                    "last_error": decision.note if status == REVIEW else None,
                    "last_run_id": run_id,
                    "updated_at": now,
                }
            )
        store.upsert_many(conn, reverse_etl_records, rows)
        for ids in _slices([d.external_id for d in decisions]):
            conn.execute(
                update(reverse_etl_plan)
                .where(
                    and_(
                        reverse_etl_plan.c.run_id == run_id,
                        reverse_etl_plan.c.destination == destination,
                        reverse_etl_plan.c.external_id.in_(ids),
                    )
                )
                .values(outcome=REVIEW if status == REVIEW else SKIPPED, updated_at=now)
            )


def finish_run(
    store: StateStore, destination: str, run_id: str, status: str, summary: dict[str, Any]
) -> None:
    """Close the run's row with its status and summary counts."""
    now = utcnow()
    with store.transaction() as conn:
        conn.execute(
            update(reverse_etl_runs)
            .where(and_(reverse_etl_runs.c.run_id == run_id, reverse_etl_runs.c.destination == destination))
            .values(status=status, finished_at=now, summary=_dumps(summary), updated_at=now)
        )


def set_run_status(store: StateStore, destination: str, run_id: str, status: str) -> None:
    """Move a run to ``status`` (``planned``, ``executing``…)."""
    with store.transaction() as conn:
        conn.execute(
            update(reverse_etl_runs)
            .where(and_(reverse_etl_runs.c.run_id == run_id, reverse_etl_runs.c.destination == destination))
            .values(status=status, updated_at=utcnow())
        )


def has_sent_before(store: StateStore, destination: str) -> bool:
    """Whether any record was ever sent to ``destination`` (the first run needs approval)."""
    with store.transaction(write=False) as conn:
        return (
            conn.execute(
                select(func.count())
                .select_from(reverse_etl_records)
                .where(
                    and_(
                        reverse_etl_records.c.destination == destination, reverse_etl_records.c.status == SENT
                    )
                )
            ).scalar_one()
            > 0
        )


def error_rate(
    store: StateStore,
    destination: str,
    *,
    window: timedelta = timedelta(hours=1),
    now: datetime | None = None,
) -> tuple[int, int]:
    """``(failed, executed)`` CRM operations of ``destination`` in the last ``window``."""
    since = (now or utcnow()) - window
    with store.transaction(write=False) as conn:
        rows = conn.execute(
            select(reverse_etl_plan.c.outcome, func.count())
            .where(
                and_(
                    reverse_etl_plan.c.destination == destination,
                    reverse_etl_plan.c.updated_at >= since,
                    reverse_etl_plan.c.outcome.in_(["sent", "failed", DEAD]),
                )
            )
            .group_by(reverse_etl_plan.c.outcome)
        ).all()
    counts: dict[str, int] = {str(outcome): int(str(n)) for outcome, n in rows}
    failed = counts.get("failed", 0) + counts.get(DEAD, 0)
    return failed, failed + counts.get("sent", 0)


def requeue(store: StateStore, destination: str, statuses: tuple[str, ...] = (DEAD,)) -> int:
    """Put dead letters (and/or review rows) back in the queue; the next run plans them. Returns how many."""
    with store.transaction() as conn:
        result = conn.execute(
            update(reverse_etl_records)
            .where(
                and_(
                    reverse_etl_records.c.destination == destination,
                    reverse_etl_records.c.status.in_(statuses),
                )
            )
            .values(status=QUEUED, attempts=0, next_attempt_at=None, updated_at=utcnow())
        )
    return result.rowcount


def queue_sizes(store: StateStore, destination: str | None = None) -> dict[str, dict[str, int]]:
    """Records per destination and status (the retry queue is ``failed``, dead letters ``dead``)."""
    query = select(reverse_etl_records.c.destination, reverse_etl_records.c.status, func.count()).group_by(
        reverse_etl_records.c.destination, reverse_etl_records.c.status
    )
    if destination:
        query = query.where(reverse_etl_records.c.destination == destination)
    with store.transaction(write=False) as conn:
        rows = conn.execute(query).all()
    sizes: dict[str, dict[str, int]] = {}
    for dest, status, n in rows:
        sizes.setdefault(str(dest), {})[str(status)] = int(str(n))
    return sizes


def list_records(
    store: StateStore,
    destination: str | None = None,
    *,
    statuses: Iterable[str] | None = None,
    updated_since: datetime | None = None,
) -> list[dict[str, Any]]:
    """Outbox records (for ``ops.reverse_etl_state``), by destination and external id.

    Args:
        destination: one destination's only.
        statuses: only records in these statuses.
        updated_since: only records updated at or after this time.
    """
    records = reverse_etl_records.c
    query = select(reverse_etl_records).order_by(records.destination, records.external_id)
    if destination is not None:
        query = query.where(records.destination == destination)
    if statuses is not None:
        query = query.where(records.status.in_(list(statuses)))
    if updated_since is not None:
        query = query.where(records.updated_at >= updated_since)
    with store.transaction(write=False) as conn:
        rows = conn.execute(query).all()
    return [dict(r._mapping) for r in rows]


def list_runs(
    store: StateStore, destination: str | None = None, run_id: str | None = None
) -> list[dict[str, Any]]:
    """Runs (for ``ops.reverse_etl_runs``), oldest first; one destination's, or one run's."""
    query = select(reverse_etl_runs).order_by(reverse_etl_runs.c.started_at)
    if destination is not None:
        query = query.where(reverse_etl_runs.c.destination == destination)
    if run_id is not None:
        query = query.where(reverse_etl_runs.c.run_id == run_id)
    with store.transaction(write=False) as conn:
        rows = conn.execute(query).all()
    return [dict(r._mapping) for r in rows]

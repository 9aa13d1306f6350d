"""What analysts read about reverse ETL: ``ops.reverse_etl_plans``, ``_runs``, ``_state``, ``_review``.

Rows come from the outbox (:mod:`elt_platform.state.outbox`); phones and e-mails in field values and
errors are masked unless the platform's PII setting is ``clear`` (:mod:`elt_platform.pii`). The plan
export appends one commit per run (a rerun of the run replaces its rows); the others are replaced whole by
:func:`elt_platform.ops.export_state` (after a full transform, ``elt ops-export``), and after each run
brought up to date for its destination by :func:`elt_platform.ops.export_destination`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pyarrow as pa

from elt_platform.http.redaction import redact_pii
from elt_platform.pii import masking_mode
from elt_platform.reverse_etl.plan import REVIEW
from elt_platform.state import outbox
from elt_platform.state.store import StateStore

_TS = pa.timestamp("us", tz="UTC")

PLAN_TABLE = "ops.reverse_etl_plans"
PLAN_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("destination", pa.string()),
        ("external_id", pa.string()),
        ("reason", pa.string()),
        ("action", pa.string()),
        ("rule", pa.string()),
        ("changed", pa.string()),
        ("protected", pa.string()),
        ("note", pa.string()),
        ("crm_ids", pa.string()),
        ("outcome", pa.string()),
        ("error", pa.string()),
        ("updated_at", _TS),
    ]
)
STATE_SCHEMA = pa.schema(
    [
        ("destination", pa.string()),
        ("external_id", pa.string()),
        ("status", pa.string()),
        ("row_hash", pa.string()),
        ("sent_fields", pa.string()),
        ("crm_ids", pa.string()),
        ("attempts", pa.int32()),
        ("next_attempt_at", _TS),
        ("last_error", pa.string()),
        ("last_run_id", pa.string()),
        ("updated_at", _TS),
    ]
)
RUNS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("destination", pa.string()),
        ("status", pa.string()),
        ("dry_run", pa.bool_()),
        ("started_at", _TS),
        ("finished_at", _TS),
        ("summary", pa.string()),
    ]
)
REVIEW_SCHEMA = pa.schema(
    [
        ("destination", pa.string()),
        ("external_id", pa.string()),
        ("reason", pa.string()),
        ("crm_ids", pa.string()),
        ("last_run_id", pa.string()),
        ("updated_at", _TS),
    ]
)


def _mask(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if masking_mode() == "clear" else redact_pii(text)


def state_rows(
    store: StateStore,
    destination: str | None = None,
    *,
    statuses: Iterable[str] | None = None,
    updated_since: datetime | None = None,
) -> list[dict[str, Any]]:
    """Outbox records, personal data masked (filters as :func:`elt_platform.state.outbox.list_records`)."""
    return [
        {**r, "sent_fields": _mask(r["sent_fields"]), "last_error": _mask(r["last_error"])}
        for r in outbox.list_records(store, destination, statuses=statuses, updated_since=updated_since)
    ]


def run_rows(
    store: StateStore, destination: str | None = None, run_id: str | None = None
) -> list[dict[str, Any]]:
    """Runs with their summaries (counts only: nothing to mask)."""
    return outbox.list_runs(store, destination, run_id)


def review_rows(store: StateStore, destination: str | None = None) -> list[dict[str, Any]]:
    """Records waiting for a person: ambiguous matches and rows breaking the contract."""
    return [
        {**r, "reason": _mask(r["last_error"])}
        for r in outbox.list_records(store, destination, statuses=[REVIEW])
    ]


def plan_rows(store: StateStore, destination: str, run_id: str) -> list[dict[str, Any]]:
    """One run's plan as exported: the diff split into changed / protected, masked."""
    rows = []
    for r in outbox.plan_rows(store, destination, run_id):
        diff = r["diff"] or {}
        rows.append(
            {
                **{k: r[k] for k in ("run_id", "destination", "external_id", "reason", "action", "rule")},
                "changed": _mask(diff.get("changed") or {}),
                "protected": _mask(diff.get("protected") or {}),
                "note": _mask(diff.get("note")),
                "crm_ids": json.dumps(r["crm_ids"] or {}, sort_keys=True),
                "outcome": r["outcome"],
                "error": _mask(r["error"]),
                "updated_at": r["updated_at"],
            }
        )
    return rows

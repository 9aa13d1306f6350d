"""The reverse-ETL run: plan → (approve) → execute → report, as plain functions the DAG tasks call.

* :func:`plan_run` reads the outbound table, checks each row against the contract, picks the rows that
  need work (new, changed, due for retry, left in ``intent`` by a killed run), lets the destination
  match them in the CRM (read-only) and stores the decisions. It returns a summary without personal
  data (it travels through XCom) saying whether a person must approve.
* :func:`execute_run` writes the stored plan in chunks — intent committed before each CRM batch,
  outcomes after — so a run killed anywhere and rerun creates nothing twice and loses nothing.
* :func:`report_run` closes the run with its counts, logs them and exports the ``ops.reverse_etl_*``
  tables analysts read.
* :func:`check_error_rate` is the alert rule: more than 10 % failed operations in the last hour
  fails the check on every run and alerts once per breach (:mod:`elt_platform.state.breaches`).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from elt_platform.registry import Destination, call, registry
from elt_platform.reverse_etl import feed
from elt_platform.reverse_etl.adapter import DestinationAdapter
from elt_platform.reverse_etl.plan import (
    CREATE_ACTIONS,
    DUPLICATE,
    INTENT,
    INVALID,
    RECOVER,
    REVIEW,
    REVIEW_ACTION,
    SKIP_PROTECTED,
    SKIP_UNCHANGED,
    WRITE_ACTIONS,
    Candidate,
    Decision,
    select_candidates,
)
from elt_platform.state import outbox
from elt_platform.state.breaches import OpenBreach, mark_alerted, observe
from elt_platform.state.store import StateStore, open_state_store, utcnow

log = logging.getLogger(__name__)

#: Destinations whose plans never wait for a person (comma-separated names, or ``all``): for unattended
#: environments such as the sandboxes of ``make run`` and CI. Production leaves it unset.
AUTO_APPROVE_VARIABLE = "ELT_REVERSE_ETL_AUTO_APPROVE"

#: The alert threshold of the spec: failed operations over 10 % of the last hour's.
ERROR_RATE_THRESHOLD = 0.10
ERROR_RATE_WINDOW = timedelta(hours=1)
#: The alert rule's name in the breach table (subject: the destination).
ERROR_RATE_RULE = "reverse_etl_error_rate"


class ErrorRateExceeded(OpenBreach):
    """More than the allowed share of a destination's operations failed in the window."""


def _destination(name: str) -> Destination:
    return registry().destinations[name]


def _adapter(destination: Destination) -> DestinationAdapter:
    return call(destination.adapter)


def plan_run(
    name: str,
    run_id: str,
    *,
    dry_run: bool = False,
    store: StateStore | None = None,
    catalog: Any = None,
    adapter: DestinationAdapter | None = None,
) -> dict[str, Any]:
    """Plan one run of destination ``name`` and store the plan.

    Returns:
        The summary: counts per action and per reason rows were left alone, creates, the share of the
        destination's rows touched, ``needs_approval`` with its reasons, and ``text`` (one paragraph
        for the approval form and the log). No personal data.

    Raises:
        ConfigurationError: the destination's configuration does not match the CRM.
    """
    destination = _destination(name)
    store = store or open_state_store()
    own_adapter = adapter is None
    adapter = adapter or _adapter(destination)
    try:
        adapter.validate()
        now = utcnow()
        outbox.start_run(store, name, run_id, dry_run=dry_run)
        first_run = not outbox.has_sent_before(store, name)
        outbound = feed.read_outbound(destination.outbound_table, catalog=catalog)
        records = outbox.record_keys(store, name)
        # Rows are picked by their keys; only those needing work are read whole and checked against the
        # contract: a run with one changed row among 100,000 validates one row. A row breaking it is
        # reported (and not sent) until it changes.
        selection = select_candidates(outbound.keys(), records, now)
        whole = outbound.rows(c.external_id for c in selection.candidates)
        known = outbox.load_records(store, name, [c.external_id for c in selection.candidates if c.record])
        selection.candidates = [
            replace(c, row=whole[c.external_id], record=known.get(c.external_id, c.record))
            for c in selection.candidates
        ]
        valid, invalid = [], []
        for candidate in selection.candidates:
            if candidate.reason == DUPLICATE:
                note = (
                    f"external id {candidate.external_id} is on several rows of {destination.outbound_table}"
                )
                invalid.append(Decision(candidate, INVALID, "feed", note=note))
                continue
            reason = feed.contract_errors(candidate.row, destination.contract)
            if reason is None:
                valid.append(candidate)
            else:
                invalid.append(Decision(candidate, INVALID, "contract", note=f"contract: {reason}"))
        selection.candidates = valid
        decisions = [*invalid, *adapter.resolve(valid)]
        outbox.save_plan(store, name, run_id, decisions)
        outbox.set_run_status(store, name, run_id, "planned")
    finally:
        if own_adapter:
            adapter.close()
    actions = Counter(d.action for d in decisions)
    creates = sum(actions[a] for a in CREATE_ACTIONS)
    writes = sum(actions[a] for a in WRITE_ACTIONS)
    # "Touched" = updates of deals the sync already manages (creates have their own threshold).
    touched = (writes - creates) / len(records) if records else 0.0
    reasons = []
    if destination.approval.first_run and first_run and writes:
        reasons.append("first run against this destination")
    if creates > destination.approval.max_creates:
        reasons.append(f"{creates} creates > {destination.approval.max_creates}")
    if touched > destination.approval.max_touched_share:
        reasons.append(
            f"{touched:.0%} of the deals already synced would change "
            f"> {destination.approval.max_touched_share:.0%}"
        )
    auto = {n.strip() for n in os.environ.get(AUTO_APPROVE_VARIABLE, "").split(",") if n.strip()}
    if reasons and (name in auto or "all" in auto):
        log.info("%s: approval not asked (%s=%s): %s", name, AUTO_APPROVE_VARIABLE, ",".join(auto), reasons)
        reasons = []
    summary = {
        "destination": name,
        "run_id": run_id,
        "dry_run": dry_run,
        "rows": len(outbound),
        "candidates": len(valid) + len(invalid),
        "actions": dict(sorted(actions.items())),
        "left_alone": dict(sorted(selection.left_alone.items())),
        "creates": creates,
        "writes": writes,
        "touched_share": round(touched, 4),
        "needs_approval": bool(reasons),
        "approval_reasons": reasons,
    }
    summary["text"] = _summary_text(destination, summary)
    log.info("%s", summary["text"])
    return summary


def _summary_text(destination: Destination, summary: dict[str, Any]) -> str:
    actions = ", ".join(f"{n} {a}" for a, n in summary["actions"].items()) or "nothing to do"
    left = ", ".join(f"{n} {r}" for r, n in summary["left_alone"].items()) or "none"
    text = (
        f"{destination.title} plan {summary['run_id']}: {summary['rows']} outbound rows, "
        f"{summary['candidates']} need work → {actions}; left alone: {left}."
    )
    if summary["needs_approval"]:
        text += " Approval needed: " + "; ".join(summary["approval_reasons"]) + "."
    if summary["dry_run"]:
        text += " Dry run: nothing will be sent."
    return text


def _decision(row: dict[str, Any]) -> Decision:
    candidate = Candidate(row["external_id"], row["reason"], row["row"], None)
    diff = row["diff"] or {}
    return Decision(
        candidate,
        row["action"],
        row["rule"],
        fields=row["fields"] or {},
        diff=diff.get("changed") or {},
        protected=diff.get("protected") or {},
        crm_ids=row["crm_ids"] or {},
        note=diff.get("note"),
    )


def execute_run(
    name: str,
    run_id: str,
    *,
    store: StateStore | None = None,
    adapter: DestinationAdapter | None = None,
) -> dict[str, int]:
    """Execute the stored plan of ``run_id``: intent → CRM batch → outcomes, chunk by chunk.

    Returns:
        Counts: ``created``, ``updated``, ``unchanged``, ``protected``, ``review``, ``invalid``,
        ``failed`` (retry queued), ``dead`` (parked).
    """
    destination = _destination(name)
    store = store or open_state_store()
    decisions = [_decision(row) for row in outbox.plan_rows(store, name, run_id) if row["outcome"] is None]
    opened: list[DestinationAdapter] = []  # the adapter this call opened, when it needed one

    def the_adapter() -> DestinationAdapter:
        if adapter is not None:
            return adapter
        if not opened:
            opened.append(_adapter(destination))
        return opened[0]

    try:
        decisions = _after_an_interrupted_attempt(store, destination, run_id, decisions, the_adapter)
        return _execute(store, destination, run_id, decisions, the_adapter)
    finally:
        for own in opened:
            own.close()


def _after_an_interrupted_attempt(
    store: StateStore,
    destination: Destination,
    run_id: str,
    decisions: list[Decision],
    adapter: Callable[[], DestinationAdapter],
) -> list[Decision]:
    """The decisions to execute when an earlier attempt of this run (a task retry after the worker
    died) left records in ``intent``: its writes may have reached the CRM without their outcome being
    recorded, so every write not yet done is looked up in the CRM again (by external id first, as a plan
    does) and the plan rows are replaced. Without an interrupted attempt: ``decisions`` unchanged."""
    name = destination.name
    writes = [d for d in decisions if d.action in WRITE_ACTIONS]
    current = outbox.load_records(store, name, [d.external_id for d in writes]) if writes else {}
    interrupted = {i for i, r in current.items() if r.status == INTENT}
    if not interrupted:
        return decisions
    log.warning(
        "%s: an earlier attempt of run %s stopped with %d write(s) sent or about to be sent and no outcome "
        "recorded; the %d write(s) not done yet are looked up in the CRM again before anything is sent",
        destination.title,
        run_id,
        len(interrupted),
        len(writes),
    )
    candidates = [
        Candidate(
            d.external_id,
            RECOVER if d.external_id in interrupted else d.candidate.reason,
            d.candidate.row,
            current.get(d.external_id),
        )
        for d in writes
    ]
    fresh = adapter().resolve(candidates)
    outbox.save_plan(store, name, run_id, fresh)
    return [d for d in decisions if d.action not in WRITE_ACTIONS] + fresh


def _execute(
    store: StateStore,
    destination: Destination,
    run_id: str,
    decisions: list[Decision],
    adapter: Callable[[], DestinationAdapter],
) -> dict[str, int]:
    name = destination.name
    by_action: dict[str, list[Decision]] = {}
    for decision in decisions:
        by_action.setdefault(decision.action, []).append(decision)
    outbox.set_run_status(store, name, run_id, "executing")
    review = by_action.get(REVIEW_ACTION, []) + by_action.get(INVALID, [])
    outbox.record_without_write(store, name, run_id, review, REVIEW)
    skipped = by_action.get(SKIP_UNCHANGED, []) + by_action.get(SKIP_PROTECTED, [])
    outbox.record_without_write(store, name, run_id, skipped, "skipped")
    counts: Counter[str] = Counter(
        unchanged=len(by_action.get(SKIP_UNCHANGED, [])),
        protected=len(by_action.get(SKIP_PROTECTED, [])),
        review=len(by_action.get(REVIEW_ACTION, [])),
        invalid=len(by_action.get(INVALID, [])),
    )
    writes = [d for d in decisions if d.action in WRITE_ACTIONS]
    if not writes:
        return dict(counts)
    step = adapter().chunk_size
    for start in range(0, len(writes), step):
        chunk = writes[start : start + step]
        outbox.mark_intent(store, name, run_id, [d.external_id for d in chunk])
        outcomes = adapter().execute(chunk)
        result = outbox.record_outcomes(
            store,
            name,
            run_id,
            {d.external_id: d for d in chunk},
            outcomes,
            max_attempts=destination.max_attempts,
        )
        ok = {o.external_id for o in outcomes if o.ok}
        for decision in chunk:
            if decision.external_id in ok:
                counts["created" if decision.action in CREATE_ACTIONS else "updated"] += 1
        counts["failed"] += result["failed"]
        counts["dead"] += result["dead"]
        log.info(
            "%s: %d/%d writes done (%d failed so far)",
            destination.title,
            min(start + len(chunk), len(writes)),
            len(writes),
            counts["failed"] + counts["dead"],
        )
    return dict(counts)


def report_run(
    name: str,
    run_id: str,
    counts: dict[str, int] | None,
    *,
    dry_run: bool = False,
    store: StateStore | None = None,
    catalog: Any = None,
) -> dict[str, Any]:
    """Close the run (status, counts, queue sizes), log the report and export ``ops.reverse_etl_*``.

    Args:
        counts: what :func:`execute_run` returned; None when execution was skipped (dry run, rejected).
    """
    from elt_platform.ops import export_destination, export_plan

    store = store or open_state_store()
    queues = outbox.queue_sizes(store, name).get(name, {})
    status = "dry-run" if dry_run else ("skipped" if counts is None else "done")
    report = {
        "destination": name,
        "run_id": run_id,
        "status": status,
        **{k: (counts or {}).get(k, 0) for k in REPORT_COUNTS},
        "retry_queue": queues.get("failed", 0),
        "dead_letters": queues.get("dead", 0),
        "in_review": queues.get("review", 0),
    }
    outbox.finish_run(store, name, run_id, status, report)
    log.info(
        "%s run %s %s: %s",
        _destination(name).title,
        run_id,
        status,
        ", ".join(f"{k} {report[k]}" for k in (*REPORT_COUNTS, "retry_queue", "dead_letters")),
    )
    export_plan(name, run_id, store=store, catalog=catalog)
    export_destination(name, run_id, store=store, catalog=catalog)
    return report


REPORT_COUNTS = ("created", "updated", "unchanged", "protected", "review", "invalid", "failed", "dead")


def check_error_rate(
    name: str,
    alert: Callable[[str], None],
    *,
    store: StateStore | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The alert rule: failed / executed operations of the last hour, alerted once per breach.

    The check fails on every run while the share is over :data:`ERROR_RATE_THRESHOLD` (the DAG run
    shows red), but ``alert`` is called only when the breach opens; the first check at or under the
    threshold closes it, so the next breach alerts again.

    Args:
        name: the destination.
        alert: sends one alert text (the DAG task passes the platform notifiers).
        store: the state store (default: the configured one).
        now: the check's time (default: now).

    Returns:
        ``destination``, ``failed``, ``executed``, ``rate`` and ``breach`` (the breach's transition:
        ``ok`` or ``recovered``).

    Raises:
        ErrorRateExceeded: the share is above :data:`ERROR_RATE_THRESHOLD`.
    """
    store = store or open_state_store()
    now = now or utcnow()
    failed, executed = outbox.error_rate(store, name, window=ERROR_RATE_WINDOW, now=now)
    rate = failed / executed if executed else 0.0
    detail = (
        f"{_destination(name).title}: {failed} of {executed} operations failed in the last hour "
        f"({rate:.0%}, threshold {ERROR_RATE_THRESHOLD:.0%})"
    )
    breached = rate > ERROR_RATE_THRESHOLD
    check = observe(store, ERROR_RATE_RULE, name, breached=breached, detail=detail, now=now)
    if check.needs_alert:
        alert(f"reverse ETL {detail}; see ops.reverse_etl_plans and `elt reverse-etl status`")
        mark_alerted(store, ERROR_RATE_RULE, name, now=now)
    elif check.state == "recovered":
        log.info("error rate recovered: %s", detail)
    if breached:
        opened = f"{check.opened_at:%Y-%m-%d %H:%M} UTC" if check.opened_at else "now"
        raise ErrorRateExceeded(f"{detail}; breach open since {opened}, alerted when it opened")
    return {
        "destination": name,
        "failed": failed,
        "executed": executed,
        "rate": round(rate, 4),
        "breach": check.state,
    }

"""Pure planning: which outbound rows need work this run, and what a planned row looks like.

A row is a *candidate* when it is new, its hash changed since the last successful send, it failed and
its retry is due, or a run died between recording its intent and recording the outcome (``recover``).
Everything else is counted, not listed: an unchanged feed of 100,000 deals plans nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

# Life of an outbox record (state store ``reverse_etl_records.status``).
SENT = "sent"
INTENT = "intent"  # a write is about to happen / happened without its outcome recorded
FAILED = "failed"  # will be retried at next_attempt_at
DEAD = "dead"  # gave up after max attempts; `elt reverse-etl requeue` puts it back
REVIEW = "review"  # ambiguous match: a person must decide; requeue after fixing the CRM
SKIPPED = "skipped"  # planned and nothing to write (unchanged in the CRM or every change protected)
QUEUED = "queued"  # put back by `elt reverse-etl requeue` (from dead or review): planned on the next run
#: A record whose last write is not (yet) in the CRM: only these carry an error.
UNSENT = (INTENT, FAILED, DEAD, REVIEW, QUEUED)

# Why a row is a candidate.
NEW, CHANGED, RETRY, RECOVER, REQUEUED = "new", "changed", "retry", "recover", "requeued"
#: Several outbound rows carry the external id: none is sent (which one would be the deal?), the first is
#: reported invalid until the feed holds one.
DUPLICATE = "duplicate"

# Actions a destination adapter decides.
CREATE_CONTACT_AND_DEAL = "create-contact-and-deal"
CONVERT_LEAD = "convert-lead"
CREATE_DEAL_FOR_CONTACT = "create-deal-for-contact"
UPDATE_DEAL = "update-deal"
SKIP_UNCHANGED = "skip-unchanged"
SKIP_PROTECTED = "skip-protected"
REVIEW_ACTION = "review"
INVALID = "invalid"  # the row breaks the outbound contract: never sent, reported with the reason

WRITE_ACTIONS = frozenset({CREATE_CONTACT_AND_DEAL, CONVERT_LEAD, CREATE_DEAL_FOR_CONTACT, UPDATE_DEAL})
CREATE_ACTIONS = frozenset({CREATE_CONTACT_AND_DEAL, CONVERT_LEAD, CREATE_DEAL_FOR_CONTACT})

#: Retry delays after the 1st, 2nd, 3rd… failure (spec: 30 s → 1 min → 5 min; then 5 min).
RETRY_DELAYS = (timedelta(seconds=30), timedelta(minutes=1), timedelta(minutes=5))


@dataclass(frozen=True)
class Record:
    """The outbox state of one external id at one destination (a row of ``reverse_etl_records``)."""

    destination: str
    external_id: str
    status: str
    row_hash: str | None = None
    sent_fields: dict[str, Any] = field(default_factory=dict)
    crm_ids: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class Candidate:
    """An outbound row that needs the destination's attention this run."""

    external_id: str
    reason: str
    row: dict[str, Any]
    record: Record | None


@dataclass
class Decision:
    """What the adapter will do with one candidate, and why.

    Attributes:
        action: one of the action constants above.
        rule: the matching rule that fired (``external-id``, ``phone:lead``, ``reception-id``…, ``none``).
        fields: the destination fields to write (after protection), by destination field name.
        diff: field → ``[value in the CRM (None when creating), value we write]``.
        protected: field → ``[value a person set, value we would have written]`` (kept, not written).
        crm_ids: the CRM records it targets (``deal``, ``contact``, ``lead``).
        note: why a row is ``review`` / ``invalid``.
    """

    candidate: Candidate
    action: str
    rule: str
    fields: dict[str, Any] = field(default_factory=dict)
    diff: dict[str, list[Any]] = field(default_factory=dict)
    protected: dict[str, list[Any]] = field(default_factory=dict)
    crm_ids: dict[str, Any] = field(default_factory=dict)
    note: str | None = None

    @property
    def external_id(self) -> str:
        return self.candidate.external_id


@dataclass(frozen=True)
class Outcome:
    """The result of executing one decision."""

    external_id: str
    ok: bool
    crm_ids: dict[str, Any] = field(default_factory=dict)
    written: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    retryable: bool = True


@dataclass
class Selection:
    """Candidates of a run, and how many rows were left alone per reason."""

    candidates: list[Candidate]
    left_alone: Counter[str]


def person_key(row: dict[str, Any]) -> str:
    """Who an outbound row's CRM contact is: its phone (how a CRM finds the contact again), else the
    patient of its database. Adapters give every row of one person in a run the contact the first one
    creates (``contact_from``), so a patient's receptions never create duplicate contacts."""
    return row.get("phone") or f"patient:{row.get('source_db')}:{row.get('patient_id')}"


def select_candidates(rows: list[dict[str, Any]], records: dict[str, Record], now: datetime) -> Selection:
    """Pick the rows that need work.

    Args:
        rows: outbound rows with ``external_id`` and ``row_hash``.
        records: the destination's outbox records by external id.
        now: the planning time (retry due-ness).

    Returns:
        The candidates (in row order) and the counts of rows left alone by reason
        (``unchanged``, ``waiting-retry``, ``dead``, ``review``). An external id on several rows is one
        candidate with reason :data:`DUPLICATE`, whatever its record says.
    """
    candidates: list[Candidate] = []
    left: Counter[str] = Counter()
    times = Counter(row["external_id"] for row in rows)
    reported: set[str] = set()
    for row in rows:
        external_id = row["external_id"]
        record = records.get(external_id)
        if times[external_id] > 1:
            if external_id not in reported:
                reported.add(external_id)
                candidates.append(Candidate(external_id, DUPLICATE, row, record))
            continue
        reason = _reason(row, record, now)
        if reason in (NEW, CHANGED, RETRY, RECOVER, REQUEUED):
            candidates.append(Candidate(external_id, reason, row, record))
        else:
            left[reason] += 1
    return Selection(candidates, left)


def _reason(row: dict[str, Any], record: Record | None, now: datetime) -> str:
    if record is None:
        return NEW
    if record.status == INTENT:
        return RECOVER
    if record.status == DEAD:
        return "dead"
    if record.status == REVIEW:
        # A person resolves the ambiguity in the CRM; the row is looked at again when it changes or
        # is requeued.
        return CHANGED if record.row_hash not in (None, row["row_hash"]) else "review"
    if record.status == FAILED:
        if record.next_attempt_at is None or record.next_attempt_at <= now:
            return RETRY
        return "waiting-retry"
    if record.status == QUEUED:
        return REQUEUED
    return "unchanged" if record.row_hash == row["row_hash"] else CHANGED


def next_attempt(attempts: int, now: datetime, max_attempts: int) -> tuple[str, datetime | None]:
    """Status and retry time after the ``attempts``-th failure (1-based).

    Returns:
        ``(FAILED, when)`` while attempts remain, else ``(DEAD, None)``.
    """
    if attempts >= max_attempts:
        return DEAD, None
    delay = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
    return FAILED, now + delay

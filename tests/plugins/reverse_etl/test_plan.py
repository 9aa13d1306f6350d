"""Candidate selection, retry backoff and the protection rules — pure functions, hand-written cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from elt_platform.reverse_etl.plan import (
    DEAD,
    FAILED,
    INTENT,
    QUEUED,
    REVIEW,
    SENT,
    Record,
    next_attempt,
    select_candidates,
)
from elt_platform.reverse_etl.protection import StageRules, changes_for_update, equal

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _record(status: str, row_hash: str = "h1", **kwargs) -> Record:
    return Record("crm", "F1_1", status, row_hash=row_hash, **kwargs)


@pytest.mark.parametrize(
    ("record", "row_hash", "expected"),
    [
        (None, "h1", "new"),
        (_record(SENT), "h1", "unchanged"),
        (_record(SENT), "h2", "changed"),
        (_record(INTENT), "h1", "recover"),
        (_record(FAILED, next_attempt_at=NOW - timedelta(seconds=1)), "h1", "retry"),
        (_record(FAILED, next_attempt_at=NOW + timedelta(seconds=1)), "h1", "waiting-retry"),
        (_record(DEAD), "h2", "dead"),
        (_record(REVIEW), "h1", "review"),
        (_record(REVIEW), "h2", "changed"),
        (_record(QUEUED), "h1", "requeued"),
    ],
)
def test_a_row_is_a_candidate_only_when_it_needs_work(record, row_hash, expected):
    records = {"F1_1": record} if record else {}
    selection = select_candidates([{"external_id": "F1_1", "row_hash": row_hash}], records, NOW)
    reasons = [c.reason for c in selection.candidates] or list(selection.left_alone)
    assert reasons == [expected]


def test_unchanged_rows_are_counted_not_listed():
    rows = [{"external_id": f"F1_{i}", "row_hash": "h"} for i in range(5)]
    records = {r["external_id"]: Record("crm", r["external_id"], SENT, row_hash="h") for r in rows[:4]}
    selection = select_candidates(rows, records, NOW)
    assert [c.external_id for c in selection.candidates] == ["F1_4"]
    assert selection.left_alone == {"unchanged": 4}


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [
        (1, (FAILED, NOW + timedelta(seconds=30))),
        (2, (FAILED, NOW + timedelta(minutes=1))),
        (3, (FAILED, NOW + timedelta(minutes=5))),
        (4, (FAILED, NOW + timedelta(minutes=5))),
        (5, (DEAD, None)),
    ],
)
def test_retries_back_off_30s_1min_5min_then_park(attempts, expected):
    assert next_attempt(attempts, NOW, max_attempts=5) == expected


STAGES = StageRules(
    field="STAGE_ID",
    order=("C2:NEW", "C2:PREPARATION", "C2:UC_PLAN", "C2:UC_PREPAY", "C2:EXECUTING", "C2:WON", "C2:LOSE"),
    manual=frozenset({"C2:UC_PLAN", "C2:UC_PREPAY"}),
)


@pytest.mark.parametrize(
    ("current", "desired", "written"),
    [
        ("C2:NEW", "C2:PREPARATION", True),  # forward, automatic
        ("C2:UC_PLAN", "C2:EXECUTING", False),  # a person put it in a manual stage
        ("C2:EXECUTING", "C2:PREPARATION", False),  # never backwards
        ("C2:EXECUTING", "C2:LOSE", True),  # a cancellation closes it
        ("C2:WON", "C2:NEW", False),  # a closed deal is not reopened
    ],
)
def test_stage_moves_only_forward_and_never_out_of_a_manual_stage(current, desired, written):
    changes = changes_for_update(
        {"STAGE_ID": desired}, {"STAGE_ID": current}, {}, protected_fields=frozenset(), stages=STAGES
    )
    assert ("STAGE_ID" in changes.fields) is written
    assert ("STAGE_ID" in changes.protected) is not written


def test_a_protected_field_a_person_changed_stays():
    changes = changes_for_update(
        {"COMMENTS": "ours v2", "OPPORTUNITY": 150.0, "TITLE": "t2"},
        {"COMMENTS": "edited by a manager", "OPPORTUNITY": "100.00", "TITLE": "t1"},
        {"COMMENTS": "ours v1", "OPPORTUNITY": 100},
        protected_fields=frozenset({"COMMENTS", "OPPORTUNITY"}),
        stages=None,
    )
    # OPPORTUNITY still holds what we wrote ("100.00" == 100): ours may replace it.
    assert changes.fields == {"OPPORTUNITY": 150.0, "TITLE": "t2"}
    assert changes.protected == {"COMMENTS": ["edited by a manager", "ours v2"]}
    assert changes.diff == {"OPPORTUNITY": ["100.00", 150.0], "TITLE": ["t1", "t2"]}


def test_unchanged_values_are_not_written():
    changes = changes_for_update(
        {"OPPORTUNITY": 19999.99, "CONTACT_ID": 7, "UF_CRM_X": None},
        {"OPPORTUNITY": "19999.99", "CONTACT_ID": "7", "UF_CRM_X": ""},
        {},
        protected_fields=frozenset(),
        stages=None,
    )
    assert changes.fields == {} and changes.protected == {}


@pytest.mark.parametrize(
    ("a", "b", "same"), [("1", 1, True), ("1.50", 1.5, True), ("", None, True), ("a", "b", False)]
)
def test_crm_values_compare_by_meaning(a, b, same):
    assert equal(a, b) is same

"""The transform ledger: loaded → pending → claimed → done, stale claims reclaimed, reruns reset."""

from __future__ import annotations

from datetime import date

import pytest

from elt_platform.state.ledger import TransformLedger, list_ledger
from elt_platform.state.store import StateStore


def record_days(ledger: TransformLedger, days: list[int], run_id: str = "extract-1") -> list[str]:
    """Record one slice per day of March 2025 (in the given order); return their keys."""
    keys = []
    for day in days:
        key = f"2025-03-{day:02d}"
        ledger.record("alaqan", key, start=date(2025, 3, day), end=date(2025, 3, day + 1), run_id=run_id)
        keys.append(key)
    return keys


def statuses(ledger: TransformLedger) -> dict[str, tuple[str, str | None]]:
    return {entry.slice_key: (entry.status, entry.claimed_by) for entry in ledger.entries()}


def test_gated_slices_are_claimed_in_order_and_completed(store: StateStore) -> None:
    ledger = TransformLedger(store, "attendance")
    record_days(ledger, [3, 1, 2])

    assert ledger.mark_ready("alaqan", ["2025-03-03", "2025-03-01"], run_id="extract-1") == 2
    claimed = ledger.claim("transform-1")

    assert [(entry.slice_key, entry.start, entry.status, entry.claimed_by) for entry in claimed] == [
        ("2025-03-01", date(2025, 3, 1), "claimed", "transform-1"),
        ("2025-03-03", date(2025, 3, 3), "claimed", "transform-1"),
    ]
    assert ledger.complete("transform-1") == 2
    assert statuses(ledger) == {
        "2025-03-01": ("done", "transform-1"),
        "2025-03-02": ("loaded", None),
        "2025-03-03": ("done", "transform-1"),
    }
    assert ledger.pending() == []


def test_claim_left_by_a_killed_run_is_claimed_by_the_next(store: StateStore) -> None:
    ledger = TransformLedger(store, "attendance")
    keys = record_days(ledger, [1, 2], run_id="extract-1")
    ledger.mark_ready("alaqan", keys, run_id="extract-1")
    ledger.claim("transform-killed")

    assert [entry.slice_key for entry in ledger.pending()] == keys
    assert [entry.slice_key for entry in ledger.claim("transform-2")] == keys
    assert ledger.complete("transform-killed") == 0
    assert ledger.complete("transform-2") == 2


def test_released_slices_return_to_pending(store: StateStore) -> None:
    ledger = TransformLedger(store, "attendance")
    keys = record_days(ledger, [1, 2])
    ledger.mark_ready("alaqan", keys, run_id="extract-1")
    ledger.claim("transform-1")

    assert ledger.release("transform-1") == 2
    assert statuses(ledger) == dict.fromkeys(keys, ("pending", None))


def test_rerun_of_a_done_slice_resets_it_to_loaded(store: StateStore) -> None:
    ledger = TransformLedger(store, "attendance")
    [key] = record_days(ledger, [1], run_id="extract-1")
    ledger.mark_ready("alaqan", [key], run_id="extract-1")
    ledger.claim("transform-1")
    ledger.complete("transform-1")

    record_days(ledger, [1], run_id="extract-2")

    [entry] = ledger.entries()
    assert (entry.status, entry.run_id, entry.claimed_by) == ("loaded", "extract-2", None)
    # The first run's gate verdict was about data the rerun replaced.
    assert ledger.mark_ready("alaqan", [key], run_id="extract-1") == 0
    assert ledger.mark_ready("alaqan", [key], run_id="extract-2") == 1


def test_rerun_during_a_transform_keeps_the_slice_out_of_its_completion(store: StateStore) -> None:
    ledger = TransformLedger(store, "attendance")
    [key] = record_days(ledger, [1], run_id="extract-1")
    ledger.mark_ready("alaqan", [key], run_id="extract-1")
    ledger.claim("transform-1")

    record_days(ledger, [1], run_id="extract-2")

    assert ledger.complete("transform-1") == 0
    assert statuses(ledger) == {key: ("loaded", None)}


def test_each_domain_consumes_a_slice_on_its_own(store: StateStore) -> None:
    attendance, payroll = TransformLedger(store, "attendance"), TransformLedger(store, "payroll")
    for ledger in (attendance, payroll):
        record_days(ledger, [1])
        ledger.mark_ready("alaqan", ["2025-03-01"], run_id="extract-1")

    attendance.claim("transform-a")
    attendance.complete("transform-a")

    assert [entry.status for entry in attendance.entries()] == ["done"]
    assert [(entry.domain, entry.status) for entry in payroll.pending()] == [("payroll", "pending")]
    assert [(entry.domain, entry.status) for entry in list_ledger(store)] == [
        ("attendance", "done"),
        ("payroll", "pending"),
    ]


def test_slices_without_an_interval_sort_first(sqlite_store: StateStore) -> None:
    ledger = TransformLedger(sqlite_store, "catalog")
    ledger.record("onec", "package-b", run_id="r", status="pending")
    ledger.record("onec", "2025-03-01", start=date(2025, 3, 1), run_id="r", status="pending")
    ledger.record("onec", "package-a", run_id="r", status="pending")

    assert [entry.slice_key for entry in ledger.claim("t")] == ["package-a", "package-b", "2025-03-01"]


@pytest.mark.parametrize("status", ["claimed", "failed"])
def test_record_refuses_statuses_only_claim_may_set(sqlite_store: StateStore, status: str) -> None:
    with pytest.raises(ValueError, match="a slice is recorded as one of"):
        TransformLedger(sqlite_store, "d").record("s", "k", run_id="r", status=status)


def test_mark_ready_with_no_keys_changes_nothing(sqlite_store: StateStore) -> None:
    ledger = TransformLedger(sqlite_store, "d")
    record_days(ledger, [1])

    assert ledger.mark_ready("alaqan", [], run_id="extract-1") == 0
    assert statuses(ledger) == {"2025-03-01": ("loaded", None)}

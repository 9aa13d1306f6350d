"""The reverse-ETL engine over a real state store and a real Iceberg outbound table, with an in-memory CRM.

The CRM here is a few dicts behind the adapter protocol: what is under test is the engine — which rows
it plans, the intent/outcome commits, retries and dead letters, review rows, reruns after a crash —
so expected values are counted from the CRM dicts and the rows the test wrote, not from the engine.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import update

from elt_platform import alerts
from elt_platform.alerts import PlatformNotifier, send_alert
from elt_platform.registry import ApprovalPolicy, Destination
from elt_platform.reverse_etl import runs
from elt_platform.reverse_etl.plan import (
    CREATE_CONTACT_AND_DEAL,
    CREATE_DEAL_FOR_CONTACT,
    REVIEW_ACTION,
    SKIP_UNCHANGED,
    UPDATE_DEAL,
    Candidate,
    Decision,
    Outcome,
)
from elt_platform.reverse_etl.protection import changes_for_update
from elt_platform.state import open_state_store, outbox
from elt_platform.state.schema import reverse_etl_records

TABLE = "outbound.test_deals"
CONTRACT = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["external_id", "row_hash", "phone", "amount"],
    "properties": {
        "external_id": {"type": "string", "pattern": "^F[0-9]+_[0-9]+$"},
        "phone": {"type": ["string", "null"], "pattern": "^\\+7[0-9]{10}$"},
        "amount": {"type": "number", "minimum": 0},
    },
}


class Crash(BaseException):
    """The worker dies (not an Exception: nothing may catch it)."""


class FakeCrm:
    """Deals keyed by CRM id with the external id in a field; contacts with one phone each."""

    def __init__(self) -> None:
        self.deals: dict[int, dict] = {}
        self.contacts: dict[int, dict] = {}
        self.next_id = 1
        self.writes = 0
        self.failing: set[str] = set()
        self.crash_after: int | None = None

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def write(self) -> None:
        self.writes += 1
        if self.crash_after is not None and self.writes > self.crash_after:
            raise Crash


class FakeAdapter:
    chunk_size = 2

    def __init__(self, crm: FakeCrm) -> None:
        self.crm = crm

    def validate(self) -> None:
        pass

    def close(self) -> None:
        pass

    def resolve(self, candidates: list[Candidate]) -> list[Decision]:
        decisions = []
        for c in candidates:
            desired = {"amount": c.row["amount"], "phone": c.row["phone"]}
            deal = next((i for i, d in self.crm.deals.items() if d["external_id"] == c.external_id), None)
            if deal is not None:
                last = c.record.sent_fields if c.record else {}
                ch = changes_for_update(
                    desired, self.crm.deals[deal], last, protected_fields=frozenset(), stages=None
                )
                action = UPDATE_DEAL if ch.fields else SKIP_UNCHANGED
                decisions.append(
                    Decision(c, action, "external-id", ch.fields, ch.diff, crm_ids={"deal": deal})
                )
                continue
            contacts = [i for i, p in self.crm.contacts.items() if p["phone"] == c.row["phone"]]
            if len(contacts) > 1:
                decisions.append(
                    Decision(c, REVIEW_ACTION, "phone:contact", note="2 contacts share the phone")
                )
            elif contacts:
                decisions.append(
                    Decision(
                        c, CREATE_DEAL_FOR_CONTACT, "phone:contact", desired, crm_ids={"contact": contacts[0]}
                    )
                )
            else:
                decisions.append(Decision(c, CREATE_CONTACT_AND_DEAL, "none", desired))
        return decisions

    def execute(self, decisions: list[Decision]) -> list[Outcome]:
        outcomes = []
        for d in decisions:
            if d.external_id in self.crm.failing:
                outcomes.append(Outcome(d.external_id, ok=False, error="HTTP 503 from the CRM"))
                continue
            self.crm.write()
            if d.action == UPDATE_DEAL:
                self.crm.deals[d.crm_ids["deal"]].update(d.fields)
                outcomes.append(Outcome(d.external_id, ok=True, written=d.fields))
                continue
            contact = d.crm_ids.get("contact")
            if contact is None:
                contact = self.crm.new_id()
                self.crm.contacts[contact] = {"phone": d.fields["phone"]}
            deal = self.crm.new_id()
            self.crm.deals[deal] = {"external_id": d.external_id, "contact": contact, **d.fields}
            outcomes.append(
                Outcome(d.external_id, ok=True, crm_ids={"deal": deal, "contact": contact}, written=d.fields)
            )
        return outcomes


def _row(n: int, amount: float = 100.0, phone: str | None = None) -> dict:
    row = {"external_id": f"F1_{n}", "phone": phone or f"+7701000{n:04d}", "amount": amount}
    row["row_hash"] = hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()
    return row


@pytest.fixture
def env(catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    contract = tmp_path / "contract.json"
    contract.write_text(json.dumps(CONTRACT))
    destination = Destination(
        name="test",
        title="Test CRM",
        owner="data",
        start_date=datetime(2026, 1, 1),
        outbound_table=TABLE,
        domain="clinic",
        adapter="unused:adapter",
        contract=str(contract),
        doc="test",
        max_attempts=3,
        approval=ApprovalPolicy(first_run=True, max_creates=100, max_touched_share=0.5),
    )
    monkeypatch.setattr(runs, "_destination", lambda name: destination)
    catalog.create_namespace("outbound")
    crm = FakeCrm()
    store = open_state_store()

    def publish(rows: list[dict]) -> None:
        data = pa.Table.from_pylist(rows)
        try:
            table = catalog.load_table(TABLE)
        except Exception:
            table = catalog.create_table(TABLE, schema=data.schema)
        table.overwrite(data)

    def run(run_id: str, *, dry_run: bool = False) -> tuple[dict, dict | None]:
        adapter = FakeAdapter(crm)
        summary = runs.plan_run(
            "test", run_id, dry_run=dry_run, store=store, catalog=catalog, adapter=adapter
        )
        counts = None if dry_run else runs.execute_run("test", run_id, store=store, adapter=adapter)
        runs.report_run("test", run_id, counts, dry_run=dry_run, store=store, catalog=catalog)
        return summary, counts

    return crm, store, publish, run


def _deals_per_external_id(crm: FakeCrm) -> dict[str, int]:
    counts: dict[str, int] = {}
    for deal in crm.deals.values():
        counts[deal["external_id"]] = counts.get(deal["external_id"], 0) + 1
    return counts


def test_first_run_creates_every_row_and_a_rerun_sends_nothing(env):
    crm, store, publish, run = env
    publish([_row(n) for n in range(5)])
    summary, counts = run("r1")
    assert summary["needs_approval"] and summary["approval_reasons"] == ["first run against this destination"]
    assert counts["created"] == 5 and len(crm.deals) == 5 and crm.writes == 5
    summary, counts = run("r2")
    assert summary["candidates"] == 0 and summary["left_alone"] == {"unchanged": 5}
    assert crm.writes == 5 and not summary["needs_approval"]


def test_a_changed_row_updates_exactly_one_deal(env):
    crm, store, publish, run = env
    publish([_row(n) for n in range(5)])
    run("r1")
    publish([_row(n, amount=250.0 if n == 3 else 100.0) for n in range(5)])
    summary, counts = run("r2")
    assert summary["actions"] == {UPDATE_DEAL: 1}
    assert counts["updated"] == 1 and crm.writes == 6
    assert [d["amount"] for d in crm.deals.values() if d["external_id"] == "F1_3"] == [250.0]


def test_a_run_killed_after_writes_and_rerun_creates_nothing_twice(env):
    crm, store, publish, run = env
    publish([_row(n) for n in range(7)])
    crm.crash_after = 3  # the 4th write raises after the 3rd deal exists but before any outcome commit
    with pytest.raises(Crash):
        run("r1")
    statuses = {r.external_id: r.status for r in outbox.load_records(store, "test").values()}
    assert list(statuses.values()).count("intent") == 2  # the chunk in flight (chunk size 2)
    crm.crash_after = None
    run("r2")
    assert _deals_per_external_id(crm) == {f"F1_{n}": 1 for n in range(7)}
    assert {r.status for r in outbox.load_records(store, "test").values()} == {"sent"}


def test_failed_rows_are_retried_with_backoff_then_parked_and_requeued(env):
    crm, store, publish, run = env
    publish([_row(n) for n in range(3)])
    crm.failing = {"F1_1"}
    for attempt, run_id in enumerate(("r1", "r2", "r3"), start=1):
        _, counts = run(run_id)
        record = outbox.load_records(store, "test")["F1_1"]
        assert record.attempts == attempt and record.last_error == "HTTP 503 from the CRM"
        if attempt < 3:
            assert record.status == "failed"
            due = record.next_attempt_at
            assert due is not None and due - datetime.now(UTC) <= timedelta(
                seconds=30 if attempt == 1 else 60
            )
            # Make the retry due now (the test does not wait for the backoff).
            with store.transaction() as conn:
                conn.execute(
                    update(reverse_etl_records).values(
                        next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)
                    )
                )
        else:
            assert record.status == "dead" and counts["dead"] == 1
    summary, _ = run("r4")
    assert summary["left_alone"].get("dead") == 1 and summary["candidates"] == 0
    crm.failing = set()
    assert outbox.requeue(store, "test") == 1
    summary, counts = run("r5")
    assert summary["actions"] == {CREATE_CONTACT_AND_DEAL: 1} and counts["created"] == 1
    assert _deals_per_external_id(crm) == {"F1_0": 1, "F1_1": 1, "F1_2": 1}


def test_an_ambiguous_phone_is_a_review_row_and_creates_nothing(env):
    crm, store, publish, run = env
    crm.contacts = {100: {"phone": "+77010000001"}, 101: {"phone": "+77010000001"}}
    publish([_row(1), _row(2)])
    summary, counts = run("r1")
    assert summary["actions"] == {REVIEW_ACTION: 1, CREATE_CONTACT_AND_DEAL: 1}
    assert counts["review"] == 1 and _deals_per_external_id(crm) == {"F1_2": 1}
    review = [r for r in outbox.list_records(store) if r["status"] == "review"]
    assert [(r["external_id"], r["last_error"]) for r in review] == [("F1_1", "2 contacts share the phone")]
    summary, _ = run("r2")  # unchanged: not looked at again
    assert summary["left_alone"] == {"review": 1, "unchanged": 1}


def test_a_row_breaking_the_contract_is_never_sent(env):
    crm, store, publish, run = env
    publish([_row(1), _row(2, phone="8 701 000 0002")])
    summary, counts = run("r1")
    assert summary["actions"] == {"invalid": 1, CREATE_CONTACT_AND_DEAL: 1}
    assert _deals_per_external_id(crm) == {"F1_1": 1} and counts["invalid"] == 1


def test_a_dry_run_plans_and_sends_nothing(env):
    crm, store, publish, run = env
    publish([_row(n) for n in range(3)])
    summary, _ = run("r1", dry_run=True)
    assert summary["actions"] == {CREATE_CONTACT_AND_DEAL: 3} and crm.writes == 0
    assert outbox.load_records(store, "test") == {}
    assert [r["status"] for r in outbox.list_runs(store)] == ["dry-run"]


def test_exports_mask_phones_and_append_one_plan_per_run(env, catalog, monkeypatch):
    crm, store, publish, run = env
    monkeypatch.setenv("ELT_PII_MASKING", "hash")
    publish([_row(1)])
    run("r1")
    run("r2")
    plans = catalog.load_table("ops.reverse_etl_plans").scan().to_arrow().to_pylist()
    assert [(p["run_id"], p["action"]) for p in plans] == [("r1", CREATE_CONTACT_AND_DEAL)]
    state = catalog.load_table("ops.reverse_etl_state").scan().to_arrow().to_pylist()
    assert "+77010000001" not in state[0]["sent_fields"] and "***01" in state[0]["sent_fields"]
    assert [
        r["status"] for r in catalog.load_table("ops.reverse_etl_runs").scan().to_arrow().to_pylist()
    ] == [
        "done",
        "done",
    ]


def test_error_rate_over_ten_percent_raises(env):
    crm, store, publish, run = env
    publish([_row(n) for n in range(10)])
    crm.failing = {"F1_0", "F1_1"}
    run("r1")
    with pytest.raises(runs.ErrorRateExceeded, match="2 of 10 operations failed"):
        runs.check_error_rate("test", lambda text: None, store=store)


class _Recorder:
    """An alert channel that keeps what it was sent."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, context, text: str) -> None:
        self.texts.append(text)


def _alert_task(store) -> None:
    """The DAG's ``alert`` task: the check with the platform's alerts, its failure callback after it."""
    try:
        runs.check_error_rate("test", send_alert, store=store)
    except Exception as exc:
        PlatformNotifier().notify({"run_id": "r", "exception": exc})


def test_an_error_rate_breach_notifies_once_and_again_after_recovery(env, monkeypatch):
    crm, store, publish, run = env
    recorder = _Recorder()
    monkeypatch.setattr(alerts, "_channels", lambda: [recorder])
    publish([_row(n) for n in range(10)])
    crm.failing = {"F1_0", "F1_1"}
    run("r1")  # 2 of 10 failed: 20 %
    for _ in range(3):
        with pytest.raises(runs.ErrorRateExceeded):
            runs.check_error_rate("test", send_alert, store=store)
        _alert_task(store)
    assert len(recorder.texts) == 1
    assert recorder.texts[0].startswith("reverse ETL Test CRM: 2 of 10 operations failed in the last hour")

    crm.failing = set()
    publish([_row(n) for n in range(40)])
    run("r2")  # 30 more sent (the 2 failed wait for their backoff): 2 of 40, 5 %
    assert runs.check_error_rate("test", send_alert, store=store)["breach"] == "recovered"
    assert len(recorder.texts) == 1

    crm.failing = {f"F1_{n}" for n in range(40, 50)}
    publish([_row(n) for n in range(50)])
    run("r3")  # 10 more failed: 12 of 50, 24 %
    _alert_task(store)
    _alert_task(store)
    assert len(recorder.texts) == 2
    assert recorder.texts[1].startswith("reverse ETL Test CRM: 12 of 50 operations failed")


def test_an_external_id_on_two_feed_rows_is_never_sent(env):
    """Which of two rows would be the deal? Neither: one invalid decision with the reason, nothing
    written; once the feed holds one row for it, that row is sent (a row equal to the one reported
    waits for ``elt reverse-etl requeue --review``, as any review row)."""
    crm, store, publish, run = env
    publish([_row(1), _row(2), _row(2, amount=300.0)])
    summary, counts = run("r1")
    assert summary["actions"] == {"invalid": 1, CREATE_CONTACT_AND_DEAL: 1}
    assert _deals_per_external_id(crm) == {"F1_1": 1} and counts["invalid"] == 1
    plan = {r["external_id"]: r for r in outbox.plan_rows(store, "test", "r1")}
    assert "on several rows" in plan["F1_2"]["diff"]["note"]
    summary, _ = run("r2")  # still duplicated: reported again, still nothing sent
    assert summary["actions"] == {"invalid": 1} and _deals_per_external_id(crm) == {"F1_1": 1}

    publish([_row(1), _row(2, amount=300.0)])
    summary, counts = run("r3")
    assert summary["actions"] == {CREATE_CONTACT_AND_DEAL: 1}
    assert _deals_per_external_id(crm) == {"F1_1": 1, "F1_2": 1}
    assert [d["amount"] for d in crm.deals.values() if d["external_id"] == "F1_2"] == [300.0]

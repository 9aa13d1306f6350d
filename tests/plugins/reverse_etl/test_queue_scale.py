"""The reverse-ETL queue at 100,000 records: an outage fails them, retries wait for their backoff, the
last attempt parks them as dead letters, ``elt reverse-etl requeue`` puts them back, and the run after
the outage delivers every one of them exactly once.

The engine (``runs.plan_run`` / ``runs.execute_run``) runs over a real SQLite state store and a real
Iceberg outbound table of 120,000 rows; the CRM is an in-memory index behind the adapter protocol (the
sandboxes would spend minutes on HTTP at this size, and the question here is the queue, not the CRM).
Time is a fake clock the test moves across the backoff delays (30 s, then 1 min). Expected counts come
from the rows the test published and the outage it staged, never from the engine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.plugins.reverse_etl.outbound_tables import publish_outbound

from elt_platform.registry import ApprovalPolicy, Destination
from elt_platform.reverse_etl import commands, runs
from elt_platform.reverse_etl.plan import (
    CREATE_CONTACT_AND_DEAL,
    SKIP_UNCHANGED,
    Candidate,
    Decision,
    Outcome,
)
from elt_platform.state import open_state_store, outbox

pytestmark = [pytest.mark.integration]

TABLE = "outbound.scale_deals"
ROWS = 120_000
#: Rows delivered before the outage begins; the other 100,000 live through it.
DELIVERED_FIRST = 20_000
CONTRACT = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["external_id", "row_hash", "phone", "amount"],
    "properties": {
        "external_id": {"type": "string", "pattern": "^F1_[0-9]+$"},
        "phone": {"type": "string", "pattern": "^\\+7[0-9]{10}$"},
        "amount": {"type": "number", "minimum": 0},
    },
}


def outbound_row(n: int) -> dict[str, Any]:
    row: dict[str, Any] = {"external_id": f"F1_{n:06d}", "phone": f"+7706{n:07d}", "amount": 5000.0}
    row["row_hash"] = hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()
    return row


class Crm:
    """Deals by id, indexed by external id. Down (every write answered 503) from its
    ``down_from``-th write request on, until ``down_from`` is None again."""

    def __init__(self) -> None:
        self.deals: dict[int, str] = {}
        self.by_external_id: dict[str, list[int]] = {}
        self.down_from: int | None = None
        self.requests = 0

    @property
    def down(self) -> bool:
        return self.down_from is not None and self.requests >= self.down_from

    def create(self, external_id: str) -> int:
        deal = len(self.deals) + 1
        self.deals[deal] = external_id
        self.by_external_id.setdefault(external_id, []).append(deal)
        return deal


class Adapter:
    """The adapter protocol over :class:`Crm`: a deal found by external id is unchanged, else created."""

    chunk_size = 500

    def __init__(self, crm: Crm) -> None:
        self.crm = crm

    def validate(self) -> None:
        pass

    def close(self) -> None:
        pass

    def resolve(self, candidates: list[Candidate]) -> list[Decision]:
        decisions = []
        for candidate in candidates:
            found = self.crm.by_external_id.get(candidate.external_id)
            if found:
                decisions.append(
                    Decision(candidate, SKIP_UNCHANGED, "external-id", crm_ids={"deal": found[0]})
                )
            else:
                fields = {"amount": candidate.row["amount"], "phone": candidate.row["phone"]}
                decisions.append(Decision(candidate, CREATE_CONTACT_AND_DEAL, "none", fields))
        return decisions

    def execute(self, decisions: list[Decision]) -> list[Outcome]:
        self.crm.requests += 1
        if self.crm.down:
            return [Outcome(d.external_id, ok=False, error="HTTP 503 from the CRM") for d in decisions]
        return [
            Outcome(
                d.external_id, ok=True, crm_ids={"deal": self.crm.create(d.external_id)}, written=d.fields
            )
            for d in decisions
        ]


START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def engine(catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    contract = tmp_path / "contract.json"
    contract.write_text(json.dumps(CONTRACT))
    destination = Destination(
        name="scale",
        title="Scale CRM",
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
    clock = Clock()
    monkeypatch.setattr(runs, "utcnow", clock)
    monkeypatch.setattr(outbox, "utcnow", clock)
    crm = Crm()
    store = open_state_store()

    def run(run_id: str, *, at: timedelta) -> tuple[dict, dict]:
        """Plan and execute run ``run_id`` at ``at`` after 09:00, as the DAG's tasks do."""
        clock.now = START + at
        adapter = Adapter(crm)
        summary = runs.plan_run("scale", run_id, store=store, catalog=catalog, adapter=adapter)
        return summary, runs.execute_run("scale", run_id, store=store, adapter=adapter)

    return crm, store, run


def statuses(store) -> Counter[str]:
    return Counter(outbox.queue_sizes(store, "scale").get("scale", {}))


def test_an_outage_of_100000_records_parks_them_and_a_requeue_delivers_each_once(engine, catalog, capsys):
    crm, store, run = engine
    rows = [outbound_row(n) for n in range(ROWS)]
    first, rest = rows[:60_000], rows[60_000:]
    outage = {row["external_id"] for row in rows[DELIVERED_FIRST:]}

    # 09:00:00 — the first 60,000 rows; the CRM goes down after delivering 20,000 of them.
    publish_outbound(catalog, TABLE, first)
    crm.down_from = DELIVERED_FIRST // Adapter.chunk_size + 1
    _, counts = run("r1", at=timedelta(0))
    assert (counts["created"], counts["failed"]) == (DELIVERED_FIRST, 40_000)
    # 09:00:20 — all 120,000 rows published: 60,000 new ones fail too (due at 09:00:50); the 40,000 of
    # r1 are not due before 09:00:30.
    publish_outbound(catalog, TABLE, rows)
    summary, counts = run("r2", at=timedelta(seconds=20))
    assert summary["left_alone"] == {"unchanged": DELIVERED_FIRST, "waiting-retry": 40_000}
    assert summary["candidates"] == len(rest) and counts["failed"] == len(rest)
    assert statuses(store) == {"sent": DELIVERED_FIRST, "failed": 100_000}
    # 09:00:35 — only r1's failures are due.
    summary, counts = run("r3", at=timedelta(seconds=35))
    assert summary["candidates"] == 40_000
    assert summary["left_alone"] == {"unchanged": DELIVERED_FIRST, "waiting-retry": len(rest)}
    # 09:01:00 — r2's failures are due (their 2nd attempt); r1's wait for 09:01:35.
    summary, counts = run("r4", at=timedelta(minutes=1))
    assert summary["candidates"] == len(rest) and counts["failed"] == len(rest)
    records = outbox.load_records(store, "scale")
    assert Counter(r.attempts for r in records.values() if r.status == "failed") == {2: 100_000}
    # 09:10:00 — every failure is due for its 3rd and last attempt: 100,000 dead letters.
    summary, counts = run("r5", at=timedelta(minutes=10))
    assert summary["candidates"] == 100_000 and counts["dead"] == 100_000
    assert statuses(store) == {"sent": DELIVERED_FIRST, "dead": 100_000}
    # 09:20:00 — dead letters are parked: nothing is planned, nothing sent.
    requests = crm.requests
    summary, counts = run("r6", at=timedelta(minutes=20))
    assert summary["left_alone"] == {"unchanged": DELIVERED_FIRST, "dead": 100_000}
    assert summary["candidates"] == 0 and crm.requests == requests

    # The CRM is back; an operator re-queues the dead letters; the next run catches up.
    crm.down_from = None
    assert commands.cmd_requeue(argparse.Namespace(destination="scale", review=False)) == 0
    assert "scale: 100,000 record(s) re-queued (dead)" in capsys.readouterr().out
    before = set(crm.deals)
    summary, counts = run("r7", at=timedelta(minutes=30))
    assert summary["actions"] == {CREATE_CONTACT_AND_DEAL: 100_000} and counts["created"] == 100_000

    assert {crm.deals[deal] for deal in set(crm.deals) - before} == outage
    assert {e for e, deals in crm.by_external_id.items() if len(deals) != 1} == set()
    assert set(crm.by_external_id) == {row["external_id"] for row in rows}
    assert statuses(store) == {"sent": ROWS}
    summary, _ = run("r8", at=timedelta(minutes=40))
    assert summary["candidates"] == 0 and summary["left_alone"] == {"unchanged": ROWS}

"""A reverse-ETL run SIGKILLed half-way against the real CRM sandboxes, then rerun: nothing is created twice.

The run — ``runs.plan_run`` then ``runs.execute_run``, as the DAG's tasks call them — works in a child
process against a sandbox served by this one (Bitrix24 or amoCRM, through the real adapters and clients).
The sandbox holds back the answer of the write request after which it has recorded ``KILL_AFTER`` deal
writes: the CRM has written, the child waits for the answer and its outbox still says ``intent`` — the
window the outbox's intent records exist for. The child is SIGKILLed there. The run is then finished
in this process the two ways Airflow finishes it — the ``execute`` task's retry (same run id) or the next
DAG run (a new plan) — and the CRM's own state is checked: one deal per external id, one contact per
person, and every outbox record ``sent``. Expected sets come from the rows the test published.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.plugins.reverse_etl.outbound_tables import publish_outbound

from elt_platform.config import REPO_ROOT
from elt_platform.reverse_etl import runs
from elt_platform.state import open_state_store, outbox

pytestmark = [pytest.mark.integration]

#: Outbound rows; rows 9, 19, 29… are a second reception of the patient of the row before (same phone,
#: same patient): 180 people. Chunks of 50 rows, so the kill lands in the 2nd of 4 chunks.
ROWS = 200
#: Deal writes the sandbox records before it holds an answer back (the kill comes while it is held).
KILL_AFTER = 60
CHILD_TIMEOUT_SECONDS = 45.0
#: The run in the child: exactly the DAG's ``plan`` then ``execute`` task bodies.
CHILD = "import sys; from elt_platform.reverse_etl import runs; runs.plan_run(sys.argv[1], 'r1'); " + (
    "runs.execute_run(sys.argv[1], 'r1')"
)
BRANCHES = {"bitrix24": (9, "Филиал 9"), "amocrm": (1, "Дентал Люкс Есиль")}


def person(n: int) -> int:
    return n - 1 if n % 10 == 9 else n


def phone(n: int) -> str:
    # Mobile code 706: neither sandbox generator uses it, so every person is new to the CRM.
    return f"+7706{person(n):07d}"


def outbound_row(crm: str, n: int) -> dict[str, Any]:
    """Reception ``n`` as the outbound model writes it: the contract's columns, its ``row_hash``."""
    contract = json.loads((Path(REPO_ROOT) / "schemas/contracts" / crm / "deal.schema.json").read_text())
    branch_number, branch_name = BRANCHES[crm]
    values: dict[str, Any] = {
        "external_id": f"F{branch_number}_{7000 + n}",
        "deal_title": f"Пациент {person(n)} — 2026-11-30 {branch_name}",
        "funnel": "primary",
        "stage_code": "consultation_scheduled",
        "status": "scheduled",
        "patient_full_name": f"Сейткали{person(n)} Айгерим",
        "phone": phone(n),
        "patient_number": str(200_000 + person(n)),
        "reception_id": 7000 + n,
        "reception_date": "2026-11-30",
        "plan_start_iso": "2026-11-30T10:00:00+05:00",
        "plan_end_iso": "2026-11-30T10:30:00+05:00",
        "branch_name": branch_name,
        "armchair_name": "Кресло 1",
        "doctor_name": "Доктор А",
        "doctor_speciality": "Терапевт",
        "services": "Консультация",
        "amount": 5000.0,
        "cancel_reason": None,
        "comment": f"запись {n}",
        "source_db": str(branch_number),
        "branch_number": branch_number,
        "patient_id": 500_000 + person(n),
        "completed_receptions_before": 0,
        "changed_at": "2026-11-29T12:00:00",
    }
    row = {name: values[name] for name in contract["properties"] if name != "row_hash"}
    sent = {name: None if row[name] is None else str(row[name]) for name in contract["x-sent-fields"]}
    text = json.dumps(sent, ensure_ascii=False, separators=(",", ":"))
    row["row_hash"] = hashlib.sha256(text.encode()).hexdigest()
    return row


def digits(value: Any) -> str:
    return "".join(ch for ch in str(value) if ch.isdigit())


class HoldAnswer:
    """ASGI wrapper of a sandbox app: the first API answer sent once ``reached()`` is true is held back
    (the request's handler has run: the CRM wrote) until :attr:`release` is set."""

    def __init__(self, app: Any, reached: Callable[[], bool]) -> None:
        self.app = app
        self.reached = reached
        self.held = threading.Event()
        self.release = threading.Event()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.held.is_set() or "__sandbox" in scope["path"]:
            await self.app(scope, receive, send)
            return

        async def held_send(message: dict) -> None:
            if message["type"] == "http.response.start" and not self.held.is_set() and self.reached():
                self.held.set()
                while not self.release.is_set():
                    await asyncio.sleep(0.01)
            await send(message)

        await self.app(scope, receive, held_send)


@dataclass
class Crm:
    """One sandbox as the test reads it: deals per external id, contacts per phone, deal writes so far."""

    name: str
    deals: Callable[[], Counter[str]]
    contacts: Callable[[], Counter[str]]
    deal_writes: Callable[[], int]


def bitrix24(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Crm, HoldAnswer]]:
    from elt_platform.destinations.bitrix24.mapping import load_config
    from elt_platform.sandbox.bitrix24.server import Bitrix24SandboxServer

    external_id_field = load_config().external_id_field
    server = Bitrix24SandboxServer(drain_per_second=1000, burst=1000)

    def deals() -> Counter[str]:
        return Counter(str(d.get(external_id_field) or "") for d in server.portal.records("deal"))

    def contacts() -> Counter[str]:
        return Counter(
            digits(p["VALUE"]) for c in server.portal.records("contact") for p in c.get("PHONE") or []
        )

    crm = Crm("bitrix24", deals, contacts, lambda: len(server.commands("crm.deal.add")))
    hold = HoldAnswer(server.app, lambda: crm.deal_writes() >= KILL_AFTER)
    server.app = hold  # type: ignore[assignment]  # uvicorn serves any ASGI app
    with server:
        connection = {
            "conn_type": "http",
            "host": server.webhook_url,
            "extra": {"max_retries": 1, "requests_per_second": 100, "burst": 200},
        }
        monkeypatch.setenv("AIRFLOW_CONN_CRM_BITRIX24", json.dumps(connection))
        yield crm, hold
        hold.release.set()


def amocrm(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Crm, HoldAnswer]]:
    from elt_platform.sandbox.amocrm.account import CLINIC, RECEPTION_ID_FIELD
    from elt_platform.sandbox.amocrm.generator import AmoCrmDataset
    from elt_platform.sandbox.amocrm.server import AmoCrmSandboxServer

    now = datetime(2026, 11, 1, tzinfo=UTC)
    dataset = AmoCrmDataset(seed=3, leads=10, start=now - timedelta(days=30), now=now, clinic=CLINIC)
    token = "amocrm-crash-test-token-7c2d"
    server = AmoCrmSandboxServer(dataset, long_lived_token=token)
    server.sandbox.rate_limiter = None

    def field(record: dict, **match: Any) -> list[Any]:
        return [
            v.get("value")
            for item in record.get("custom_fields_values") or []
            if all(item.get(k) == want for k, want in match.items())
            for v in item["values"]
        ]

    def deals() -> Counter[str]:
        # A lead's external id: its branch and the reception id its field holds, F1_<reception>.
        branch = BRANCHES["amocrm"][0]
        return Counter(
            f"F{branch}_{reception}"
            for lead in dataset.records("leads")
            for reception in field(lead, field_id=RECEPTION_ID_FIELD)
        )

    def contacts() -> Counter[str]:
        return Counter(
            digits(value)
            for contact in dataset.records("contacts")
            for value in field(contact, field_code="PHONE")
        )

    baseline = sum(deals().values())
    crm = Crm("amocrm", deals, contacts, lambda: sum(deals().values()) - baseline)
    hold = HoldAnswer(server.app, lambda: crm.deal_writes() >= KILL_AFTER)
    server.app = hold  # type: ignore[assignment]  # uvicorn serves any ASGI app
    with server:
        connection = {
            "conn_type": "http",
            "host": server.base_url,
            "password": token,
            "extra": {"requests_per_second": 100, "max_retries": 1},
        }
        monkeypatch.setenv("AIRFLOW_CONN_AMOCRM_DEFAULT", json.dumps(connection))
        yield crm, hold
        hold.release.set()


SANDBOXES = {"bitrix24": bitrix24, "amocrm": amocrm}


@pytest.fixture(params=sorted(SANDBOXES))
def sandbox(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Crm, HoldAnswer]]:
    yield from SANDBOXES[request.param](monkeypatch)


def kill_mid_run(crm: Crm, hold: HoldAnswer, tmp_path: Path) -> None:
    """Run plan + execute in a child; SIGKILL it while the sandbox holds the answer of a write."""
    log = tmp_path / "child.log"
    with log.open("wb") as output:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, crm.name],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(["plugins", "."])},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + CHILD_TIMEOUT_SECONDS
            while not hold.held.wait(0.1):
                assert child.poll() is None, f"the run ended before the kill:\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"no write was held:\n{log.read_text()[-3000:]}"
            assert child.poll() is None
            child.send_signal(signal.SIGKILL)
            assert child.wait(10) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    hold.release.set()


@pytest.mark.parametrize("rerun", ["execute-retry", "next-run"])
def test_a_run_killed_after_crm_writes_and_rerun_creates_nothing_twice(sandbox, catalog, tmp_path, rerun):
    crm, hold = sandbox
    rows = [outbound_row(crm.name, n) for n in range(ROWS)]
    publish_outbound(catalog, f"outbound.{crm.name}_deals", rows)
    expected_deals = {row["external_id"] for row in rows}
    people = {digits(row["phone"]) for row in rows}
    assert len(people) == 180

    kill_mid_run(crm, hold, tmp_path)

    at_kill = {external_id for external_id in crm.deals() if external_id in expected_deals}
    store = open_state_store()
    intent = {e for e, r in outbox.load_records(store, crm.name).items() if r.status == "intent"}
    assert KILL_AFTER <= len(at_kill) < ROWS  # killed mid-run
    # The chunk in flight: the CRM wrote some of its deals, the outbox never heard of them.
    assert intent & at_kill

    if rerun == "execute-retry":  # Airflow retries the killed `execute` task of the same DAG run
        counts = runs.execute_run(crm.name, "r1")
        runs.report_run(crm.name, "r1", counts, catalog=catalog)
    else:  # the next DAG run plans again
        runs.plan_run(crm.name, "r2", catalog=catalog)
        counts = runs.execute_run(crm.name, "r2")
        runs.report_run(crm.name, "r2", counts, catalog=catalog)

    deals, contacts = crm.deals(), crm.contacts()
    assert {e: deals[e] for e in sorted(expected_deals) if deals[e] != 1} == {}  # external id → deals
    assert {p: contacts[p] for p in sorted(people) if contacts[p] != 1} == {}  # phone → contacts
    statuses = Counter(r.status for r in outbox.load_records(store, crm.name).values())
    assert statuses == {"sent": ROWS}

"""The reverse-ETL DAG's approval step through Airflow itself (``dag.test()``, the HITL trigger run inline).

A first run against a CRM always asks a person. A thread plays the person: it waits for Airflow's
``hitl_detail`` row of the ``approve`` task and answers it. Rejected → ``execute`` is skipped and the
sandbox portal receives no write; approved → the deals exist.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import pytest
from tests.plugins.destinations.bitrix24.test_sync_sandbox import outbound_row
from tests.plugins.reverse_etl.outbound_tables import publish_outbound

from elt_platform.local_run import run_dag
from elt_platform.state import open_state_store, outbox

sandbox_server = pytest.importorskip("elt_platform.sandbox.bitrix24.server")


def _answer(choice: str, stop: threading.Event, since: datetime) -> None:
    """Answer the pending approval as Airflow's Required Actions page does (the HITL REST route's steps:
    record the response, then resume the task parked in ``awaiting_input``)."""
    # Imported by the test before this thread starts: two threads importing Airflow's models at once
    # deadlock on SQLAlchemy's mapper configuration.
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import handle_event_submit
    from airflow.triggers.base import TriggerEvent
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    while not stop.is_set():
        with create_session() as session:
            # Only this run's question: an earlier, killed run may have left one unanswered.
            pending = session.query(HITLDetail).filter(
                HITLDetail.responded_at.is_(None), HITLDetail.created_at >= since
            )
            for detail in pending.all():
                ti = session.get(TaskInstance, detail.ti_id)
                if ti is None or ti.state != TaskInstanceState.AWAITING_INPUT:
                    continue
                detail.chosen_options = [choice]
                detail.responded_at = datetime.now(UTC)
                detail.responded_by = {"id": "1", "name": "head-of-sales"}
                session.add(detail)
                handle_event_submit(
                    TriggerEvent(detail.as_resume_event_payload()), task_instance=ti, session=session
                )
                return
        time.sleep(0.3)


@pytest.fixture
def portal(lakehouse_env, catalog, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("ELT_REVERSE_ETL_AUTO_APPROVE", raising=False)
    rows = [outbound_row(n, phone=f"+770100000{n:02d}") for n in range(1, 4)]
    publish_outbound(catalog, "outbound.bitrix24_deals", rows)
    with sandbox_server.Bitrix24SandboxServer() as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_CRM_BITRIX24", json.dumps({"conn_type": "http", "host": server.webhook_url})
        )
        yield server


@pytest.mark.parametrize(
    ("choice", "deals", "execute_state"), [("Reject", 0, "skipped"), ("Approve", 3, "success")]
)
def test_the_first_run_waits_for_a_person_and_does_what_they_chose(portal, choice, deals, execute_state):
    import airflow.models.hitl  # noqa: F401  (see _answer)
    import airflow.models.taskinstance  # noqa: F401
    import airflow.models.trigger  # noqa: F401
    import airflow.triggers.base  # noqa: F401
    import airflow.utils.session  # noqa: F401

    from elt_platform.local_run import load_dag

    load_dag("reverse_etl_bitrix24")  # the DAG bag's imports too, before the second thread runs
    stop = threading.Event()
    person = threading.Thread(target=_answer, args=(choice, stop, datetime.now(UTC)), daemon=True)
    person.start()
    try:
        report = run_dag("reverse_etl_bitrix24", {}, check=False)
    finally:
        stop.set()
        person.join(timeout=5)

    states = {t.task_id: t.state for t in report.tasks}
    assert states["plan"] == "success" and states["approve"] == "success"
    assert states["execute"] == execute_state and states["report"] == "success"
    assert len(portal.snapshot()["deals"]) == deals
    runs = outbox.list_runs(open_state_store())
    assert [r["status"] for r in runs] == ["skipped" if choice == "Reject" else "done"]

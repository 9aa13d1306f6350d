"""Through Airflow's real scheduler: concurrent extract runs lose no silver/gold slice.

Acceptance saw a backfill of four days end with one day in silver/gold while every run was green: the
extract runs' asset events arrived seconds apart while a transform run was active, and the events
coalesced. The transform ledger is the fix; this proves it with Airflow's own components (api-server
— the execution API tasks report to —, scheduler with LocalExecutor, dag-processor) on a throw-away
``AIRFLOW_HOME``/``ELT_HOME``, the Alaqan sandbox as ``alaqan_default`` and a temporary 1C exchange area.
As under ``make airflow``, every task's dbt runs on the embedded SQL server (one local Spark Thrift
server), so the two domains' transforms share it. One stack serves both scenarios, which run at the same
time:

* Alaqan: ``python -m elt_platform.airflow_local backfill extract_alaqan`` for four days, two runs at
  a time (the DAG is paused, so the backfill also proves that no scheduled run is created);
* 1C: three packages dropped into ``incoming/`` a couple of seconds apart, ``extract_onec`` triggered
  after each.

Then silver and gold must hold every day asked, gold's catalog every package's offers, and the ledger
nothing pending. Expected values come from the request and the fixture XML, not from the code under test.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path

import pytest
from tests.conftest import LOCATION_VARIABLES

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.scheduler]

FIXTURES = (Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "commerceml").resolve()
PACKAGES = ("carono_cml2.07", "irpsv_bitrix-module-6_cml3.1", "irpsv_umi-cms_cml2.04")
FIRST_DAY, LAST_DAY = date(2025, 3, 3), date(2025, 3, 6)
DAYS = [FIRST_DAY + timedelta(days=n) for n in range((LAST_DAY - FIRST_DAY).days + 1)]
#: Ceiling on the waits (not a performance target): the whole test takes ~5-7 min on an idle 2-core
#: machine (two transform domains, ~1-2 min of Spark per transform run), far longer when it is shared.
BUDGET_S = 1200
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
FINISHED = ("success", "failed", "skipped")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _offer_ids(package: Path) -> set[str]:
    ids = set()
    for path in package.rglob("offers*.xml"):
        for element in ET.parse(path).getroot().iter():
            if element.tag.rpartition("}")[2] == "Предложение":
                ids |= {c.text for c in element if c.tag.rpartition("}")[2] == "Ид"}
    return ids


class Stack:
    """The running stack and what the test needs to drive and observe it."""

    def __init__(self, home: Path, env: dict[str, str], began: float):
        self.home, self.env, self.began = home, env, began
        self.metadata = home / "airflow" / "airflow.db"
        self.area = home / "exchange"

    def airflow(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [AIRFLOW, *args], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def runs(self, dag_id: str | None = None) -> list[dict]:
        with sqlite3.connect(f"file:{self.metadata}?mode=ro", uri=True, timeout=30) as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(
                "select dag_id, run_id, run_type, state, start_date, end_date from dag_run"
                + (" where dag_id = ?" if dag_id else "")
                + " order by id",
                (dag_id,) if dag_id else (),
            ).fetchall()
        return [dict(r) for r in rows]

    def pending(self, domain: str) -> int:
        from elt_platform.state import TransformLedger, open_state_store

        store = open_state_store(f"sqlite:///{self.home / 'elt' / 'state.db'}")
        return len(TransformLedger(store, domain).pending())

    def values(self, table: str, column: str) -> set:
        from elt_platform.config import PlatformConfig
        from elt_platform.iceberg.catalog import load_catalog

        catalog = load_catalog(PlatformConfig.from_env(self.env))
        return set(catalog.load_table(table).scan(selected_fields=(column,)).to_arrow()[column].to_pylist())

    def remaining(self) -> float:
        """Seconds left of the test's budget (at least a minute, so a failure still reports)."""
        return max(60.0, BUDGET_S - (time.monotonic() - self.began))

    def elapsed(self) -> str:
        return f"{time.monotonic() - self.began:5.0f}s"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from elt_platform.airflow_local import AirflowStack, Profile, migrate
    from elt_platform.sandbox.launch import SandboxOptions, alaqan
    from elt_platform.services import sql_server

    began = time.monotonic()
    home = tmp_path_factory.mktemp("scheduler")
    env = {
        k: v for k, v in os.environ.items() if k not in LOCATION_VARIABLES and not k.startswith("AIRFLOW_")
    }
    env.update(
        ELT_HOME=str(home / "elt"),
        ELT_ENV_FILE=str(home / "no.env"),  # a developer's .env must not point the stack elsewhere
        ELT_ONEC_EXCHANGE_URI=str(home / "exchange"),
        ELT_ONEC_SETTLE_SECONDS="600",  # packages count as complete by their .complete marker only
    )
    profile = Profile(
        home / "airflow",
        port=_free_port(),
        parallelism=3,
        components=("api-server", "scheduler", "dag-processor"),  # no deferrable task: no triggerer
        fast=True,
    )
    with ExitStack() as resources:
        resources.enter_context(alaqan(SandboxOptions(employees=40)))
        env["AIRFLOW_CONN_ALAQAN_DEFAULT"] = os.environ["AIRFLOW_CONN_ALAQAN_DEFAULT"]
        env = profile.env(env)
        migrate(env, home / "migrate.log")
        # As `make airflow`: every task's dbt through the embedded SQL server, both domains at once.
        env |= resources.enter_context(sql_server.serving(env, port=_free_port())).env
        assert env["DBT_TARGET"] == "prod"
        airflow = resources.enter_context(AirflowStack(profile, env))
        airflow.wait_ready()
        running = Stack(home, env, began)
        deadline = time.monotonic() + 120
        while len({r["dag_id"] for r in _dags(running)} & {"extract_alaqan", "transform_catalog"}) < 2:
            assert time.monotonic() < deadline, f"DAGs not parsed; see {profile.log_dir}"
            time.sleep(1)
        print(f"\n[{running.elapsed()}] stack up (api-server on {profile.base_url})")
        yield running
        tree = _descendants([p.pid for p in airflow.processes.values()])
    print(f"[{running.elapsed()}] stack stopped")
    assert not [p.pid for p in tree if p.is_running() and p.status() != "zombie"], "processes left behind"


def _dags(stack: Stack) -> list[dict]:
    if not stack.metadata.exists():
        return []
    with sqlite3.connect(f"file:{stack.metadata}?mode=ro", uri=True, timeout=30) as conn:
        return [{"dag_id": r[0]} for r in conn.execute("select dag_id from dag where not is_stale")]


def _descendants(pids: list[int]) -> list:
    import psutil

    found = []
    for pid in pids:
        try:
            found += psutil.Process(pid).children(recursive=True)
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.fixture(scope="module")
def outcome(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict:
    incoming = stack.area / "incoming"
    incoming.mkdir(parents=True)
    for process in [stack.airflow("dags", "unpause", dag) for dag in ("extract_onec", "transform_catalog")]:
        assert process.wait(timeout=120) == 0
    log = tmp_path_factory.mktemp("backfill") / "backfill.log"
    with open(log, "w") as out:
        backfill = subprocess.Popen(
            [sys.executable, "-m", "elt_platform.airflow_local", "backfill", "extract_alaqan"]
            + ["--from", str(FIRST_DAY), "--to", str(LAST_DAY), "--max-active-runs", "2"]
            + ["--timeout", str(int(stack.remaining()))],
            env=stack.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    triggers = []
    for name in PACKAGES:
        target = incoming / name
        shutil.copytree(FIXTURES / name, target, ignore=shutil.ignore_patterns("*.md"))
        (target / ".complete").touch()
        triggers.append(stack.airflow("dags", "trigger", "extract_onec"))
        time.sleep(2)
    print(f"[{stack.elapsed()}] backfill started, {len(PACKAGES)} 1C packages dropped and triggered")
    assert all(t.wait(timeout=120) == 0 for t in triggers)
    code = backfill.wait(timeout=stack.remaining() + 60)
    print(log.read_text())
    print(f"[{stack.elapsed()}] backfill command finished ({code})")
    deadline = time.monotonic() + stack.remaining()
    while True:
        onec = stack.runs("extract_onec") + stack.runs("transform_catalog")
        done = all(r["state"] in FINISHED for r in onec) and stack.pending("catalog") == 0
        if done and any(r["dag_id"] == "transform_catalog" and r["state"] == "success" for r in onec):
            break
        assert time.monotonic() < deadline, f"1C scenario unfinished: {onec}"
        time.sleep(2)
    print(f"[{stack.elapsed()}] 1C scenario finished")
    for run in stack.runs():
        timing = f"{run['start_date']} → {run['end_date']}"
        print(f"  {run['dag_id']:22} {run['run_type']:16} {run['state']:8} {timing}")
    return {"backfill_code": code, "backfill_log": log.read_text()}


def test_backfill_command_succeeds(outcome):
    assert outcome["backfill_code"] == 0, outcome["backfill_log"]


def test_only_the_days_asked_were_extracted(stack, outcome):
    runs = stack.runs("extract_alaqan")
    assert [r["run_type"] for r in runs] == ["backfill"] * len(DAYS)  # no scheduled run on unpause
    assert {r["state"] for r in runs} == {"success"}


@pytest.mark.parametrize(
    ("table", "column"),
    [("silver.alaqan_visits", "visit_date"), ("gold.alaqan_daily_attendance", "visit_date")],
)
def test_every_backfilled_day_reached_silver_and_gold(stack, outcome, table, column):
    assert sorted(stack.values(table, column)) == DAYS


def test_gold_catalog_holds_every_packages_offers(stack, outcome):
    expected = {name: _offer_ids(FIXTURES / name) for name in PACKAGES}
    assert all(expected.values())
    skus = stack.values("gold.onec_catalog", "sku_id")
    assert {name: ids - skus for name, ids in expected.items()} == dict.fromkeys(PACKAGES, set())
    assert len(stack.runs("extract_onec")) >= len(PACKAGES)


@pytest.mark.parametrize("domain", ["attendance", "catalog"])
def test_the_ledger_has_nothing_pending(stack, outcome, domain):
    assert stack.pending(domain) == 0


def test_every_transform_run_succeeded_or_had_nothing_to_do(stack, outcome):
    runs = stack.runs("transform_attendance") + stack.runs("transform_catalog")
    assert runs and {r["state"] for r in runs} <= {"success"}


def test_every_dbt_build_ran_on_the_sql_server(stack, outcome):
    """dbt names its target when it starts; every build of both domains used the server's (``prod``)."""
    targets: dict[str, list[str]] = {}
    for path in (stack.home / "airflow" / "logs").rglob("*.log"):
        dag = re.search(r"dag_id=(transform_\w+)/.*task_id=dbt_build_", str(path))
        if dag:
            found = re.findall(r"threads \(target='(\w+)'\)", path.read_text())
            targets.setdefault(dag.group(1), []).extend(found)
    assert sorted(targets) == ["transform_attendance", "transform_catalog"]
    assert all(targets.values()), targets  # each domain built at least once
    assert {target for found in targets.values() for target in found} == {"prod"}

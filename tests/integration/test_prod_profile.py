"""The production profile on this machine: ``elt prod-local run`` from start to stop, then its lake read back.

One run (the command ``make run-prod-local`` calls) on a throw-away ``ELT_HOME`` with generated secrets and
free ports: PostgreSQL (Airflow's metadata, the state store, the Iceberg JDBC catalog), S3Proxy (the
warehouse, landing and quality results), Spark standalone with its Thrift server (dbt's ``prod`` target),
Airflow's own components with LocalExecutor, every source's sandbox and both CRM sandboxes. While it runs,
the test records which addresses its processes listen on. Afterwards Postgres and the object store are
started again on the same data to read gold back with pyiceberg.

Expected values come from the sandbox's generator and the rules written out in the embedded Alaqan
end-to-end test (:func:`tests.integration.test_alaqan_pipeline.expected_layers`), not from the code under
test. This is the suite's slowest test (several minutes on 2 cores): ``make test`` runs it in the
scheduler's process, after the other integration tests.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from dotenv import dotenv_values
from tests.conftest import LOCATION_VARIABLES

pytestmark = [
    pytest.mark.integration,
    pytest.mark.spark,
    pytest.mark.scheduler,
    pytest.mark.prod_profile,
    pytest.mark.timeout(3600),
]

EMPLOYEES = 40
#: Ceiling of the run (not a performance target): ~10 min on an idle 2-core machine.
BUDGET_S = 2400
#: Files that exist to hold secrets (mode 0600); every other file the run leaves must not contain one.
SECRET_FILES = (
    "prod.env",
    "simple_auth_manager_passwords.json.generated",
    "s3proxy.conf",
    "spark-thrift.conf",
)


def _free_ports(count: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _listening(root: int, home: Path) -> set[tuple[str, int, str]]:
    """(address, port, process name) of every TCP socket listened on by ``root``'s process tree and by
    the daemons it started under ``home`` (Postgres leaves the tree: ``pg_ctl`` daemonises it)."""
    import psutil

    procs = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if str(home) in " ".join(proc.info["cmdline"] or []):
            procs[proc.pid] = proc
    try:
        procs.update(
            {p.pid: p for p in [psutil.Process(root), *psutil.Process(root).children(recursive=True)]}
        )
    except psutil.NoSuchProcess:
        return set()
    found = set()
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in procs:
            try:
                name = procs[conn.pid].name()
            except psutil.NoSuchProcess:
                continue
            found.add((conn.laddr.ip, conn.laddr.port, name))
    return found


def _processes_under(home: Path) -> list[str]:
    """Command lines of the processes still running that name ``home`` (the run's services, sandboxes)."""
    import psutil

    left = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(home) in cmdline and proc.pid != os.getpid():
            left.append(cmdline[:160])
    return left


def _loopback(address: str) -> bool:
    """127.0.0.1, ::1, or 127.0.0.1 as an IPv4-mapped IPv6 address (a JVM's dual-stack socket)."""
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


@pytest.fixture(scope="module")
def prod_run() -> Iterator[dict]:
    from elt_platform.services.settings import generate_env

    # Not under pytest's private temporary root: as root, Postgres runs as the `postgres` account,
    # which must reach its data directory.
    home = Path(tempfile.mkdtemp(prefix="elt-prod-profile-"))
    home.chmod(0o755)
    names = ("postgres", "s3", "spark", "thrift", "airflow", "spark_ui")
    env_file = generate_env(
        home / "prod.env", home, ports=dict(zip(names, _free_ports(len(names)), strict=True))
    )
    env = {k: v for k, v in os.environ.items() if k not in LOCATION_VARIABLES and not k.startswith("AIRFLOW")}
    env.pop("ELT_HOME", None)
    env["ELT_ENV_FILE"] = str(env_file)
    from elt_platform.airflow_local import last_complete_day

    # The last day every daily extract has run for (yesterday only after 03:00 UTC).
    last = last_complete_day()
    command = [sys.executable, "-m", "elt_platform.cli", "prod-local", "run", "--days", "1"]
    command += ["--end", last.isoformat(), "--employees", str(EMPLOYEES), "--timeout", str(BUDGET_S)]
    began = time.monotonic()
    output = home / "run.out"
    with open(output, "w") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=home)
        listening: set[tuple[str, int, str]] = set()
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(2):
                listening.update(_listening(proc.pid, home))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            code = proc.wait(timeout=BUDGET_S + 600)
        finally:
            stop.set()
            watcher.join()
            if proc.poll() is None:
                proc.terminate()
                proc.wait(60)
    seconds = time.monotonic() - began
    left_running = _processes_under(home)  # right away: the lake fixture below starts two again
    text = output.read_text(errors="replace")
    print(f"\nelt prod-local run: exit {code} in {seconds:.0f}s\n{text}")
    values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
    yield {
        "code": code,
        "output": text,
        "home": home,
        "env": values,
        "day": last,
        "listening": listening,
        "seconds": seconds,
        "left_running": left_running,
    }
    if code == 0:
        shutil.rmtree(home, ignore_errors=True)
    else:
        print(f"run failed: its home is kept for a look: {home}")


@pytest.fixture(scope="module")
def lake(prod_run: dict) -> Iterator[dict]:
    """Postgres and the object store started again on the run's data; gold and the outbox read back."""
    from elt_platform.services.settings import ProdLocalSettings
    from elt_platform.services.stack import ServiceStack

    env = {**os.environ, **prod_run["env"]}
    settings = ProdLocalSettings.from_env(env)
    stack = ServiceStack(settings, env, out=sys.stdout)
    stack.started.append(stack._postgres())
    stack.started.append(stack._object_store())
    try:
        with pytest.MonkeyPatch.context() as mp:
            for name, value in prod_run["env"].items():
                mp.setenv(name, value)
            from elt_platform.iceberg.catalog import load_catalog
            from elt_platform.state import open_state_store, outbox

            catalog = load_catalog()
            tables = {
                ".".join(ident): catalog.load_table(ident).scan().to_arrow()
                for namespace in ("gold", "outbound")
                for ident in catalog.list_tables(namespace)
            }
            store = open_state_store()
            queues = outbox.queue_sizes(store)
            # Close the pools before their server stops (psycopg warns about connections left open).
            store.engine.dispose()
            catalog.engine.dispose()
            yield {"tables": tables, "queues": queues}
    finally:
        stack.stop()


def test_the_run_succeeds_and_prints_the_summary(prod_run: dict) -> None:
    assert prod_run["code"] == 0, prod_run["output"][-4000:]
    assert "✔ platform run finished" in prod_run["output"]
    assert "» stopped every service" in prod_run["output"]


def test_an_analyst_query_answers_through_the_thrift_server(prod_run: dict, lake: dict) -> None:
    rows = lake["tables"]["gold.alaqan_monthly_summary"].num_rows
    after = prod_run["output"].split("analyst query over JDBC", 1)[1]
    table_rows = [line for line in after.splitlines() if line.startswith("| ") and "total_days" not in line]
    assert len(table_rows) == min(5, rows) > 0


def test_alaqan_gold_equals_the_independent_model(prod_run: dict, lake: dict) -> None:
    from tests.integration.test_alaqan_pipeline import expected_layers

    from elt_platform.sandbox.alaqan.generator import AlaqanDataset

    day = prod_run["day"]
    expected = expected_layers(
        AlaqanDataset(seed=42, employees=EMPLOYEES),
        day,
        day + timedelta(days=1),
        prod_run["env"]["ELT_PII_HASH_KEY"],
    )
    monthly = lake["tables"]["gold.alaqan_monthly_summary"].to_pylist()
    actual = {(r["year"], r["month"], r["iin"]): (r["total_days_visited"], r["total_hours"]) for r in monthly}
    assert actual == expected["monthly"]
    daily = lake["tables"]["gold.alaqan_daily_attendance"].to_pylist()
    assert {(r["visit_date"], r["iin"]): r["hours_on_site"] for r in daily} == {
        key: value[0] for key, value in expected["daily"].items()
    }


@pytest.mark.parametrize(
    "table",
    ["gold.amocrm_sales_funnel", "gold.onec_catalog", "gold.ident_receptions", "outbound.bitrix24_deals"],
)
def test_every_source_reached_gold(lake: dict, table: str) -> None:
    assert lake["tables"][table].num_rows > 0


@pytest.mark.parametrize(
    ("destination", "table"), [("bitrix24", "bitrix24_deals"), ("amocrm", "amocrm_deals")]
)
def test_reverse_etl_sent_every_outbound_row_through_the_scheduler(
    lake: dict, destination: str, table: str
) -> None:
    rows = lake["tables"][f"outbound.{table}"].num_rows
    assert rows > 0
    assert lake["queues"].get(destination) == {"sent": rows}


def test_every_service_listened_on_loopback_only(prod_run: dict) -> None:
    listening = prod_run["listening"]
    names = {name for _, _, name in listening}
    assert {"postgres", "java"} <= names  # the services were seen while they ran
    assert [entry for entry in sorted(listening) if not _loopback(entry[0])] == []
    env = prod_run["env"]
    ports = {port for _, port, _ in listening}
    assert int(env["DBT_SPARK_PORT"]) in ports  # the Thrift server
    assert int(env["ELT_S3_ENDPOINT"].rsplit(":", 1)[1]) in ports  # the object store


def test_no_secret_reaches_a_log_or_the_terminal(prod_run: dict) -> None:
    from elt_platform.services.settings import SECRET_VARIABLES

    secrets = {name: prod_run["env"][name] for name in (*SECRET_VARIABLES, "AWS_SECRET_ACCESS_KEY")}
    home: Path = prod_run["home"]
    leaks = []
    for path in home.rglob("*"):
        if not path.is_file() or path.name in SECRET_FILES or "data" in path.relative_to(home).parts:
            continue  # Postgres' and the object store's own data files hold data, not logs
        if path.stat().st_size > 50_000_000:
            continue
        text = path.read_bytes().decode(errors="replace")
        leaks += [f"{name} in {path}" for name, value in secrets.items() if value in text]
    assert leaks == []
    logs = list((home / "airflow" / "logs").rglob("*.log"))
    assert len(logs) > 20  # task logs were there to search


def test_nothing_is_left_running(prod_run: dict) -> None:
    assert prod_run["left_running"] == []

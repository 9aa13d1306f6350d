"""How long a reception changed in iDent takes to reach both CRMs, through Airflow's own scheduler.

Usage (from the repository root)::

    python bench/freshness.py [--receptions 100000] [--changes 20] [--per-round 4] [--keep]

Everything the platform runs in production runs here, on the embedded profile: Airflow 3 (api-server,
scheduler with the LocalExecutor, dag-processor, triggerer) over the repository's DAGs, the iDent
micro-batch DAG (every 30 seconds), ``transform_clinic`` (its incremental fast path: dbt-spark merges the
changed receptions into silver, gold and the outbound feeds), and ``reverse_etl_bitrix24`` /
``reverse_etl_amocrm`` (asset-scheduled on the outbound feeds). The sources and CRMs are the sandboxes:
a PostgreSQL cluster with the four iDent databases read through psqlODBC, a Bitrix24 portal and an
amoCRM account served from child processes with their real request limits.

Phases:

1. **Sandbox and initial state** (not timed against a target): the iDent databases with about
   ``--receptions`` receptions (clock at today 00:00, local); ``elt run --sources ident --days 1`` (the
   daily extract, the full build and the first sync of both CRMs, through ``dag.test``).
2. **Airflow**: the embedded stack starts; the four DAGs above are unpaused, nothing else. One change
   goes through first (warm-up, not counted: the first runs after unpausing include a scheduled full
   rebuild).
3. **Changes**: ``--changes`` receptions, in rounds of ``--per-round``, each change at a random moment
   of a ``--window``-second window (so the micro-batch schedule's wait is sampled, not dodged): a scheduled
   future reception that both CRMs hold gets its ``PlanStart``/``PlanEnd`` moved by 15 minutes, as a
   receptionist does (``DateTimeChanged`` set; the database's trigger advances ``RowVersion``). The
   clock starts at the UPDATE's commit and stops when the CRM holds the new start: the Bitrix24 deal's
   reception-start field (read from the portal, parsed as ISO 8601) and the amoCRM lead's reception-date
   field (Unix seconds) equal the new ``PlanStart`` in the database's time zone. The expected values come
   from the UPDATE, not from the platform.
4. **Breakdown** from Airflow's metadata DB: runs and task durations of each DAG during phase 3, and
   the wait between one task's end and the next one's start.

Target: p95 ≤ 120 s per CRM over the changes (the issue's "within 2 minutes"). A change counts as lost
when it has not arrived ``--give-up`` seconds after its commit.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from harness import (  # the sibling script: puts the repository on sys.path
    RESULTS_DIR,
    mark_targets,
    percentile,
    save_results,
    serve_from_child,
    serve_until_parent_closes,
    temporary_home,
    versions,
)

SEED = 42
RECEPTIONS = 100_000
CHANGES = 20
PER_ROUND = 4
WINDOW_SECONDS = 60.0
GIVE_UP_SECONDS = 600.0
TARGET_SECONDS = 120.0
POLL_SECONDS = 1.0
SHIFT_MINUTES = 15
TOKEN_ENV = "FRESHNESS_BENCH_TOKEN"
#: The DAGs the freshness path runs through; every other DAG stays paused.
DAGS = ("extract_ident_receptions", "transform_clinic", "reverse_etl_bitrix24", "reverse_etl_amocrm")
#: The Bitrix24 portal's plans and what the client is told of each (a few calls below the portal's burst).
BITRIX24_PLANS = {
    "standard": {"requests_per_second": 2, "burst": 48},
    "enterprise": {"requests_per_second": 5, "burst": 248},
}
AMOCRM_RATE = 7
AMOCRM_LEADS = 2_000
CHILD_START_SECONDS = 180.0


# -- the CRM sandboxes (child processes) ----------------------------------------------------------------


def _serve_bitrix24(seed: int, plan: str) -> None:
    from elt_platform.destinations.bitrix24.mapping import load_config
    from elt_platform.sandbox.bitrix24.generator import populate
    from elt_platform.sandbox.bitrix24.server import Bitrix24SandboxServer

    config = load_config()
    external_id_field = config.deal_fields["external_id"]
    start_field = config.deal_fields["plan_start_iso"]
    server = Bitrix24SandboxServer(token=os.environ[TOKEN_ENV], plan=plan)
    populate(server.portal, seed=seed, contacts=300, leads=60, deals=200)

    @server.app.get("/__bench/starts/{external_id}")
    def starts(external_id: str) -> list[Any]:
        """The reception-start field of each deal carrying ``external_id`` (not API traffic)."""
        return [
            deal.get(start_field) for deal in server.portal.find("deal", **{external_id_field: external_id})
        ]

    with server:
        serve_until_parent_closes({"root_url": server.root_url, "webhook_url": server.webhook_url})


def _serve_amocrm(seed: int) -> None:
    from datetime import UTC

    from elt_platform.sandbox.amocrm.account import CLINIC
    from elt_platform.sandbox.amocrm.generator import AmoCrmDataset
    from elt_platform.sandbox.amocrm.server import AmoCrmSandboxServer

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    dataset = AmoCrmDataset(
        seed=seed, leads=AMOCRM_LEADS, start=today - timedelta(days=365), now=today, clinic=CLINIC
    )
    server = AmoCrmSandboxServer(
        dataset,
        long_lived_token=os.environ[TOKEN_ENV],
        requests_per_second=AMOCRM_RATE,
        follow_wall_clock=True,
    )
    with server:
        serve_until_parent_closes({"root_url": server.root_url, "api_url": server.base_url})


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - our own 127.0.0.1 children
        return json.loads(response.read())


# -- the iDent side -------------------------------------------------------------------------------------


@dataclass
class Change:
    """One reception moved by a receptionist, and when each CRM showed it."""

    database: str
    reception_id: int
    external_id: str
    amocrm_lead: int
    expected_start: datetime  # aware, in the database's zone
    committed: float = 0.0  # time.monotonic() at the UPDATE's commit
    arrived: dict[str, float] = field(default_factory=dict)  # crm → monotonic time it showed the change

    def latency(self, crm: str) -> float | None:
        return self.arrived[crm] - self.committed if crm in self.arrived else None


def _candidates(databases: Mapping[str, Any], zones: Mapping[str, str]) -> list[dict[str, Any]]:
    """Scheduled receptions at least two days ahead that both CRMs hold (sent), with their ids."""
    import pyarrow.compute as pc

    from elt_platform.iceberg.catalog import load_catalog
    from elt_platform.state.outbox import load_records
    from elt_platform.state.store import open_state_store

    feed = (
        load_catalog()
        .load_table("outbound.bitrix24_deals")
        .scan(selected_fields=("external_id", "source_db", "reception_id", "status", "plan_start_iso"))
        .to_arrow()
    )
    feed = feed.filter(pc.equal(feed.column("status"), "scheduled"))
    store = open_state_store()
    bitrix24, amocrm = load_records(store, "bitrix24"), load_records(store, "amocrm")
    horizon = datetime.now().astimezone() + timedelta(days=2)
    found = []
    for row in feed.to_pylist():
        b, a = bitrix24.get(row["external_id"]), amocrm.get(row["external_id"])
        if not (b and a and b.status == "sent" and a.status == "sent" and a.crm_ids.get("deal")):
            continue
        if row["source_db"] not in databases or datetime.fromisoformat(row["plan_start_iso"]) < horizon:
            continue
        found.append({**row, "amocrm_lead": int(a.crm_ids["deal"]), "zone": zones[row["source_db"]]})
    return found


def _move(odbc: str, reception_id: int, zone: str) -> tuple[datetime, float]:
    """Move one reception by :data:`SHIFT_MINUTES`; its new start (aware) and the commit's monotonic time."""
    import pyodbc

    conn = pyodbc.connect(odbc, autocommit=False)
    try:
        cursor = conn.cursor()
        cursor.execute(
            # The sandbox is PostgreSQL (the bench writes as iDent would; the platform only reads).
            f'UPDATE dbo."Receptions" SET "PlanStart" = "PlanStart" + interval \'{SHIFT_MINUTES} minutes\', '
            f'"PlanEnd" = "PlanEnd" + interval \'{SHIFT_MINUTES} minutes\', "DateTimeChanged" = ? '
            'WHERE "ID" = ? RETURNING "PlanStart"',
            datetime.now(ZoneInfo(zone)).replace(tzinfo=None, microsecond=0), reception_id,
        )  # fmt: skip
        start = cursor.fetchone()[0]
        conn.commit()
        committed = time.monotonic()
    finally:
        conn.close()
    return start.replace(tzinfo=ZoneInfo(zone)), committed


def _arrived_bitrix24(root_url: str, change: Change) -> bool:
    values = _get(f"{root_url}/__bench/starts/{change.external_id}")
    return len(values) == 1 and bool(values[0]) and datetime.fromisoformat(values[0]) == change.expected_start


def _arrived_amocrm(root_url: str, change: Change, field_name: str) -> bool:
    lead = _get(f"{root_url}/__sandbox/records/leads/{change.amocrm_lead}")
    for item in lead.get("custom_fields_values") or []:
        if item.get("field_name") == field_name:
            return int(item["values"][0]["value"]) == int(change.expected_start.timestamp())
    return False


# -- Airflow ----------------------------------------------------------------------------------------------


def _airflow(env: Mapping[str, str], *args: str, log: Path) -> int:
    airflow = str(Path(sys.executable).with_name("airflow"))
    with log.open("ab") as out:
        return subprocess.call([airflow, *args], env=dict(env), stdout=out, stderr=subprocess.STDOUT)


def _unpause(env: Mapping[str, str], log: Path, timeout: float = 300.0) -> None:
    """Unpause :data:`DAGS` once the dag-processor has serialised them."""
    deadline = time.monotonic() + timeout
    pending = list(DAGS)
    while pending:
        pending = [d for d in pending if _airflow(env, "dags", "unpause", d, log=log) != 0]
        if pending and time.monotonic() > deadline:
            raise RuntimeError(f"could not unpause {pending} within {timeout:.0f}s (see {log})")
        if pending:
            time.sleep(3)


def _breakdown(database: Path, since: datetime) -> dict[str, Any]:
    """Runs and task durations per DAG of :data:`DAGS` started after ``since`` (UTC, naive)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=60)
    try:
        stamp = since.strftime("%Y-%m-%d %H:%M:%S")
        runs = conn.execute(
            "select dag_id, run_id, state, start_date, end_date from dag_run where start_date >= ?", (stamp,)
        ).fetchall()
        tasks = conn.execute(
            "select dag_id, run_id, task_id, state, queued_dttm, start_date, end_date from task_instance "
            "where start_date >= ?",
            (stamp,),
        ).fetchall()
    finally:
        conn.close()

    def seconds(a: str | None, b: str | None) -> float | None:
        if not a or not b:
            return None
        return (datetime.fromisoformat(b[:26]) - datetime.fromisoformat(a[:26])).total_seconds()

    out: dict[str, Any] = {}
    for dag_id in DAGS:
        mine = [r for r in runs if r[0] == dag_id]
        durations = [d for r in mine if (d := seconds(r[3], r[4])) is not None]
        by_task: dict[str, list[float]] = {}
        waits: dict[str, list[float]] = {}
        for run in mine:
            ordered = sorted(
                (t for t in tasks if t[0] == dag_id and t[1] == run[1] and t[5]), key=lambda t: t[5]
            )
            for before, task in zip([None, *ordered], ordered, strict=False):
                if (d := seconds(task[5], task[6])) is not None:
                    by_task.setdefault(task[2], []).append(d)
                if before is not None and (w := seconds(before[6], task[5])) is not None:
                    waits.setdefault(task[2], []).append(w)
        out[dag_id] = {
            "runs": len(mine),
            "states": {s: sum(1 for r in mine if r[2] == s) for s in {r[2] for r in mine}},
            "run_seconds_p50": statistics.median(durations) if durations else None,
            "task_seconds_p50": {k: statistics.median(v) for k, v in by_task.items()},
            "wait_before_task_p50": {k: statistics.median(v) for k, v in waits.items()},
        }
    return out


# -- the run ---------------------------------------------------------------------------------------------


@contextmanager
def _crm_sandboxes(
    seed: int, plan: str, env: Mapping[str, str]
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    with (
        serve_from_child(__file__, ["bitrix24", str(seed), plan], env, start_timeout=CHILD_START_SECONDS) as (
            _,
            b,
        ),
        serve_from_child(__file__, ["amocrm", str(seed)], env, start_timeout=CHILD_START_SECONDS) as (_, a),
    ):
        yield b, a


def _seconds(value: float | None) -> str:
    return "lost" if value is None else f"{value:.0f}s"


def _watch(
    changes: list[Change], bitrix24_url: str, amocrm_url: str, field_name: str, give_up: float
) -> None:
    """Poll the CRMs until every change arrived in both, or ``give_up`` seconds after its commit."""
    while True:
        now = time.monotonic()
        open_ = [c for c in changes if len(c.arrived) < 2 and now - c.committed < give_up]
        if not open_:
            return
        for change in open_:
            if "bitrix24" not in change.arrived and _arrived_bitrix24(bitrix24_url, change):
                change.arrived["bitrix24"] = time.monotonic()
            if "amocrm" not in change.arrived and _arrived_amocrm(amocrm_url, change, field_name):
                change.arrived["amocrm"] = time.monotonic()
        time.sleep(POLL_SECONDS)


def _round(
    picks: list[dict[str, Any]], odbc: Mapping[str, str], rng: random.Random, window: float
) -> list[Change]:
    """Make the changes of one round, each at a random moment of the window (in a thread each)."""
    changes = [
        Change(p["source_db"], p["reception_id"], p["external_id"], p["amocrm_lead"], datetime.min)
        for p in picks
    ]
    delays = sorted(rng.uniform(0, window) for _ in picks)

    failures: list[BaseException] = []

    def make(change: Change, pick: dict[str, Any], delay: float) -> None:
        time.sleep(delay)
        try:
            change.expected_start, change.committed = _move(
                odbc[change.database], change.reception_id, pick["zone"]
            )
        except BaseException as exc:  # re-raised in the caller's thread
            failures.append(exc)

    threads = [
        threading.Thread(target=make, args=(c, p, d)) for c, p, d in zip(changes, picks, delays, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"a change could not be made: {failures[0]!r}") from failures[0]
    return changes


def run(opts: argparse.Namespace) -> dict[str, Any]:
    from elt_platform.airflow_local import AirflowStack, Profile, ensure_admin_password, ensure_pools, migrate
    from elt_platform.destinations.amocrm.mapping import load_config as amocrm_config
    from elt_platform.sandbox.ident import catalog
    from elt_platform.sandbox.ident.cluster import PostgresCluster
    from elt_platform.sandbox.ident.generator import generate, load
    from elt_platform.services import sql_server
    from elt_platform.services.postgres import free_port
    from elt_platform.sources.ident.manifest import load_manifest

    rng = random.Random(opts.seed)
    results: dict[str, Any] = {
        "config": {
            "receptions": opts.receptions,
            "changes": opts.changes,
            "per_round": opts.per_round,
            "window_seconds": opts.window,
            "seed": opts.seed,
            "bitrix24_plan": opts.bitrix24_plan,
            "sql_server": opts.sql_server,
            "amocrm_requests_per_second": AMOCRM_RATE,
            "cpus": os.cpu_count(),
            "load_average_at_start": list(os.getloadavg()),
            "versions": versions(("apache-airflow", "pyiceberg", "dbt-spark", "pyspark")),
        }
    }
    with temporary_home("freshness_bench_", keep=opts.keep) as home, ExitStack() as stack:
        logs = home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(24)
        os.environ |= {
            TOKEN_ENV: token,
            "AIRFLOW_HOME": str(home / "airflow"),
            "ELT_PII_HASH_KEY": secrets.token_urlsafe(32),
            "ELT_REVERSE_ETL_AUTO_APPROVE": "bitrix24,amocrm",  # the sandboxes: nobody to approve
            "AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA": "True",
            "ELT_IDENT_SANDBOX": "1",
        }
        print(f"ELT_HOME={home}", flush=True)
        # -- phase 1 ------------------------------------------------------------------------------------
        manifest = load_manifest()
        cluster = stack.enter_context(PostgresCluster(None, catalog.DATABASES))
        today = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
        per_unit = sum(len(db.tables["Receptions"]) for db in generate(opts.seed, 1.0, today))
        scale = opts.receptions / per_unit
        print(f"iDent sandbox: ~{opts.receptions:,} receptions (scale {scale:.2f}) ...", flush=True)
        began = time.perf_counter()
        load(cluster.odbc, seed=opts.seed, scale=scale, now=today)
        results["sandbox_seconds"] = time.perf_counter() - began
        odbc = {}
        for number, (key, database) in enumerate(zip(manifest.databases, cluster.databases, strict=True), 1):
            os.environ[f"AIRFLOW_CONN_IDENT_{number}"] = json.dumps(database.airflow_connection())
            odbc[key] = database.odbc
        zones = {key: db.timezone for key, db in manifest.databases.items()}
        bitrix24, amocrm = stack.enter_context(_crm_sandboxes(opts.seed, opts.bitrix24_plan, os.environ))
        extra = BITRIX24_PLANS[opts.bitrix24_plan]
        os.environ["AIRFLOW_CONN_CRM_BITRIX24"] = json.dumps(
            {"conn_type": "http", "host": bitrix24["webhook_url"], "extra": extra}
        )
        os.environ["AIRFLOW_CONN_AMOCRM_DEFAULT"] = json.dumps(
            {
                "conn_type": "http",
                "host": amocrm["api_url"],
                "password": token,
                "extra": {"requests_per_second": AMOCRM_RATE},
            }
        )
        profile = Profile.from_env(port=opts.port or free_port())
        env = profile.env()
        ensure_admin_password(profile.passwords_file)
        migrate(env, logs / "airflow-migrate.log")
        ensure_pools(env, logs / "airflow-migrate.log")
        print("initial state: elt run --sources ident --days 1 (extract, full build, first CRM sync) ...")
        began = time.perf_counter()
        with (logs / "initial.log").open("w") as out:
            code = subprocess.call(
                [str(Path(sys.executable).with_name("elt")), "run", "--sources", "ident", "--days", "1"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        results["initial_seconds"] = time.perf_counter() - began
        if code:
            raise RuntimeError(f"elt run failed ({code}); see {logs / 'initial.log'}")
        print(f"  done in {results['initial_seconds']:.0f}s", flush=True)
        candidates = _candidates(odbc, zones)
        needed = opts.changes + 1
        if len(candidates) < needed:
            raise RuntimeError(
                f"only {len(candidates)} scheduled receptions held by both CRMs; {needed} needed"
            )
        picks = rng.sample(candidates, needed)
        field_name = amocrm_config().lead_fields["reception_date"]
        # -- phase 2 ------------------------------------------------------------------------------------
        # As `make airflow`: the embedded SQL server (a warm Spark Thrift server) serves every task's dbt.
        env["ELT_SQL_SERVER"] = opts.sql_server
        env |= stack.enter_context(sql_server.serving(env, sys.stdout, port=free_port())).env
        airflow = AirflowStack(profile, env=env, out=sys.stdout)
        stack.callback(airflow.stop)
        airflow.start()
        airflow.wait_ready(timeout=300)
        _unpause(env, logs / "airflow-cli.log")
        print("Airflow up; DAGs unpaused; warm-up change ...", flush=True)
        began = time.perf_counter()
        warm = _round(picks[:1], odbc, rng, 0.0)
        _watch(warm, bitrix24["root_url"], amocrm["root_url"], field_name, opts.give_up)
        results["warm_up_seconds"] = time.perf_counter() - began
        if len(warm[0].arrived) < 2:
            raise RuntimeError(f"the warm-up change did not arrive within {opts.give_up:.0f}s")
        print(f"  arrived after {results['warm_up_seconds']:.0f}s", flush=True)
        # -- phase 3 ------------------------------------------------------------------------------------
        from datetime import UTC

        measured_since = datetime.now(UTC).replace(tzinfo=None)
        changes: list[Change] = []
        rest = picks[1:]
        for number in range(0, len(rest), opts.per_round):
            batch = _round(rest[number : number + opts.per_round], odbc, rng, opts.window)
            _watch(batch, bitrix24["root_url"], amocrm["root_url"], field_name, opts.give_up)
            changes += batch
            line = ", ".join(
                f"{c.external_id} {_seconds(c.latency('bitrix24'))}/{_seconds(c.latency('amocrm'))}"
                for c in batch
            )
            print(f"  round {number // opts.per_round + 1}: {line} (bitrix24/amocrm)", flush=True)
        # -- phase 4 ------------------------------------------------------------------------------------
        results["breakdown"] = _breakdown(profile.airflow_home / "airflow.db", measured_since)
        results["changes"] = [
            {
                "external_id": c.external_id,
                "bitrix24_seconds": c.latency("bitrix24"),
                "amocrm_seconds": c.latency("amocrm"),
            }
            for c in changes
        ]
    return evaluate(results)


def evaluate(results: dict[str, Any]) -> dict[str, Any]:
    changes = results["changes"]
    summary: dict[str, Any] = {}
    for crm in ("bitrix24", "amocrm"):
        values = [c[f"{crm}_seconds"] for c in changes if c[f"{crm}_seconds"] is not None]
        summary[crm] = {
            "arrived": len(values),
            "lost": len(changes) - len(values),
            "p50": percentile(values, 0.5),
            "p95": percentile(values, 0.95),
            "max": max(values) if values else None,
        }
    both = [max(c["bitrix24_seconds"], c["amocrm_seconds"]) for c in changes if None not in c.values()]
    summary["both"] = {"p50": percentile(both, 0.5), "p95": percentile(both, 0.95)}
    results["summary"] = summary
    results["targets"] = {
        f"{crm}_p95": {"value": summary[crm]["p95"], "target": f"<= {TARGET_SECONDS:.0f} s"}
        for crm in ("bitrix24", "amocrm")
    }
    results["targets"]["lost"] = {
        "value": sum(summary[c]["lost"] for c in ("bitrix24", "amocrm")),
        "target": "0",
    }
    mark_targets(
        results["targets"],
        {
            **{
                f"{crm}_p95": summary[crm]["p95"] is not None and summary[crm]["p95"] <= TARGET_SECONDS
                for crm in ("bitrix24", "amocrm")
            },
            "lost": results["targets"]["lost"]["value"] == 0,
        },
    )
    return results


def render(results: dict[str, Any]) -> str:
    s = results["summary"]
    lines = [
        "",
        f"iDent change -> CRM through Airflow ({results['config']['receptions']:,} receptions, "
        f"{len(results['changes'])} changes in rounds of {results['config']['per_round']}):",
    ]
    for crm in ("bitrix24", "amocrm"):
        lines.append(
            f"  {crm:9} p50 {s[crm]['p50'] or 0:6.1f} s   p95 {s[crm]['p95'] or 0:6.1f} s   "
            f"max {s[crm]['max'] or 0:6.1f} s   arrived {s[crm]['arrived']}, lost {s[crm]['lost']}"
        )
    lines.append(f"  both      p50 {s['both']['p50'] or 0:6.1f} s   p95 {s['both']['p95'] or 0:6.1f} s")
    lines.append("breakdown (medians):")
    for dag_id, figures in results["breakdown"].items():
        tasks = ", ".join(
            f"{task} {seconds:.1f}s (+{figures['wait_before_task_p50'].get(task, 0):.1f}s wait)"
            for task, seconds in figures["task_seconds_p50"].items()
        )
        lines.append(
            f"  {dag_id}: {figures['runs']} runs, p50 {figures['run_seconds_p50'] or 0:.1f}s: {tasks}"
        )
    for name, target in results["targets"].items():
        lines.append(f"  {target['result']}  {name}: {target['value']} (target {target['target']})")
    return "\n".join(lines)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--receptions", type=int, default=RECEPTIONS, help="iDent receptions (default 100,000)"
    )
    parser.add_argument("--changes", type=int, default=CHANGES, help="measured changes (default 20)")
    parser.add_argument("--per-round", type=int, default=PER_ROUND, help="changes per round (default 4)")
    parser.add_argument(
        "--window", type=float, default=WINDOW_SECONDS, help="seconds a round's changes spread over"
    )
    parser.add_argument(
        "--give-up", type=float, default=GIVE_UP_SECONDS, help="seconds before a change is lost"
    )
    parser.add_argument("--port", type=int, default=None, help="the api-server's port (default: a free one)")
    parser.add_argument(
        "--bitrix24-plan",
        choices=sorted(BITRIX24_PLANS),
        default="standard",
        help="the portal's limit: standard (burst 50, 2/s) or enterprise (250, 5/s: a faster first sync)",
    )
    parser.add_argument(
        "--sql-server",
        choices=("on", "off"),
        default="on",
        help="dbt through the embedded SQL server, as `make airflow` (on), or in each task's driver (off)",
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary ELT_HOME (logs, Airflow DB)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["--child", "serve"]:
        if argv[2] == "bitrix24":
            _serve_bitrix24(int(argv[3]), argv[4])
        else:
            _serve_amocrm(int(argv[3]))
        return 0
    opts = _parse_args(argv)
    results = run(opts)
    print(render(results))
    return save_results(results, opts.results_dir, "freshness", strict=opts.strict)


if __name__ == "__main__":
    sys.exit(main())

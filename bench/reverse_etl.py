"""Benchmark the reverse ETL against the CRMs' real request limits: Bitrix24 and amoCRM sandboxes.

Usage::

    python bench/reverse_etl.py [--deals 10000] [--amocrm-new N] [--amocrm-lookup auto|search|list]
                                [--changes 20] [--quick] [--only bitrix24|amocrm] [--sequential]
                                [--strict] [--keep]

A reverse-ETL run is bound by the CRM's request limit, not by the machine: the question is how close
``plan_run`` + ``execute_run`` get to the least time the limit allows for the run's work, whether they
ever overstep the limit, and how long one changed row takes from the outbound table to the CRM.

Everything happens in a fresh temporary ``ELT_HOME``. Each CRM is served by its sandbox from a child
process, with the real limits on, and driven by a runner child with its own embedded lakehouse and state
store; the two CRMs run at the same time (they are separate accounts), ``--sequential`` one after the
other. The runner publishes ``outbound.<crm>_deals`` rows built from the destination's contract (the
columns, the Arrow types and ``row_hash`` as the contract defines them) and runs the engine exactly as the
DAG's tasks do: ``runs.plan_run``, ``runs.execute_run``, ``runs.report_run``, through the real adapters,
clients and the account's shared budget in the state store, the connection's ``extra`` set to the real
limits (Bitrix24 2 requests/s with the destination's default burst, 48, two calls below the portal's 50;
amoCRM 7 requests/s with the source's default burst, 1: requests spaced). The bounds count the servers'
buckets (50 and 7), not the clients'.

Bitrix24 (``Bitrix24SandboxServer(plan="standard")``: a leaky bucket of 50 calls drained at 2/s, 503
``QUERY_LIMIT_EXCEEDED`` beyond; ``batch`` runs at most 50 commands; the portal pre-filled by
``generator.populate``):

1. first sync of ``--deals`` new receptions (new phones: a contact and a deal each);
2. update sync after every row's amount changed (``--deals`` deal updates);
3. freshness: ``--changes`` times one row changed among them, plan + execute, checked in the portal.

amoCRM (``AmoCrmSandboxServer``, 7 requests/s per integration, 429 beyond, the clinic account):

1. first sync of ``--amocrm-new`` (default all ``--deals``) new receptions with the real search
   hierarchy (reception id, patient number, phone), looked up as the DAG does (``--amocrm-lookup auto``:
   the open leads of the clinic pipelines and the contacts read once through the lists, 250 a page, when
   that takes fewer requests than the searches) or pinned: ``search`` (three searches per new row, so
   10,000 would take over an hour at 7/s), ``list``;
2. seed, only when ``--amocrm-new`` is below ``--deals``: the rest of the rows created by the real
   engine and client at the real limit, with the searches answered "nothing" without asking (the
   benchmark built the account: none of them is in it); timed and reported, no target;
3. steady state: every row's amount changed, each lead read back by id (250 a request) and updated
   (50 a PATCH);
4. freshness as for Bitrix24.

Ratios: the run's seconds (plan + execute) against the least seconds the limit allows for the calls the
run's work needs (its action mix, configuration reads included, full batches/pages, a full bucket at the
start: every phase starts after the bucket has refilled); for Bitrix24 also commands/s against 50
commands per call at the allowed call rate; and the issue's literal ratio, deals/s against
``rate x 50`` (Bitrix24 100/s, amoCRM 350/s), which some action mixes cannot reach by construction (a
Bitrix24 create needs at least 4 commands, an amoCRM new row 3 searches when searched; an amoCRM update
needs a read besides its write, which leaves it at most 0.84). Freshness covers only the
reverse-ETL part; the upstream part (iDent micro-batch extract + dbt up to the outbound table) is
``bench/ident_load.py``'s, and the end-to-end freshness is the sum.

Prints the figures with PASS/MISS, writes them as JSON to ``bench/results/reverse_etl-<UTC>.json`` and
exits 0 even on a MISS unless ``--strict``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import (  # the sibling script: puts the repository on sys.path
    REPO_ROOT,
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
DEALS, QUICK_DEALS = 10_000, 1_000
AMOCRM_LOOKUPS = ("auto", "search", "list")
CHANGES, QUICK_CHANGES = 20, 5
TARGET_RATIO = 0.8
#: The issue's bound on a changed reception reaching the CRM (end to end, p95).
TARGET_FRESHNESS_SECONDS = 120.0
BUSY_LOAD_AVERAGE = 0.5
TOKEN_ENV = "REVERSE_ETL_BENCH_TOKEN"
#: The destinations' mapping files (``destinations/<crm>/mapping.py``): their defaults fit the sandboxes.
MAPPING_VARIABLES = ("ELT_BITRIX24_CONFIG", "ELT_AMOCRM_SYNC_CONFIG")
CRMS = ("bitrix24", "amocrm")
RUNNER_TIMEOUT_SECONDS = 4 * 3600.0
SANDBOX_START_TIMEOUT_SECONDS = 120.0
#: Existing portal content (``generator.populate``): what a clinic's portal holds before the first sync.
PORTAL = {"contacts": 2_000, "leads": 200, "deals": 2_000}
#: Generated leads of the amoCRM account (besides the clinic's pipelines and fields). The sandbox's
#: ``query`` search scans every lead, a cost real amoCRM does not have: kept small enough that a search
#: stays well inside the 1/7 s a request may take.
AMOCRM_ACCOUNT_LEADS = 1_000
AMOCRM_NOW = datetime(2026, 11, 1, tzinfo=UTC)
#: Receptions of the benchmark: ids far from the generated ones, phones in a mobile code (706) neither
#: sandbox generator uses, so every row is new to the CRM and no two rows share a person.
RECEPTION_BASE = 7_000_000
PATIENT_NUMBER_BASE = 200_000
BASE_AMOUNT = 5_000.0
#: Bitrix24 rows carry branch 9: the populated portal's synced deals are F1_… to F5_….
BITRIX24_BRANCH = (9, "Филиал 9")


@dataclass(frozen=True)
class Limit:
    """A CRM's request limit: a bucket of ``burst`` requests refilled at ``rate`` per second.

    Attributes:
        rate: Requests per second in the steady state.
        burst: Requests the account may send at once after an idle period.
        per_call: Entities (Bitrix24 commands, amoCRM entities) one write request carries at most.
    """

    rate: float
    burst: int
    per_call: int

    def max_calls(self, seconds: float) -> float:
        """The most requests allowed in ``seconds`` from a full bucket."""
        return self.burst + self.rate * seconds

    def min_seconds(self, calls: int) -> float:
        """The least seconds ``calls`` requests take from a full bucket."""
        return max(0.0, calls - self.burst) / self.rate


#: Bitrix24, every plan but Enterprise (docs ``limits.md``): 50 calls, drained 2/s; ``batch`` ≤ 50 commands.
#: The bound counts the portal's bucket; the client keeps its own 2 calls below it (``settings.DEFAULT_BURST``
#: 48: no 503 when both run dry), which costs it 1 s of every limit-bound phase.
BITRIX24 = Limit(rate=2.0, burst=50, per_call=50)
#: amoCRM: 7 requests/s per integration (the sandbox's bucket holds 7); writes of 50 entities a request.
AMOCRM = Limit(rate=7.0, burst=7, per_call=50)
LIMITS = {"bitrix24": BITRIX24, "amocrm": AMOCRM}
#: amoCRM list pages (``leads?filter[id][]``) hold 250 records.
AMOCRM_PAGE = 250


# -- outbound rows from the contract ---------------------------------------------------------------------


def load_contract(crm: str) -> dict[str, Any]:
    """The destination's outbound contract (``schemas/contracts/<crm>/deal.schema.json``)."""
    return json.loads((REPO_ROOT / "schemas" / "contracts" / crm / "deal.schema.json").read_text("utf-8"))


def row_hash(row: Mapping[str, Any], sent_fields: list[str]) -> str:
    """``row_hash`` as the contract defines it: SHA-256 of the JSON object of the sent fields in order,
    every value as a string, nulls as null, compact, non-ASCII unescaped."""
    sent = {name: None if row[name] is None else str(row[name]) for name in sent_fields}
    text = json.dumps(sent, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def outbound_row(
    contract: Mapping[str, Any], n: int, amount: float, branch: tuple[int, str]
) -> dict[str, Any]:
    """Reception ``n`` as one row of the contract's table (only the contract's columns)."""
    number, branch_name = branch
    reception_id = RECEPTION_BASE + n
    values: dict[str, Any] = {
        "external_id": f"F{number}_{reception_id}",
        "deal_title": f"Пациент {n} — 2026-11-30 {branch_name}",
        "funnel": "primary",
        "stage_code": "consultation_scheduled",
        "status": "scheduled",
        "patient_full_name": f"Сейткали{n} Айгерим Муратовна",
        "phone": f"+7706{n:07d}",
        "patient_number": str(PATIENT_NUMBER_BASE + n),
        "reception_id": reception_id,
        "reception_date": "2026-11-30",
        "plan_start_iso": "2026-11-30T10:00:00+05:00",
        "plan_end_iso": "2026-11-30T10:30:00+05:00",
        "branch_name": branch_name,
        "armchair_name": "Кресло 1",
        "doctor_name": "Оспанова Гульнара Муратовна",
        "doctor_speciality": "Терапевт",
        "services": "Консультация стоматолога",
        "amount": amount,
        "cancel_reason": None,
        "comment": f"запись {n}",
        "source_db": str(number),
        "branch_number": number,
        "patient_id": 500_000 + n,
        "completed_receptions_before": 0,
        "changed_at": "2026-11-29T12:00:00",
    }
    row = {name: values[name] for name in contract["properties"] if name != "row_hash"}
    row["row_hash"] = row_hash(row, contract["x-sent-fields"])
    return row


def with_amount(contract: Mapping[str, Any], row: Mapping[str, Any], amount: float) -> dict[str, Any]:
    """The row with another amount (a changed bill) and its new hash."""
    changed = {**row, "amount": amount}
    changed["row_hash"] = row_hash(changed, contract["x-sent-fields"])
    return changed


def arrow_schema(contract: Mapping[str, Any], columns: list[str]) -> Any:
    """The Arrow schema of the outbound table: the contract's JSON types as the dbt model writes them."""
    import pyarrow as pa

    def arrow_type(name: str) -> Any:
        declared = contract["properties"][name].get("type")
        kinds = set(declared if isinstance(declared, list) else [declared])
        return pa.int64() if "integer" in kinds else pa.float64() if "number" in kinds else pa.string()

    return pa.schema([(name, arrow_type(name)) for name in columns])


def publish(catalog: Any, table: str, rows: list[dict[str, Any]], contract: Mapping[str, Any]) -> float:
    """Replace the outbound table's content with ``rows`` (dbt's rebuild); the seconds it took."""
    import pyarrow as pa

    started = time.perf_counter()
    schema = arrow_schema(contract, list(rows[0]))
    data = pa.Table.from_pylist(rows, schema=schema)
    if catalog.table_exists(table):
        catalog.load_table(table).overwrite(data)
    else:
        catalog.create_table(table, schema=schema).append(data)
    return time.perf_counter() - started


# -- the sandbox children --------------------------------------------------------------------------------


@dataclass
class Sandbox:
    """A running sandbox child process and what its runner needs to reach it."""

    crm: str
    root_url: str
    api_url: str
    build_seconds: float
    content: dict[str, int]
    clinic_open_leads: int = 0


@contextlib.contextmanager
def sandbox_process(crm: str, seed: int, env: Mapping[str, str]) -> Iterator[Sandbox]:
    """Build and serve one CRM's sandbox from a child process; stop it on exit."""
    with serve_from_child(
        __file__, ["--crm", crm, "--seed", str(seed)], env, start_timeout=SANDBOX_START_TIMEOUT_SECONDS
    ) as (_, announced):
        yield Sandbox(crm=crm, **announced)


def _bench_cpu_route(app: Any) -> None:
    """``GET /__bench/cpu``: the sandbox process's CPU seconds, so a runner can tell its share of a phase."""

    @app.get("/__bench/cpu")
    def cpu() -> dict[str, float]:
        return {"seconds": time.process_time()}


def _serve_bitrix24(seed: int) -> None:
    from elt_platform.destinations.bitrix24.mapping import load_config
    from elt_platform.sandbox.bitrix24.generator import populate
    from elt_platform.sandbox.bitrix24.server import Bitrix24SandboxServer

    external_id_field = load_config().deal_fields["external_id"]
    server = Bitrix24SandboxServer(token=os.environ[TOKEN_ENV], plan="standard")
    began = time.perf_counter()
    populate(
        server.portal, seed=seed, contacts=PORTAL["contacts"], leads=PORTAL["leads"], deals=PORTAL["deals"]
    )
    build_seconds = time.perf_counter() - began
    _bench_cpu_route(server.app)

    @server.app.get("/__bench/deals")
    def deals(prefix: str) -> dict[str, list[list[float]]]:
        """External id → ``[deal id, amount]`` of every deal whose external id starts with ``prefix``."""
        found: dict[str, list[list[float]]] = {}
        for deal in server.portal.records("deal"):
            external_id = str(deal.get(external_id_field) or "")
            if external_id.startswith(prefix):
                found.setdefault(external_id, []).append([int(deal["ID"]), float(deal["OPPORTUNITY"] or 0)])
        return found

    @server.app.get("/__bench/deals/{external_id}")
    def deal(external_id: str) -> list[list[float]]:
        """``[deal id, amount]`` of each deal carrying ``external_id``."""
        return [
            [int(d["ID"]), float(d["OPPORTUNITY"] or 0)]
            for d in server.portal.find("deal", **{external_id_field: external_id})
        ]

    with server:
        serve_until_parent_closes(
            {
                "root_url": server.root_url,
                "api_url": f"{server.root_url}/rest/{server.sandbox.user_id}/",
                "build_seconds": build_seconds,
                "content": server.portal.counts(),
            }
        )


def _serve_amocrm(seed: int) -> None:
    from fastapi import Body

    from elt_platform.sandbox.amocrm.account import CLINIC, LOST, RECEPTION_ID_FIELD, WON
    from elt_platform.sandbox.amocrm.generator import AmoCrmDataset
    from elt_platform.sandbox.amocrm.server import AmoCrmSandboxServer

    began = time.perf_counter()
    dataset = AmoCrmDataset(
        seed=seed,
        leads=AMOCRM_ACCOUNT_LEADS,
        start=AMOCRM_NOW - timedelta(days=365),
        now=AMOCRM_NOW,
        clinic=CLINIC,
    )
    build_seconds = time.perf_counter() - began
    server = AmoCrmSandboxServer(
        dataset, long_lived_token=os.environ[TOKEN_ENV], requests_per_second=AMOCRM.rate
    )
    _bench_cpu_route(server.app)

    @server.app.post("/__bench/leads")
    def leads(ids: list[int] = Body(...)) -> dict[str, list[Any]]:  # noqa: B008 - FastAPI's idiom
        """Lead id → ``[price, reception id]`` of the leads that exist."""
        found: dict[str, list[Any]] = {}
        for lead_id in ids:
            try:
                lead = dataset.record("leads", lead_id)
            except KeyError:
                continue
            reception = next(
                (
                    item["values"][0].get("value")
                    for item in lead.get("custom_fields_values") or []
                    if item["field_id"] == RECEPTION_ID_FIELD
                ),
                None,
            )
            found[str(lead_id)] = [lead.get("price"), reception]
        return found

    with server:
        serve_until_parent_closes(
            {
                "root_url": server.root_url,
                "api_url": server.base_url,
                "build_seconds": build_seconds,
                "content": dataset.counts(),
                # What the plan's lead list reads: the leads of the clinic pipelines' open stages.
                "clinic_open_leads": sum(
                    1
                    for lead in dataset.records("leads")
                    if lead["pipeline_id"] in {p.id for p in CLINIC.pipelines}
                    and lead["status_id"] not in (WON, LOST)
                ),
            }
        )


# -- the runner children: one CRM each -------------------------------------------------------------------


def _progress(crm: str, text: str) -> None:
    print(f"[{crm}] {text}", file=sys.stderr, flush=True)


def _minus(after: Any, before: Any) -> Any:
    """``after - before`` of nested counters: numbers subtract, maps recurse, the rest is ``after``'s."""
    if isinstance(after, Mapping):
        earlier = before if isinstance(before, Mapping) else {}
        return {key: _minus(value, earlier.get(key)) for key, value in after.items()}
    if isinstance(after, int | float) and not isinstance(after, bool):
        return after - (before if isinstance(before, int | float) else 0)
    return after


@dataclass
class SandboxAdmin:
    """The sandbox's admin and bench routes, from the runner (never through the budget: not API traffic)."""

    root_url: str
    counters: str  # the CRM's own counter route: Bitrix24 ``calls`` (commands), amoCRM ``writes``

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.root_url}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - our own 127.0.0.1 child
            return json.loads(response.read())

    def traffic(self) -> dict[str, Any]:
        """Request counters (by status, route, rate-limited), the CRM's own counters, the server's CPU."""
        return {
            "stats": self.call("GET", "/__sandbox/stats"),
            "counters": self.call("GET", f"/__sandbox/{self.counters}"),
            "cpu_seconds": self.call("GET", "/__bench/cpu")["seconds"],
        }


@dataclass
class Rig:
    """One CRM in a runner child: its destination name, contract, outbound rows, lakehouse and sandbox."""

    crm: str
    contract: dict[str, Any]
    rows: list[dict[str, Any]]
    catalog: Any
    admin: SandboxAdmin

    @property
    def table(self) -> str:
        return f"outbound.{self.crm}_deals"

    def publish(self) -> float:
        return publish(self.catalog, self.table, self.rows, self.contract)

    def sync(self, run_id: str, *, adapter: Any = None, plan_adapter: Any = None) -> dict[str, Any]:
        """One run as the DAG runs it (plan → execute → report), each step timed, traffic per step;
        ``adapter`` for both steps, or ``plan_adapter`` for the plan only (default: the registry's)."""
        from elt_platform.reverse_etl import runs

        marks = [(time.perf_counter(), time.process_time(), self.admin.traffic())]
        summary = runs.plan_run(self.crm, run_id, catalog=self.catalog, adapter=plan_adapter or adapter)
        marks.append((time.perf_counter(), time.process_time(), self.admin.traffic()))
        counts = runs.execute_run(self.crm, run_id, adapter=adapter)
        marks.append((time.perf_counter(), time.process_time(), self.admin.traffic()))
        report_started = time.perf_counter()
        runs.report_run(self.crm, run_id, counts, catalog=self.catalog)
        steps = {}
        for name, (start, end) in (("plan", (0, 1)), ("execute", (1, 2))):
            (t0, c0, before), (t1, c1, after) = marks[start], marks[end]
            steps[name] = {
                "seconds": t1 - t0,
                "client_cpu_seconds": c1 - c0,
                "traffic": _minus(after, before),
            }
        return {
            "run_id": run_id,
            "candidates": summary["candidates"],
            "actions": summary["actions"],
            "counts": counts,
            **steps,
            "report_seconds": time.perf_counter() - report_started,
        }

    def freshness(self, changes: int, reached: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """``changes`` runs with one changed row each: seconds from plan start to execute end, and whether
        the CRM holds the change then (``reached``, asked of the sandbox)."""
        from elt_platform.reverse_etl import runs

        samples = []
        for i in range(changes):
            n = i * len(self.rows) // changes
            self.rows[n] = with_amount(self.contract, self.rows[n], BASE_AMOUNT + 2_000 + 100 * i)
            publish_seconds = self.publish()
            before = self.admin.traffic()
            started = time.perf_counter()
            summary = runs.plan_run(self.crm, f"fresh-{i}", catalog=self.catalog)
            planned = time.perf_counter()
            counts = runs.execute_run(self.crm, f"fresh-{i}")
            done = time.perf_counter()
            traffic = _minus(self.admin.traffic(), before)
            arrived = reached(self.rows[n])
            runs.report_run(self.crm, f"fresh-{i}", counts, catalog=self.catalog)
            samples.append(
                {
                    "external_id": self.rows[n]["external_id"],
                    "publish_seconds": publish_seconds,
                    "plan_seconds": planned - started,
                    "execute_seconds": done - planned,
                    "seconds": done - started,
                    "report_seconds": time.perf_counter() - done,
                    "actions": summary["actions"],
                    "calls": traffic["stats"]["requests"],
                    "reached": arrived,
                }
            )
            _progress(self.crm, f"change {i + 1}/{changes}: {done - started:.1f} s, reached: {arrived}")
        return samples


def _runner_setup(crm: str, connection: dict[str, Any]) -> Any:
    """A runner's environment (connection, auto-approval) and warm-up (one-off imports); its catalog."""
    import pyiceberg.io.pyarrow  # noqa: F401  (one-off imports the timings should not include)
    from airflow.sdk import BaseHook

    from elt_platform.config import PlatformConfig
    from elt_platform.iceberg.catalog import load_catalog
    from elt_platform.registry import registry

    warnings.filterwarnings("ignore", message="Delete operation did not match any records")
    conn_id = registry().destinations[crm].connection or ""
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(connection)
    os.environ["ELT_REVERSE_ETL_AUTO_APPROVE"] = crm  # the first run would wait for a person
    BaseHook.get_connection(conn_id)  # Airflow's settings and secrets masker load once
    config = PlatformConfig.from_env()
    config.ensure_local_dirs()
    catalog = load_catalog(config)
    catalog.create_namespace("outbound")
    return catalog


def _bitrix24_child(api_url: str, root_url: str, deals: int, changes: int) -> dict[str, Any]:
    from elt_platform.reverse_etl import feed

    crm = "bitrix24"
    contract = load_contract(crm)
    extra = {"requests_per_second": BITRIX24.rate}  # burst: the destination's default (below the portal's)
    catalog = _runner_setup(
        crm, {"conn_type": "http", "host": api_url, "password": os.environ[TOKEN_ENV], "extra": extra}
    )
    rows = [outbound_row(contract, n, BASE_AMOUNT, BITRIX24_BRANCH) for n in range(1, deals + 1)]
    feed.contract_errors(rows[0], f"schemas/contracts/{crm}/deal.schema.json")  # compile the validator
    rig = Rig(crm, contract, rows, catalog, SandboxAdmin(root_url, "calls"))
    prefix = f"F{BITRIX24_BRANCH[0]}_"
    results: dict[str, Any] = {"publish_seconds": rig.publish()}

    _progress(
        crm, f"first sync of {deals:,} new deals (limit-bound: ~{_eta(crm, 'create', deals):.0f} s) ..."
    )
    results["create"] = rig.sync("create")
    results["create"]["crm"] = _bitrix24_state(rig.admin.call("GET", f"/__bench/deals?prefix={prefix}"), rows)
    _progress(crm, f"first sync: {_brief(results['create'])}")

    rig.rows = [with_amount(contract, row, BASE_AMOUNT + 1_000) for row in rows]
    rig.publish()
    _refill(crm)
    _progress(crm, f"update sync of {deals:,} deals (~{_eta(crm, 'update', deals):.0f} s) ...")
    results["update"] = rig.sync("update")
    results["update"]["crm"] = _bitrix24_state(
        rig.admin.call("GET", f"/__bench/deals?prefix={prefix}"), rig.rows
    )
    _progress(crm, f"update sync: {_brief(results['update'])}")

    def reached(row: dict[str, Any]) -> bool:
        found = rig.admin.call("GET", f"/__bench/deals/{row['external_id']}")
        return len(found) == 1 and found[0][1] == row["amount"]

    _refill(crm)
    results["freshness"] = rig.freshness(changes, reached)
    return results


def _bitrix24_state(found: Mapping[str, list[list[float]]], rows: list[dict[str, Any]]) -> dict[str, int]:
    """How the portal's deals of the benchmark compare with the rows: each exactly once, with its amount."""
    expected = {row["external_id"]: row["amount"] for row in rows}
    return {
        "rows": len(expected),
        "deals": sum(len(deals) for deals in found.values()),
        "missing": sum(1 for external_id in expected if not found.get(external_id)),
        "duplicated": sum(1 for deals in found.values() if len(deals) > 1),
        "unexpected": sum(1 for external_id in found if external_id not in expected),
        "wrong_values": sum(
            1
            for external_id, deals in found.items()
            if external_id in expected and any(deal[1] != expected[external_id] for deal in deals)
        ),
    }


def _amocrm_child(
    api_url: str, root_url: str, deals: int, new: int, changes: int, lookup: str
) -> dict[str, Any]:
    from elt_platform.destinations.amocrm.client import AmoCrmDestination
    from elt_platform.destinations.amocrm.mapping import load_config
    from elt_platform.destinations.amocrm.sync import AmoCrmSync
    from elt_platform.reverse_etl import feed
    from elt_platform.sandbox.amocrm.account import BRANCHES
    from elt_platform.state import open_state_store, outbox

    crm = "amocrm"
    contract = load_contract(crm)
    branch = (1, BRANCHES[0][1])
    connection = {
        "conn_type": "http",
        "host": api_url,
        "password": os.environ[TOKEN_ENV],
        "extra": {"requests_per_second": AMOCRM.rate},  # burst: the source's default (requests spaced)
    }
    catalog = _runner_setup(crm, connection)
    rows = [outbound_row(contract, n, BASE_AMOUNT, branch) for n in range(1, deals + 1)]
    feed.contract_errors(rows[0], f"schemas/contracts/{crm}/deal.schema.json")
    rig = Rig(crm, contract, rows[:new], catalog, SandboxAdmin(root_url, "writes"))
    results: dict[str, Any] = {"publish_seconds": rig.publish()}

    eta = _eta(crm, "new", new, lists=None if lookup == "search" else 4)
    _progress(crm, f"first sync of {new:,} new rows, looked up by {lookup} (~{eta:.0f} s) ...")
    planner = (
        None
        if lookup == "auto"
        else AmoCrmSync(AmoCrmDestination.from_airflow(), load_config(), lookup=lookup)
    )
    try:
        results["new"] = rig.sync("new", plan_adapter=planner)
    finally:
        if planner is not None:
            planner.close()
    _progress(crm, f"first sync: {_brief(results['new'])}")

    def crm_state(current: list[dict[str, Any]]) -> dict[str, int]:
        records = outbox.load_records(open_state_store(), crm)
        lead_of = {r.external_id: r.crm_ids.get("deal") for r in records.values()}
        ids = sorted({int(lead) for lead in lead_of.values() if lead is not None})
        found = rig.admin.call("POST", "/__bench/leads", ids)
        return _amocrm_state(current, lead_of, found)

    if new < deals:
        rig.rows = rows
        rig.publish()
        _refill(crm)
        results["seed"] = _amocrm_seed(rig, deals - new)
        results["seed"]["crm"] = crm_state(rows)
    else:
        results["new"]["crm"] = crm_state(rows)
    rig.rows = [with_amount(contract, row, BASE_AMOUNT + 1_000) for row in rows]
    rig.publish()
    _refill(crm)
    _progress(crm, f"steady state: {deals:,} leads updated (~{_eta(crm, 'update', deals):.0f} s) ...")
    results["update"] = rig.sync("update")
    results["update"]["crm"] = crm_state(rig.rows)
    _progress(crm, f"steady state: {_brief(results['update'])}")

    def reached(row: dict[str, Any]) -> bool:
        lead = outbox.load_records(open_state_store(), crm)[row["external_id"]].crm_ids.get("deal")
        found = rig.admin.call("POST", "/__bench/leads", [int(lead)] if lead else [])
        state = _amocrm_state([row], {row["external_id"]: lead}, found)
        return state["deals"] == 1 and state["wrong_values"] == 0

    _refill(crm)
    results["freshness"] = rig.freshness(changes, reached)
    return results


def _amocrm_seed(rig: Rig, rows: int) -> dict[str, Any]:
    """The seed: the rows the first sync left out, created without searching."""
    from elt_platform.destinations.amocrm.client import AmoCrmDestination
    from elt_platform.destinations.amocrm.mapping import load_config
    from elt_platform.destinations.amocrm.sync import AmoCrmSync

    crm = rig.crm
    _progress(crm, f"seeding the other {rows:,} rows (creates only, ~{_eta(crm, 'seed', rows):.0f} s) ...")

    class KnownAbsent(AmoCrmDestination):
        """The seed's destination: the real client for writes, reads by id and configuration; the searches
        answer "nothing" without a request (the benchmark built the account: none of these rows is in it)."""

        def search_leads(self, query: str, **options: Any) -> list[dict[str, Any]]:
            return []

        def search_contacts(self, query: str, **options: Any) -> list[dict[str, Any]]:
            return []

    seeding = AmoCrmSync(KnownAbsent(AmoCrmDestination.from_airflow().client), load_config(), lookup="search")
    try:
        results = rig.sync("seed", adapter=seeding)
    finally:
        seeding.close()
    _progress(crm, f"seed: {_brief(results)}")
    return results


def _amocrm_state(
    rows: list[dict[str, Any]], lead_of: Mapping[str, Any], found: Mapping[str, list[Any]]
) -> dict[str, int]:
    """How the account's leads compare with the rows: one lead each, its reception and price."""
    leads = [lead_of.get(row["external_id"]) for row in rows]
    present = [lead for lead in leads if lead is not None and str(lead) in found]
    wrong = sum(
        1
        for row, lead in zip(rows, leads, strict=True)
        if lead is not None
        and str(lead) in found
        and (
            found[str(lead)][0] is None
            or float(found[str(lead)][0]) != row["amount"]
            or int(found[str(lead)][1] or 0) != row["reception_id"]
        )
    )
    return {
        "rows": len(rows),
        "deals": len(set(present)),
        "missing": len(rows) - len(present),
        "duplicated": len(present) - len(set(present)),
        "wrong_values": wrong,
    }


def _needed(crm: str, phase: str, rows: int, *, lists: int | None = None) -> dict[str, int]:
    """The least calls a phase's action mix needs, from the benchmark's data (not from what the run sent).

    Bitrix24, in commands, each step in full ``batch`` calls: look-ups by external id 50 per
    ``crm.deal.list``; two ``crm.duplicate.findbycomm`` per new phone (contact, lead); a create is
    ``crm.contact.add`` + ``crm.deal.add``, an update one ``crm.deal.update``; plus the plan's two
    configuration reads (stages, deal user fields). amoCRM, in requests: a new row's look-ups are three
    searches (reception id, patient number, phone) or, when the plan reads the lists, ``lists`` requests
    for the whole plan (:func:`_list_requests`); reads by id 250 a page, writes 50 a request; plus the
    configuration reads (pipelines, custom fields) of the plan and of the execute step — separate tasks,
    each resolving the names — except in the seed, whose one adapter serves both steps.
    """
    if crm == "bitrix24":
        lookups = math.ceil(rows / BITRIX24.per_call)
        steps = {"create": [lookups, 2 * rows, 2 * rows], "update": [lookups, rows], "fresh": [lookups, rows]}
        work = sum(math.ceil(commands / BITRIX24.per_call) for commands in steps[phase])
        return {"calls": 2 + work, "commands": 2 + sum(steps[phase])}
    writes, reads = math.ceil(rows / AMOCRM.per_call), math.ceil(rows / AMOCRM_PAGE)
    lookups = 3 * rows if lists is None else lists
    work = {"new": lookups + writes, "seed": writes, "update": reads + writes, "fresh": reads + writes}[phase]
    return {"calls": (2 if phase == "seed" else 4) + work}


def _list_requests(open_leads: int, contacts: int) -> int:
    """What the plan's list path costs: for each list (the clinic pipelines' open leads, the contacts) one
    request for its length (a page past its end: 204), then its pages of 250 (one, 204, when empty)."""
    return sum(1 + max(1, math.ceil(count / AMOCRM_PAGE)) for count in (open_leads, contacts))


def _eta(crm: str, phase: str, rows: int, *, lists: int | None = None) -> float:
    return LIMITS[crm].min_seconds(_needed(crm, phase, rows, lists=lists)["calls"])


def _refill(crm: str) -> None:
    """Wait until the account's bucket is full again (the client's budget and the server's bucket refill
    at the same rate): every measured phase starts as the bound assumes."""
    limit = LIMITS[crm]
    time.sleep(limit.burst / limit.rate)


def _brief(phase: dict[str, Any]) -> str:
    seconds = phase["plan"]["seconds"] + phase["execute"]["seconds"]
    calls = phase["plan"]["traffic"]["stats"]["requests"] + phase["execute"]["traffic"]["stats"]["requests"]
    return f"{phase['actions']} in {seconds:.1f} s, {calls:,} calls"


def _runner_child(opts: argparse.Namespace) -> None:
    if opts.child == "bitrix24":
        report = _bitrix24_child(opts.api_url, opts.root_url, opts.deals, opts.changes)
    else:
        report = _amocrm_child(
            opts.api_url, opts.root_url, opts.deals, opts.amocrm_new, opts.changes, opts.amocrm_lookup
        )
    Path(opts.out).write_text(json.dumps(report), encoding="utf-8")


def _relay(stream: Any) -> None:
    """Print a runner's progress lines as they come."""
    for line in stream:
        print(line, end="", flush=True)


def run_runners(
    sandboxes: dict[str, Sandbox], home: Path, opts: argparse.Namespace, *, parallel: bool
) -> dict[str, Any]:
    """Run one runner child per CRM (at once, or one after the other); their reports.

    A runner's own lakehouse and state store live under ``home/<crm>/home``; the library's log lines (on
    stdout, Airflow's logging) go to ``home/<crm>/runner.log``, its progress lines (stderr) to this console.
    """
    started: dict[str, tuple[subprocess.Popen[str], threading.Thread, Path, Path]] = {}
    reports: dict[str, Any] = {}

    def start(crm: str, sandbox: Sandbox) -> None:
        work = home / crm
        work.mkdir()
        out, log = work / "report.json", work / "runner.log"
        env = {**os.environ, "ELT_HOME": str(work / "home"), "AIRFLOW_HOME": str(work / "airflow")}
        args = [
            *("--child", crm, "--api-url", sandbox.api_url, "--root-url", sandbox.root_url),
            *("--deals", str(opts.deals), "--amocrm-new", str(opts.amocrm_new)),
            *("--amocrm-lookup", opts.amocrm_lookup),
            *("--changes", str(opts.changes), "--out", str(out)),
        ]
        with log.open("w", encoding="utf-8") as log_file:
            child = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), *args],
                env=env,
                stdout=log_file,
                stderr=subprocess.PIPE,
                text=True,
            )
        relay = threading.Thread(target=_relay, args=(child.stderr,), daemon=True)
        relay.start()
        started[crm] = (child, relay, out, log)

    def finish(crm: str) -> None:
        child, relay, out, log = started[crm]
        child.wait(timeout=RUNNER_TIMEOUT_SECONDS)
        relay.join(timeout=10)
        if child.returncode != 0:
            tail = log.read_text(encoding="utf-8", errors="replace")[-4000:]
            raise RuntimeError(f"the {crm} runner failed ({child.returncode}); end of {log}:\n{tail}")
        reports[crm] = json.loads(out.read_text(encoding="utf-8"))

    try:
        for crm, sandbox in sandboxes.items():
            start(crm, sandbox)
            if not parallel:
                finish(crm)
        for crm in started:
            if crm not in reports:
                finish(crm)
    finally:
        for child, relay, _, _ in started.values():
            if child.poll() is None:
                child.kill()
                child.wait(timeout=15)
            relay.join(timeout=10)
    return reports


# -- figures ---------------------------------------------------------------------------------------------


def _phase_figures(
    crm: str, name: str, phase: dict[str, Any], rows: int, *, lists: int | None = None
) -> dict[str, Any]:
    """Rates and ratios of one measured run against its limit-bound least time."""
    limit = LIMITS[crm]
    seconds = phase["plan"]["seconds"] + phase["execute"]["seconds"]
    steps = (phase["plan"]["traffic"], phase["execute"]["traffic"])
    calls = sum(step["stats"]["requests"] for step in steps)
    needed = _needed(crm, name, rows, lists=lists)
    bound_seconds = limit.min_seconds(needed["calls"])
    figures: dict[str, Any] = {
        "rows": rows,
        "seconds": seconds,
        "calls": calls,
        "deals_per_second": rows / seconds,
        "calls_ratio": calls / limit.max_calls(seconds),
        "needed_calls": needed["calls"],
        "bound_seconds": bound_seconds,
        # None when the work fits in the burst: not limit-bound, no ratio to speak of.
        "mix_ratio": bound_seconds / seconds if bound_seconds else None,
        "issue_ratio": rows / seconds / (limit.rate * limit.per_call),
        # The best the issue's ratio can be for this action mix: its work in the least time the limit allows.
        "issue_ratio_max": rows / bound_seconds / (limit.rate * limit.per_call) if bound_seconds else None,
        "over_limit": sum(step["stats"]["faults"].get("rate_limited", 0) for step in steps),
        "by_status": _sum_maps(step["stats"]["by_status"] for step in steps),
        "by_route": _sum_maps(step["stats"]["by_route"] for step in steps),
        "sandbox_cpu_seconds": sum(step["cpu_seconds"] for step in steps),
    }
    figures["sandbox_ms_per_call"] = 1000 * figures["sandbox_cpu_seconds"] / max(calls, 1)
    if crm == "bitrix24":
        methods = _sum_maps(step["counters"]["commands"] for step in steps)
        batched = _sum_maps(step["counters"]["batch_commands"] for step in steps)
        commands = sum(n for method, n in methods.items() if method != "batch")
        figures |= {
            "commands": commands,
            "commands_by_method": methods,
            "needed_commands": needed["commands"],
            "commands_ratio": commands / (limit.per_call * limit.max_calls(seconds)),
            "commands_per_batch": sum(batched.values()) / methods["batch"] if methods.get("batch") else 0.0,
        }
    else:
        figures["writes"] = _sum_maps(step["counters"]["writes"] for step in steps)
    return figures


def _sum_maps(maps: Any) -> dict[str, float]:
    """Counters added up key by key (keys that stayed at zero left out)."""
    total: dict[str, float] = {}
    for counts in maps:
        for key, value in counts.items():
            total[key] = total.get(key, 0) + value
    return {key: value for key, value in sorted(total.items()) if value}


def evaluate(results: dict[str, Any]) -> dict[str, Any]:
    """Figures, ratios and verdicts from the runners' reports (in place, and returned)."""
    deals, new = results["config"]["deals"], results["config"]["amocrm_new"]
    targets: dict[str, dict[str, Any]] = {}
    checks: dict[str, bool] = {}
    sizes = {("bitrix24", "create"): deals, ("bitrix24", "update"): deals}
    sizes |= {("amocrm", "new"): new, ("amocrm", "seed"): deals - new, ("amocrm", "update"): deals}
    lists = None
    if results["config"]["amocrm_lookup"] != "search" and "amocrm" in results["sandboxes"]:
        account = results["sandboxes"]["amocrm"]
        lists = _list_requests(account["clinic_open_leads"], account["content"]["contacts"])
    for (crm, phase), rows in sizes.items():
        if crm not in results["runs"] or phase not in results["runs"][crm]:
            continue
        report = results["runs"][crm]
        figures = _phase_figures(crm, phase, report[phase], rows, lists=lists if phase == "new" else None)
        report[phase]["figures"] = figures
        if phase == "seed" or figures["mix_ratio"] is None:
            continue
        key = f"{crm}_{phase}"
        targets[f"{key}_mix_ratio"] = {"value": figures["mix_ratio"], "target": f">= {TARGET_RATIO}"}
        checks[f"{key}_mix_ratio"] = figures["mix_ratio"] >= TARGET_RATIO
        if crm == "bitrix24":
            targets[f"{key}_commands_ratio"] = {
                "value": figures["commands_ratio"],
                "target": f">= {TARGET_RATIO}",
            }
            checks[f"{key}_commands_ratio"] = figures["commands_ratio"] >= TARGET_RATIO
        if figures["issue_ratio_max"] >= TARGET_RATIO:  # a mix that cannot reach it at all is not held to it
            targets[f"{key}_issue_ratio"] = {"value": figures["issue_ratio"], "target": f">= {TARGET_RATIO}"}
            checks[f"{key}_issue_ratio"] = figures["issue_ratio"] >= TARGET_RATIO
    for crm, report in results["runs"].items():
        samples = report["freshness"]
        seconds = [s["seconds"] for s in samples]
        summary: dict[str, Any] = {
            "changes": len(samples),
            "p50": percentile(seconds, 0.50),
            "p95": percentile(seconds, 0.95),
            "max": max(seconds, default=None),
            "plan_p50": percentile([s["plan_seconds"] for s in samples], 0.50),
            "execute_p50": percentile([s["execute_seconds"] for s in samples], 0.50),
            "publish_p50": percentile([s["publish_seconds"] for s in samples], 0.50),
            "report_p50": percentile([s["report_seconds"] for s in samples], 0.50),
            "calls_per_change": percentile([float(s["calls"]) for s in samples], 0.50),
            "reached": sum(1 for s in samples if s["reached"]),
        }
        report["freshness_summary"] = summary
        targets[f"{crm}_outbound_to_crm_p95"] = {
            "value": summary["p95"],
            "target": f"<= {TARGET_FRESHNESS_SECONDS:.0f}",
        }
        checks[f"{crm}_outbound_to_crm_p95"] = (
            summary["p95"] is not None and summary["p95"] <= TARGET_FRESHNESS_SECONDS
        )
        phases = [p for p in ("create", "new", "seed", "update") if p in report]
        over = sum(report[p]["figures"]["over_limit"] for p in phases)
        targets[f"{crm}_over_limit"] = {"value": over, "target": "== 0"}
        checks[f"{crm}_over_limit"] = over == 0
        states = [report[p]["crm"] for p in phases if "crm" in report[p]]
        wrong = sum(
            s["missing"] + s["duplicated"] + s["wrong_values"] + s.get("unexpected", 0) for s in states
        )
        wrong += summary["changes"] - summary["reached"]
        targets[f"{crm}_crm_state"] = {"value": wrong, "target": "== 0"}
        checks[f"{crm}_crm_state"] = wrong == 0
    results["targets"] = targets
    mark_targets(targets, checks)
    return results


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _phase_lines(crm: str, title: str, phase: dict[str, Any]) -> list[str]:
    figures = phase["figures"]
    plan, execute = phase["plan"], phase["execute"]
    lines = [
        f"  {title}: {figures['rows']:,} rows → {phase['actions']}",
        f"    plan {plan['seconds']:.1f} s ({plan['traffic']['stats']['requests']:,} calls, client CPU "
        f"{plan['client_cpu_seconds']:.1f} s) + execute {execute['seconds']:.1f} s "
        f"({execute['traffic']['stats']['requests']:,} calls, client CPU "
        f"{execute['client_cpu_seconds']:.1f} s)"
        f" = {figures['seconds']:.1f} s; report {phase['report_seconds']:.1f} s",
        f"    sandbox CPU {figures['sandbox_cpu_seconds']:.1f} s = {figures['sandbox_ms_per_call']:.0f} ms a "
        f"call (at the limit a call may take {1000 / LIMITS[crm].rate:.0f} ms; the client waits for each)",
        f"    calls {figures['calls']:,} (least for this mix {figures['needed_calls']:,}), by status "
        f"{figures['by_status']}, over the limit {figures['over_limit']}",
    ]
    if crm == "bitrix24":
        lines.append(
            f"    commands {figures['commands']:,} (least {figures['needed_commands']:,}), "
            f"{figures['commands_per_batch']:.1f} per batch call: "
            + ", ".join(f"{m} {n:,}" for m, n in sorted(figures["commands_by_method"].items()))
        )
    else:
        lines.append(f"    by route {figures['by_route']}, entities written {figures['writes']}")
    lines += [
        f"    {figures['deals_per_second']:.1f} deals/s; calls ÷ allowed {figures['calls_ratio']:.2f}"
        + (f"; commands/s ÷ bound {figures['commands_ratio']:.2f}" if crm == "bitrix24" else "")
        + f"; deals/s ÷ mix bound ({figures['bound_seconds']:.1f} s) "
        + ("n/a: fits in the burst" if figures["mix_ratio"] is None else f"{figures['mix_ratio']:.2f}"),
        f"    issue's ratio deals/s ÷ {LIMITS[crm].rate * LIMITS[crm].per_call:.0f}: "
        f"{figures['issue_ratio']:.3f}" + _issue_ceiling(figures["issue_ratio_max"]),
    ]
    if "crm" in phase:
        lines.append(f"    in the CRM: {phase['crm']}")
    return lines


def _issue_ceiling(best: float | None) -> str:
    if best is None:
        return " (the work fits in the burst)"
    if best < TARGET_RATIO:
        return f" (at most {best:.3f} for this mix: cannot reach {TARGET_RATIO} by construction)"
    return f" (at most {best:.3f} for this mix)"


def render(results: dict[str, Any]) -> str:
    """The human-readable report."""
    config = results["config"]
    busy = config["load_average_at_start"][0] > BUSY_LOAD_AVERAGE
    lines = [
        f"reverse-ETL benchmark: {config['deals']:,} deals per CRM, amoCRM first sync of "
        f"{config['amocrm_new']:,} (looked up by {config.get('amocrm_lookup', 'search')}), "
        f"{config['changes']} single changes; "
        f"{'one CRM after the other' if config['sequential'] else 'both CRMs at once'}; "
        f"{config['cpus']} CPUs",
        f"load average (1 min) before the run: {config['load_average_at_start'][0]:.2f}"
        + (" -- other processes were busy, the figures are noisy" if busy else ""),
    ]
    titles = {
        "bitrix24": (
            "Bitrix24 (leaky bucket 50 calls, 2/s; batch ≤ 50 commands: bound 100 commands/s)",
            [("create", "first sync, creates"), ("update", "update sync")],
        ),
        "amocrm": (
            "amoCRM (7 requests/s; 50 entities a write, 250 a read)",
            [
                ("new", "first sync, new rows"),
                ("seed", "seed (no target)"),
                ("update", "steady state, updates"),
            ],
        ),
    }
    for crm, report in results["runs"].items():
        title, phases = titles[crm]
        sandbox = results["sandboxes"][crm]
        lines += ["", f"{title}; sandbox {sandbox['content']} built in {sandbox['build_seconds']:.1f} s"]
        for phase, label in phases:
            if phase not in report:
                continue
            lines += _phase_lines(crm, label, report[phase])
            if phase == "new" and config["amocrm_new"] < config["deals"]:
                rate = report[phase]["figures"]["deals_per_second"]
                lines.append(
                    f"    {config['deals']:,} new rows at this rate: {config['deals'] / rate / 60:.0f} min"
                )
        summary = report["freshness_summary"]
        lines += [
            f"  freshness, one changed row among {config['deals']:,}, plan + execute over "
            f"{summary['changes']} changes: p50 {_seconds(summary['p50'])} s, "
            f"p95 {_seconds(summary['p95'])} s, "
            f"max {_seconds(summary['max'])} s; reached the CRM {summary['reached']}/{summary['changes']}",
            f"    plan p50 {_seconds(summary['plan_p50'])} s, "
            f"execute p50 {_seconds(summary['execute_p50'])} s, "
            f"{summary['calls_per_change']:.0f} calls each (least {_needed(crm, 'fresh', 1)['calls']}); "
            f"not on the path: publishing the table p50 {_seconds(summary['publish_p50'])} s, "
            f"the report p50 {_seconds(summary['report_p50'])} s",
        ]
    lines += [
        "",
        "end-to-end freshness = iDent micro-batch extract + dbt up to the outbound table "
        "(bench/ident_load.py) + the figures above (+ the scheduler starting the asset-triggered DAG)",
        "",
        f"{'target':40}{'value':>10}  {'goal':10}result",
    ]
    for key, target in results["targets"].items():
        value = target["value"]
        shown = "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)
        lines.append(f"{key:40}{shown:>10}  {target['target']:10}{target['result']}")
    return "\n".join(lines)


def run(opts: argparse.Namespace) -> dict[str, Any]:
    """Serve the sandboxes, run the runners, evaluate; everything in a fresh ELT_HOME."""
    crms = [opts.only] if opts.only else list(CRMS)
    results: dict[str, Any] = {
        "config": {
            "deals": opts.deals,
            "amocrm_new": opts.amocrm_new,
            "amocrm_lookup": opts.amocrm_lookup,
            "changes": opts.changes,
            "seed": opts.seed,
            "crms": crms,
            "sequential": opts.sequential,
            "limits": {crm: asdict(LIMITS[crm]) for crm in crms},
            "portal": PORTAL,
            "amocrm_account_leads": AMOCRM_ACCOUNT_LEADS,
            "cpus": os.cpu_count(),
            "load_average_at_start": list(os.getloadavg()),
            "versions": versions(("pyiceberg", "pyarrow", "requests", "jsonschema", "uvicorn", "fastapi")),
        }
    }
    for name in MAPPING_VARIABLES:  # the default mappings are the ones that fit the sandboxes
        os.environ.pop(name, None)
    with temporary_home("reverse_etl_bench_", keep=opts.keep) as home:
        results["config"]["elt_home"] = str(home)
        env = {**os.environ, TOKEN_ENV: secrets.token_urlsafe(24)}
        os.environ[TOKEN_ENV] = env[TOKEN_ENV]
        with contextlib.ExitStack() as stack:
            print(f"ELT_HOME={home}; building the sandboxes {crms} ...", flush=True)
            sandboxes = {crm: stack.enter_context(sandbox_process(crm, opts.seed, env)) for crm in crms}
            results["sandboxes"] = {
                crm: {
                    "build_seconds": s.build_seconds,
                    "content": s.content,
                    "clinic_open_leads": s.clinic_open_leads,
                }
                for crm, s in sandboxes.items()
            }
            started = time.perf_counter()
            results["runs"] = run_runners(sandboxes, home, opts, parallel=not opts.sequential)
            results["config"]["wall_seconds"] = time.perf_counter() - started
        results["config"]["load_average_at_end"] = list(os.getloadavg())
    return evaluate(results)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--deals", type=int, help=f"outbound rows per CRM (default {DEALS:,}; --quick {QUICK_DEALS:,})"
    )
    parser.add_argument(
        "--amocrm-new", type=int, help="amoCRM rows of the first sync (default: all --deals; the rest seeded)"
    )
    parser.add_argument(
        "--amocrm-lookup",
        choices=AMOCRM_LOOKUPS,
        default="auto",
        help="how the amoCRM first sync looks rows up: auto (as the DAG: lists when cheaper), search, list",
    )
    parser.add_argument(
        "--changes", type=int, help=f"single changes timed (default {CHANGES}; --quick {QUICK_CHANGES})"
    )
    parser.add_argument("--only", choices=CRMS, help="one CRM only")
    parser.add_argument(
        "--sequential", action="store_true", help="one CRM after the other (less noise, longer)"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    parser.add_argument("--seed", type=int, default=SEED, help="sandbox content seed")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary ELT_HOME (logs, lakehouse)")
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON goes (default bench/results)"
    )
    parser.add_argument("--child", choices=("serve", *CRMS), help=argparse.SUPPRESS)
    parser.add_argument("--crm", choices=CRMS, help=argparse.SUPPRESS)
    parser.add_argument("--api-url", help=argparse.SUPPRESS)
    parser.add_argument("--root-url", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    for name, full, quick in (
        ("deals", DEALS, QUICK_DEALS),
        ("changes", CHANGES, QUICK_CHANGES),
    ):
        if getattr(opts, name) is None:
            setattr(opts, name, quick if opts.quick else full)
    if opts.amocrm_new is None:
        opts.amocrm_new = opts.deals
    if opts.deals < 1 or opts.changes < 1 or not 1 <= opts.amocrm_new <= opts.deals:
        parser.error("--deals and --changes must be positive, --amocrm-new within 1 .. deals")
    return opts


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or one of its child roles); print and save the results."""
    opts = _parse_args(argv)
    if opts.child == "serve":
        (_serve_bitrix24 if opts.crm == "bitrix24" else _serve_amocrm)(opts.seed)
        return 0
    if opts.child in CRMS:
        _runner_child(opts)
        return 0
    results = run(opts)
    print()
    print(render(results))
    return save_results(results, opts.results_dir, "reverse_etl", strict=opts.strict)


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark the iDent extract: initial load against a raw fetchmany baseline, peak RSS, freshness.

Usage::

    python bench/ident_load.py [--receptions 1000000] [--ticks 20] [--gold-ticks 20] [--commit-mb 2]
                               [--also-pool system] [--quick] [--strict]

Everything happens in a fresh temporary ``ELT_HOME`` (embedded SQLite catalog and state store, local
warehouse; ``harness.LOCATION_VARIABLES`` are dropped) against the iDent sandbox: a throw-away PostgreSQL
cluster holding the four clinic databases (five branches), read through psqlODBC by pyodbc exactly as the
extract reads SQL Server. Phases:

0. the sandbox: ``generator.load`` at the scale that gives about ``--receptions`` receptions (with their
   patients, staff, bills, plans, payments), bulk-copied with COPY, in a child process;
1. initial load: the real extract (``sources.ident.extract.load``, daily mode, ``[D-1, D)``: every table
   of every database, key-set reconciliation, one transaction, watermarks) in a child process started by
   a stdlib-only probe: rows/s and peak RSS (target <= 200 MB, the issue's bound for an extract task);
   then the next day's daily run ``[D, D+1)`` the same way: the day's changes and the key-set
   reconciliation against the loaded bronze (the steady state of the daily DAG): seconds and peak RSS;
   with ``--also-pool``, both again with ``ARROW_DEFAULT_MEMORY_POOL`` set, in a second ``ELT_HOME``;
2. (a) baseline: the same queries with plain ``pyodbc`` ``fetchmany``, each chunk turned into Arrow
   column by column, then one pyiceberg append per table into fresh tables of the same declarations, in a
   child process: rows/s; the ratio extract / baseline (target >= 0.5, the Alaqan benchmark's bar);
3. bronze gate: every suite of the source's ``bronze_suites`` over ``[D-1, D)``, as the DAG's gate runs
   after the initial load, in a child process: seconds and peak RSS (reported, no target);
4. freshness: the clinic transform (dbt-spark silver + gold, a full rebuild) once after the initial
   load, then ``--ticks`` sandbox ticks, each on one database in turn, each followed at once by the
   micro-batch extract (receptions mode): seconds from the tick's commit to its rows committed in bronze;
   for the first ``--gold-ticks`` ticks also the transform as ``transform_clinic`` builds after a
   micro-batch (the incremental fast path when its check allows it; every time a full rebuild with
   ``--full-rebuilds``): seconds to ``gold.ident_receptions`` and the outbound deal feeds. p50/p95
   (nearest rank) per path; target bronze p95 <= 60 s. Each tick's rows are checked: the micro-batch read
   exactly the tick's inserted and updated receptions, and gold holds its new bookings.

Prints the figures with PASS/MISS, writes them as JSON to ``bench/results/ident_load-<UTC>.json`` and
exits 0 even on a MISS unless ``--strict``. The cluster and every child process end with the run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import (  # the sibling script: puts the repository on sys.path
    RESULTS_DIR,
    last_json_line,
    mark_targets,
    percentile,
    rss_probe,
    save_results,
    temporary_home,
    versions,
    vm_mb,
)

SEED = 42
RECEPTIONS = 1_000_000
QUICK_RECEPTIONS, QUICK_TICKS = 20_000, 5
TICKS = 20
#: The sandbox's local wall clock when the history ends: a Monday noon, so ticks see arrivals and bills.
NOW = datetime(2025, 3, 10, 12, 0)
TICK_MINUTES = 1  # sandbox minutes between ticks, as the every-minute micro-batch DAG sees them
TARGET_RSS_MB = 200.0
TARGET_RATIO = 0.5
TARGET_BRONZE_P95_SECONDS = 60.0
BUSY_LOAD_AVERAGE = 0.5
DATABASES_ENV = "IDENT_BENCH_DATABASES"  # JSON of the cluster's databases (password: never on argv)
COMMIT_BYTES_ENV = "IDENT_BENCH_COMMIT_BYTES"  # --commit-mb, for the probed children (they take no args)
CHILD_TIMEOUT_SECONDS = 6 * 3600.0


# -- the sandbox ----------------------------------------------------------------------------------------


def _databases() -> dict[str, dict[str, Any]]:
    """Manifest database key → how to reach it, from the parent's environment."""
    return json.loads(os.environ[DATABASES_ENV])


def _odbc_settings(database: dict[str, Any]):
    from elt_platform.sandbox.ident.driver import DRIVER
    from elt_platform.sources.ident.client import OdbcSettings

    return OdbcSettings(
        DRIVER,
        database["host"],
        database["name"],
        database["user"],
        database["password"],
        database["port"],
        database["attributes"],
    )


def _driver_attributes(declare_fetch: bool, chunk_rows: int) -> dict[str, str]:
    """psqlODBC attributes: by default it reads a whole result set into client memory before the first
    row is returned; ``UseDeclareFetch`` makes it fetch ``Fetch`` rows at a time from a server cursor,
    as SQL Server's drivers stream a result. Without it, the driver's copy of the largest result set
    counts in the extract's peak RSS (see bench/README.md)."""
    return {"UseDeclareFetch": "1", "Fetch": str(chunk_rows)} if declare_fetch else {}


def _generate_child(receptions: int, seed: int) -> None:
    """Fill the cluster's databases with about ``receptions`` receptions; report the counts."""
    from elt_platform.sandbox.ident.generator import generate, load

    per_unit = sum(len(db.tables["Receptions"]) for db in generate(seed, 1.0, NOW))
    scale = receptions / per_unit
    began = time.perf_counter()
    loaded = load([_odbc_settings(db).connection_string() for db in _databases().values()], seed, scale, NOW)
    counts: dict[str, int] = {}
    for database in loaded:
        for table, rows in database.tables.items():
            counts[table] = counts.get(table, 0) + len(rows)
    print(json.dumps({"scale": scale, "seconds": time.perf_counter() - began, "counts": counts}))


def _interval() -> tuple[date, date]:
    """The daily interval of the initial load: the day before the sandbox's "now"."""
    return NOW.date() - timedelta(days=1), NOW.date()


def _opener(chunk_rows: int):
    from elt_platform.sources.ident.client import IdentClient

    databases = _databases()
    return lambda key: IdentClient(_odbc_settings(databases[key]), chunk_rows=chunk_rows)


# -- phase 1: the real extract --------------------------------------------------------------------------


def _extract_child(day: int = 0) -> None:
    """A daily load with the real extract, timed; its row counts and memory.

    ``day`` 0 is the initial load ``[D-1, D)``; 1 is the next day's run ``[D, D+1)`` over the loaded
    bronze (its reconciliation reads every key of the incremental tables against bronze's).
    """
    import pyiceberg.io.pyarrow  # noqa: F401  (a one-off import the timing should not include)

    from elt_platform.iceberg.catalog import load_catalog
    from elt_platform.sources.ident import extract
    from elt_platform.sources.ident.manifest import load_manifest
    from elt_platform.state.store import open_state_store

    manifest = load_manifest()
    store, catalog = open_state_store(), load_catalog()
    imported_mb = vm_mb("VmRSS")
    start, end = (d + timedelta(days=day) for d in _interval())
    # The high-water mark when the commit starts: the peak of reading, staging and reconciling.
    before_commit: list[float] = []
    commit_of = extract._Run.commit

    def commit(self):
        before_commit.append(vm_mb("VmHWM") or 0)
        return commit_of(self)

    extract._Run.commit = commit  # type: ignore[method-assign]
    began = time.perf_counter()
    summary = extract.load(
        manifest, start, end, run_id=f"bench-day-{day}", mode="daily",
        open_client=_opener(manifest.chunk_rows), store=store, catalog=catalog, today=start,
        commit_bytes=int(os.environ[COMMIT_BYTES_ENV]),
    )  # fmt: skip
    seconds = time.perf_counter() - began
    rows = {table: sum(per_db.values()) for table, per_db in summary.rows.items()}
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rows": sum(rows.values()),
                "rows_by_table": rows,
                "deleted": sum(sum(per_db.values()) for per_db in summary.deleted.values()),
                "written": sum(summary.written.values()),
                "rss_after_imports_mb": imported_mb or 0,
                "vmhwm_before_commit_mb": before_commit[0] if before_commit else 0,
                "vmhwm_mb": vm_mb("VmHWM") or 0,
            }
        )
    )


# -- phase 2: the baseline ------------------------------------------------------------------------------


def _baseline_queries(manifest, name: str, zone: str, cursor) -> tuple[Any, list[Any]]:
    """The query the extract's initial load sends for a table, and its parameters."""
    from zoneinfo import ZoneInfo

    from elt_platform.sources.ident import queries
    from elt_platform.sources.ident.extract import AUDIT_EPOCH

    table = manifest.tables[name]
    if table.rowversion:
        high = cursor.execute(queries.high_water(manifest, name, "postgres").render("postgres")).fetchone()[0]
        return queries.by_rowversion(manifest, name), [0, int(high or 0)]
    if table.audit:
        end = datetime.combine(_interval()[1], datetime.min.time(), tzinfo=UTC)
        high = end.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
        return queries.by_audit(manifest, name), [v for _ in table.audit for v in (AUDIT_EPOCH, high)]
    return queries.full(manifest, name), []


def _baseline_child() -> None:
    """Plain pyodbc ``fetchmany`` of the same queries, columnar Arrow per chunk, one append per table."""
    import pyarrow as pa
    import pyiceberg.io.pyarrow  # noqa: F401  (as in the extract child)
    import pyodbc

    from elt_platform.iceberg.catalog import load_catalog
    from elt_platform.iceberg.tables import load_spec
    from elt_platform.iceberg.writer import ensure_table
    from elt_platform.sources.ident.declarations import spec_path
    from elt_platform.sources.ident.manifest import load_manifest, snake

    manifest = load_manifest()
    catalog = load_catalog()
    specs = {name: load_spec(spec_path(name)) for name in manifest.tables}
    batches: dict[str, list[pa.Table]] = {name: [] for name in manifest.tables}
    start, _ = _interval()
    loaded_at = datetime.now(UTC)
    imported_mb = vm_mb("VmRSS")
    began = time.perf_counter()
    for key, database in _databases().items():
        conn = pyodbc.connect(_odbc_settings(database).connection_string(), autocommit=True, readonly=True)
        try:
            cursor = conn.cursor()
            for name in manifest.tables:
                query, params = _baseline_queries(manifest, name, manifest.databases[key].timezone, cursor)
                cursor.execute(query.render("postgres"), *params)
                positions = {snake(d[0]): i for i, d in enumerate(cursor.description)}
                constants = {
                    "source_db": key, "extract_date": start, "is_deleted": False, "_run_id": "bench-baseline",
                    "_loaded_at": loaded_at, "_batch_id": "bench-baseline", "_source_uri": "odbc://bench",
                }  # fmt: skip
                schema = specs[name].arrow_schema()
                while rows := cursor.fetchmany(manifest.chunk_rows):
                    columns = list(zip(*rows, strict=True))
                    arrays = [
                        pa.repeat(pa.scalar(constants[f.name], f.type), len(rows))
                        if f.name in constants
                        else pa.array(columns[positions[f.name]], type=f.type)
                        for f in schema
                    ]
                    batches[name].append(pa.Table.from_arrays(arrays, schema=schema))
        finally:
            conn.close()
    fetched = time.perf_counter()
    rows = 0
    for name, spec in specs.items():
        table = ensure_table(catalog, replace(spec, identifier=f"bench.ident_{snake(name)}_raw"))
        data = pa.concat_tables(batches.pop(name)) if batches[name] else spec.arrow_schema().empty_table()
        table.append(data)
        rows += len(data)
        del data
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "seconds": done - began,
                "fetch_seconds": fetched - began,
                "append_seconds": done - fetched,
                "rows": rows,
                "rss_after_imports_mb": imported_mb or 0,
                "vmhwm_mb": vm_mb("VmHWM") or 0,
            }
        )
    )


# -- phase 3: the bronze gate ---------------------------------------------------------------------------


def _gate_child() -> None:
    """Every bronze suite of iDent over the initial load's interval (what ``gate_interval`` runs)."""
    from elt_platform.quality.gate import run_gate
    from elt_platform.registry import registry

    start, end = _interval()
    suites = registry().sources["ident"].bronze_suites
    imported_mb = vm_mb("VmRSS")
    timings, warned = {}, {}
    began = time.perf_counter()
    for suite in suites:
        started = time.perf_counter()
        result = run_gate(suite, start, end, run_id="bench-gate")
        timings[suite] = time.perf_counter() - started
        if result.warnings:
            warned[suite] = result.warnings
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - began,
                "suites": len(suites),
                "seconds_by_suite": timings,
                "warnings": warned,
                "rss_after_imports_mb": imported_mb or 0,
                "vmhwm_mb": vm_mb("VmHWM") or 0,
            }
        )
    )


# -- phase 4: freshness ---------------------------------------------------------------------------------


def _build_gold(domain, *, full: bool = False) -> dict[str, Any]:
    """dbt silver then gold (with the outbound feeds) of the clinic domain as ``transform_clinic`` builds
    it (``runs.transform.state_work``: the fast path when its check allows it, else a full rebuild;
    ``full``: always a full rebuild); seconds per step and the mode."""
    from elt_platform.runs.transform import build, state_work

    began = time.perf_counter()
    work = state_work(domain.name, force_full=full)
    decided = time.perf_counter()
    build(domain.name, "silver", work)
    silver = time.perf_counter()
    build(domain.name, "gold", work)
    done = time.perf_counter()
    return {
        "seconds": done - began,
        "check_seconds": decided - began,
        "silver_seconds": silver - decided,
        "gold_seconds": done - silver,
        "mode": "incremental" if work["incremental"] else "full",
        "reason": work["reason"],
    }


def _gold_has(catalog, database: str, receptions: set[int]) -> bool:
    """Whether ``gold.ident_receptions`` holds every one of ``receptions`` of ``database``."""
    from pyiceberg.expressions import EqualTo

    # pyiceberg's pydantic predicates: mypy sees the model fields, not the positional __init__.
    row_filter = EqualTo("source_db", database)  # type: ignore[call-arg, misc, arg-type]
    rows = catalog.load_table("gold.ident_receptions").scan(
        row_filter=row_filter, selected_fields=("reception_id",)
    )
    return receptions <= set(rows.to_arrow().column("reception_id").to_pylist())


def _micro_batch_keys(catalog, run_id: str) -> set[tuple[str, int]]:
    """(database, reception id) of every row a micro-batch wrote to ``bronze.ident_receptions``."""
    from pyiceberg.expressions import EqualTo

    # pyiceberg's pydantic predicates: mypy sees the model fields, not the positional __init__.
    row_filter = EqualTo("_batch_id", f"receptions/{run_id}")  # type: ignore[call-arg, misc, arg-type]
    rows = catalog.load_table("bronze.ident_receptions").scan(
        row_filter=row_filter, selected_fields=("source_db", "id")
    )
    table = rows.to_arrow()
    return set(zip(table.column("source_db").to_pylist(), table.column("id").to_pylist(), strict=True))


def _freshness_child(ticks: int, gold_ticks: int, seed: int, full_rebuilds: bool = False) -> None:
    """The transform once, then ``ticks`` ticks each followed by a micro-batch (and dbt for the first
    ``gold_ticks``); every tick's latencies and row checks."""
    import pyodbc

    from elt_platform.iceberg.catalog import load_catalog
    from elt_platform.registry import registry
    from elt_platform.sandbox.ident.activity import tick
    from elt_platform.sources.ident.extract import load
    from elt_platform.sources.ident.manifest import load_manifest
    from elt_platform.state.store import open_state_store

    manifest = load_manifest()
    store, catalog = open_state_store(), load_catalog()
    domain = registry().domains["clinic"]
    databases = _databases()
    keys = list(databases)
    start, end = _interval()
    initial_transform = _build_gold(domain)["seconds"] if gold_ticks else None
    records = []
    for number in range(ticks):
        key = keys[number % len(keys)]
        conn = pyodbc.connect(_odbc_settings(databases[key]).connection_string())
        try:
            moment = NOW + timedelta(minutes=TICK_MINUTES * (number + 1))
            result = tick(conn, moment, seed=seed)
            committed = time.perf_counter()  # tick() returns right after its commit
        finally:
            conn.close()
        run_id = f"bench-micro-{number}"
        load(
            manifest, start, end, run_id=run_id, mode="receptions",
            open_client=_opener(manifest.chunk_rows), store=store, catalog=catalog, today=end,
        )  # fmt: skip
        in_bronze = time.perf_counter()
        changed = (result.inserted | result.updated) - set(result.deleted)
        record: dict[str, Any] = {
            "tick": number + 1,
            "database": key,
            "changed_receptions": len(changed),
            "deleted": len(result.deleted),
            "to_bronze_seconds": in_bronze - committed,
            "bronze_exact": _micro_batch_keys(catalog, run_id) == {(key, ident) for ident in changed},
        }
        if number < gold_ticks:
            record["transform"] = _build_gold(domain, full=full_rebuilds)
            record["to_gold_seconds"] = time.perf_counter() - committed
            record["gold_has_new_bookings"] = _gold_has(catalog, key, result.inserted - set(result.deleted))
        records.append(record)
        print(json.dumps(record), file=sys.stderr, flush=True)
    print(json.dumps({"initial_transform_seconds": initial_transform, "ticks": records}))


# -- the parent -----------------------------------------------------------------------------------------


def _child(
    role: str, args: list[str], *, probe: bool, logs: Path, env: dict[str, str] | None = None, tag: str = ""
) -> dict[str, Any]:
    """Run a role in a child process (through the stdlib-only RSS probe when ``probe``); its report.

    The child's stderr (logs, Spark's, each tick's figures as it goes) goes to ``logs/<role><tag>.log``;
    ``env`` replaces the environment it inherits.
    """
    command = [sys.executable, str(Path(__file__).resolve()), "--child"]
    command += ["rss-probe", "--probe-role", role] if probe else [role]
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{role}{tag}.log"
    print(f"  (stderr: {log})", flush=True)
    with log.open("w", encoding="utf-8") as stderr:
        done = subprocess.run(
            [*command, *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=CHILD_TIMEOUT_SECONDS + 60,
            check=False,
            env=env,
        )
    if done.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-4000:]
        raise RuntimeError(f"{role} child failed ({done.returncode}):\n{tail}")
    return last_json_line(done.stdout)


def evaluate(results: dict[str, Any]) -> dict[str, Any]:
    """Rates, ratios, percentiles and verdicts from the phase results (in place, and returned)."""
    extract, baseline, next_day = results["extract"], results["baseline"], results["next_day"]
    for phase in (extract, baseline):
        phase["rows_per_second"] = phase["rows"] / phase["seconds"]
    peak = max(extract["peak_rss_mb"], next_day["peak_rss_mb"])
    ratio = extract["rows_per_second"] / baseline["rows_per_second"]
    ticks = results["freshness"]["ticks"]
    bronze = [t["to_bronze_seconds"] for t in ticks]
    gold = [t["to_gold_seconds"] for t in ticks if "to_gold_seconds" in t]
    results["freshness"]["summary"] = {
        "ticks": len(bronze),
        "gold_ticks": len(gold),
        "bronze_p50": percentile(bronze, 0.5),
        "bronze_p95": percentile(bronze, 0.95),
        "gold_p50": percentile(gold, 0.5),
        "gold_p95": percentile(gold, 0.95),
        "bronze_exact": all(t["bronze_exact"] for t in ticks),
        "gold_has_new_bookings": all(t.get("gold_has_new_bookings", True) for t in ticks),
        "incremental_ticks": sum(1 for t in ticks if t.get("transform", {}).get("mode") == "incremental"),
        **{
            f"{step}_step_p50": percentile(
                [t["transform"][f"{step}_seconds"] for t in ticks if "transform" in t], 0.5
            )
            for step in ("check", "silver", "gold")
        },
    }
    summary = results["freshness"]["summary"]
    results["targets"] = {
        "extract_over_baseline": {"value": ratio, "target": f">= {TARGET_RATIO}"},
        "extract_peak_rss_mb": {"value": peak, "target": f"<= {TARGET_RSS_MB:.0f}"},
        "bronze_freshness_p95_seconds": {
            "value": summary["bronze_p95"],
            "target": f"<= {TARGET_BRONZE_P95_SECONDS:.0f}",
        },
        "micro_batches_exact": {"value": summary["bronze_exact"], "target": "== True"},
    }
    checks = {
        "extract_over_baseline": ratio >= TARGET_RATIO,
        "extract_peak_rss_mb": peak <= TARGET_RSS_MB,
        "bronze_freshness_p95_seconds": (summary["bronze_p95"] or 0) <= TARGET_BRONZE_P95_SECONDS,
        "micro_batches_exact": summary["bronze_exact"] and summary["gold_has_new_bookings"],
    }
    mark_targets(results["targets"], checks)
    if not ticks:  # --ticks 0: nothing measured, neither met nor missed
        for key in ("bronze_freshness_p95_seconds", "micro_batches_exact"):
            results["targets"][key]["result"] = "n/a"
    return results


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


def _pool_line(name: str, pool: dict[str, Any]) -> str:
    extract, next_day = pool["extract"], pool["next-day"]
    return (
        f"with ARROW_DEFAULT_MEMORY_POOL={name}: initial load {extract['seconds']:.1f} s, peak "
        f"{extract['peak_rss_mb']:.0f} MB ({extract['vmhwm_before_commit_mb']:.0f} MB before the commit); "
        f"next day {next_day['seconds']:.1f} s, peak {next_day['peak_rss_mb']:.0f} MB"
    )


def render(results: dict[str, Any]) -> str:
    """The human-readable report."""
    config, sandbox, extract, baseline = (results[k] for k in ("config", "sandbox", "extract", "baseline"))
    next_day = results["next_day"]
    gate, fresh = results["gate"], results["freshness"]
    summary = fresh["summary"]
    busy = config["load_average_at_start"][0] > BUSY_LOAD_AVERAGE
    counts = sandbox["counts"]
    lines = [
        f"iDent load benchmark: {counts['Receptions']:,} receptions in 4 databases (5 branches), "
        f"{sum(counts.values()):,} rows in {len(counts)} tables (scale {sandbox['scale']:.1f}, seed "
        f"{config['seed']}); {config['cpus']} CPUs",
        f"load average (1 min) before the run: {config['load_average_at_start'][0]:.2f}"
        + (" -- other processes were busy, the figures are noisy" if busy else ""),
        f"sandbox generated and bulk-copied in {sandbox['seconds']:.1f} s",
        "",
        f"{'initial load [D-1, D), all tables':44}{'rows':>12}{'seconds':>10}{'rows/s':>10}{'peak RSS':>10}",
    ]
    for label, phase in (("extract (real: stage, reconcile, commit)", extract), ("(a) baseline", baseline)):
        lines.append(
            f"{label:44}{phase['rows']:>12,}{phase['seconds']:>10.1f}{phase['rows_per_second']:>10,.0f}"
            f"{phase['peak_rss_mb']:>7.0f} MB"
        )
    lines += [
        f"baseline = fetchmany + Arrow {baseline['fetch_seconds']:.1f} s, one append per table "
        f"{baseline['append_seconds']:.1f} s",
        f"extract RSS: {extract['rss_after_imports_mb']:.0f} MB after imports, peak "
        f"{extract['vmhwm_before_commit_mb']:.0f} MB reading and reconciling (before the commit), "
        f"{extract['vmhwm_mb']:.0f} MB overall (VmHWM); commit pieces of "
        f"{config['commit_bytes'] / 2**20:g} MB of Arrow; psqlODBC "
        + ("server cursor (UseDeclareFetch)" if config["declare_fetch"] else "whole result sets in memory"),
        f"next day's daily run [D, D+1): {next_day['rows']:,} changed rows, {next_day['deleted']:,} deletes "
        f"found, {next_day['seconds']:.1f} s; RSS {next_day['rss_after_imports_mb']:.0f} MB after imports, "
        f"{next_day['vmhwm_before_commit_mb']:.0f} MB before the commit (reconciliation included), peak "
        f"{next_day['peak_rss_mb']:.0f} MB",
        *([_pool_line(config["also_pool"], results["pool"])] if "pool" in results else []),
        f"bronze gate: {gate['suites']} suites over the initial load in {gate['seconds']:.1f} s, peak RSS "
        f"{gate['peak_rss_mb']:.0f} MB; slowest: "
        + ", ".join(
            f"{suite} {seconds:.1f} s"
            for suite, seconds in sorted(gate["seconds_by_suite"].items(), key=lambda item: -item[1])[:3]
        ),
        f"gate warnings (counted, not blocking): {gate['warnings'] or 'none'}",
        "",
        f"freshness over {summary['ticks']} ticks (one database each, micro-batch right after the commit); "
        f"dbt silver + gold after the first {summary['gold_ticks']}:",
        "  initial transform (Spark start, dbt parse, full build): "
        + _seconds(fresh["initial_transform_seconds"]),
        f"  tick commit -> bronze: p50 {_seconds(summary['bronze_p50'])}, "
        f"p95 {_seconds(summary['bronze_p95'])}; every micro-batch read exactly the tick's receptions: "
        f"{summary['bronze_exact']}",
        f"  tick commit -> gold.ident_receptions and outbound: p50 {_seconds(summary['gold_p50'])}, "
        f"p95 {_seconds(summary['gold_p95'])}; new bookings in gold: {summary['gold_has_new_bookings']}",
        f"  transforms on the incremental fast path: {summary['incremental_ticks']} of "
        f"{summary['gold_ticks']}; p50 check {_seconds(summary['check_step_p50'])}, "
        f"silver {_seconds(summary['silver_step_p50'])}, "
        f"gold + outbound {_seconds(summary['gold_step_p50'])}",
        "",
        f"{'target':32}{'value':>10}  {'goal':10}result",
    ]
    for label, key, fmt in (
        ("extract rows/s / baseline", "extract_over_baseline", "{:.2f}"),
        ("extract peak RSS, both days (MB)", "extract_peak_rss_mb", "{:.0f}"),
        ("tick -> bronze p95 (s)", "bronze_freshness_p95_seconds", "{:.1f}"),
        ("micro-batches exact", "micro_batches_exact", "{}"),
    ):
        target = results["targets"][key]
        value = "n/a" if target["value"] is None else fmt.format(target["value"])
        lines.append(f"{label:32}{value:>10}  {target['target']:10}{target['result']}")
    return "\n".join(lines)


def run(opts: argparse.Namespace) -> dict[str, Any]:
    """Every phase in a fresh ELT_HOME around one sandbox cluster; the evaluated results."""
    from elt_platform.sandbox.ident import catalog
    from elt_platform.sandbox.ident.cluster import PostgresCluster
    from elt_platform.sources.ident.manifest import load_manifest

    if opts.commit_bytes is None:
        from elt_platform.sources.ident.staging import COMMIT_BYTES

        opts.commit_bytes = COMMIT_BYTES
    with temporary_home("ident_bench_", keep=opts.keep) as home:
        results: dict[str, Any] = {
            "config": {
                "receptions": opts.receptions,
                "ticks": opts.ticks,
                "gold_ticks": opts.gold_ticks,
                "full_rebuilds": opts.full_rebuilds,
                "seed": opts.seed,
                "declare_fetch": not opts.no_declare_fetch,
                "commit_bytes": opts.commit_bytes,
                "also_pool": opts.also_pool,
                "sandbox_now": NOW.isoformat(),
                "cpus": os.cpu_count(),
                "load_average_at_start": list(os.getloadavg()),
                "elt_home": str(home),
                "versions": versions(("pyiceberg", "pyarrow", "pyodbc", "great_expectations", "dbt-spark")),
            }
        }
        # Its own temporary directory: as root the cluster runs as postgres, which cannot enter ELT_HOME.
        with PostgresCluster(None, catalog.DATABASES) as cluster:
            manifest = load_manifest()
            attributes = _driver_attributes(not opts.no_declare_fetch, manifest.chunk_rows)
            os.environ[COMMIT_BYTES_ENV] = str(opts.commit_bytes)
            os.environ[DATABASES_ENV] = json.dumps(
                {
                    key: {
                        "host": db.host,
                        "port": db.port,
                        "name": db.name,
                        "user": db.user,
                        "password": db.password,
                        "attributes": attributes,
                    }
                    for key, db in zip(manifest.databases, cluster.databases, strict=True)
                }
            )
            print(f"ELT_HOME={home}; sandbox of ~{opts.receptions:,} receptions ...", flush=True)
            logs = home / "logs"
            results["sandbox"] = _child(
                "generate",
                ["--receptions", str(opts.receptions), "--seed", str(opts.seed)],
                probe=False,
                logs=logs,
            )
            print("initial load with the real extract ...", flush=True)
            results["extract"] = _child("extract", [], probe=True, logs=logs)
            print(
                "next day's daily run: changes and reconciliation against the loaded bronze ...", flush=True
            )
            results["next_day"] = _child("next-day", [], probe=True, logs=logs)
            if opts.also_pool:
                print(f"both again with Arrow's {opts.also_pool} memory pool ...", flush=True)
                other = home / f"pool-{opts.also_pool}"
                other.mkdir()
                # Read by Arrow when a process starts: it must be in the child's environment.
                env = {**os.environ, "ELT_HOME": str(other), "ARROW_DEFAULT_MEMORY_POOL": opts.also_pool}
                results["pool"] = {
                    role: _child(role, [], probe=True, logs=logs, env=env, tag=f"-{opts.also_pool}")
                    for role in ("extract", "next-day")
                }
            print("baseline: fetchmany + one append per table ...", flush=True)
            results["baseline"] = _child("baseline", [], probe=True, logs=logs)
            print("bronze gate over the initial load ...", flush=True)
            results["gate"] = _child("gate", [], probe=True, logs=logs)
            print(f"freshness: {opts.ticks} ticks, dbt after {opts.gold_ticks} ...", flush=True)
            tick_args = [
                "--ticks",
                str(opts.ticks),
                "--gold-ticks",
                str(opts.gold_ticks),
                "--seed",
                str(opts.seed),
                *(["--full-rebuilds"] if opts.full_rebuilds else []),
            ]
            results["freshness"] = _child("freshness", tick_args, probe=False, logs=logs)
        results["config"]["load_average_at_end"] = list(os.getloadavg())
    return evaluate(results)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--receptions",
        type=int,
        default=None,
        help=f"receptions in the sandbox (default {RECEPTIONS:,}; --quick {QUICK_RECEPTIONS:,})",
    )
    parser.add_argument(
        "--ticks", type=int, default=None, help=f"ticks (default {TICKS}; --quick {QUICK_TICKS})"
    )
    parser.add_argument(
        "--gold-ticks",
        type=int,
        default=None,
        help="of those, how many also build silver and gold (default: all)",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_RECEPTIONS:,} receptions, {QUICK_TICKS} ticks"
    )
    parser.add_argument("--seed", type=int, default=SEED, help="sandbox seed (data and ticks)")
    parser.add_argument(
        "--no-declare-fetch",
        action="store_true",
        help="let psqlODBC read whole result sets into memory (its default) instead of a server cursor",
    )
    parser.add_argument(
        "--commit-mb",
        type=float,
        default=None,
        help="Arrow MB per committed piece of a table (default: the extract's COMMIT_BYTES, 2)",
    )
    parser.add_argument(
        "--also-pool",
        choices=("system", "jemalloc"),
        help="run the extract and the next day's run again with this ARROW_DEFAULT_MEMORY_POOL "
        "(Arrow's default is mimalloc)",
    )
    parser.add_argument(
        "--full-rebuilds",
        action="store_true",
        help="rebuild the clinic domain in full after every tick (the transform before its fast path)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary ELT_HOME")
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON goes (default bench/results)"
    )
    parser.add_argument(
        "--child",
        choices=("generate", "rss-probe", "extract", "next-day", "baseline", "gate", "freshness"),
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--probe-role", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.receptions is None:
        opts.receptions = QUICK_RECEPTIONS if opts.quick else RECEPTIONS
    if opts.ticks is None:
        opts.ticks = QUICK_TICKS if opts.quick else TICKS
    if opts.gold_ticks is None:
        opts.gold_ticks = opts.ticks
    if opts.receptions < 1 or opts.ticks < 0 or not 0 <= opts.gold_ticks <= opts.ticks:
        parser.error("--receptions must be positive and 0 <= --gold-ticks <= --ticks")
    if opts.commit_mb is not None and opts.commit_mb <= 0:
        parser.error("--commit-mb must be positive")
    opts.commit_bytes = None if opts.commit_mb is None else int(opts.commit_mb * 2**20)
    return opts


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or one of its child roles); print and save the results."""
    opts = _parse_args(argv)
    # pyiceberg warns when a replaced slice was empty, which is every slice of a first load.
    warnings.filterwarnings("ignore", message="Delete operation did not match any records")
    roles = {
        "generate": lambda: _generate_child(opts.receptions, opts.seed),
        "extract": _extract_child,
        "next-day": lambda: _extract_child(day=1),
        "baseline": _baseline_child,
        "gate": _gate_child,
        "freshness": lambda: _freshness_child(opts.ticks, opts.gold_ticks, opts.seed, opts.full_rebuilds),
        "rss-probe": lambda: rss_probe(__file__, opts.probe_role, [], timeout=CHILD_TIMEOUT_SECONDS),
    }
    if opts.child:
        roles[opts.child]()
        return 0
    results = run(opts)
    print()
    print(render(results))
    return save_results(results, opts.results_dir, "ident_load", strict=opts.strict)


if __name__ == "__main__":
    raise SystemExit(main())

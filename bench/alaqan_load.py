"""Benchmark the Alaqan bronze load against a raw pyiceberg append and a dlt pipeline, in one run.

Usage::

    python bench/alaqan_load.py [--days 365] [--employees 5000] [--quick] [--strict] [--keep]

Everything happens in a fresh temporary ``ELT_HOME`` (embedded SQLite catalog, local warehouse and
landing; any location variable in the environment, ``harness.LOCATION_VARIABLES``, is ignored)
against one sandbox of N employees served on 127.0.0.1 from a child process, so that its data
generation competes with the loaders for CPU cores but not for this process's GIL. Phases:

1. bronze: ``load_days`` with the real ``AlaqanClient`` (rate limit off) over D days — fetch, land,
   parse, quarantine, replace the day slices in ``bronze.alaqan_visits``; events/s and wall time;
2. (a) raw ceiling: the rows of 1. read back from ``bronze.alaqan_visits`` and appended to a fresh
   table of the same schema, partitioning and properties by plain pyiceberg, in one commit;
3. one-day peak RSS: ``load_days`` for the busiest day of the range (a rerun, replacing its slice in
   the table the year was loaded into) in a child process, read with ``getrusage(RUSAGE_CHILDREN)``;
4. (b) peer: dlt, the same days from the same sandbox (same number of concurrent requests) as flat
   events (iin, event, time, visit_date) to its ``filesystem`` destination as parquet.

It also measures what the sandbox costs: the server process's CPU seconds during 1. and 4., and
the CPU seconds of ``AlaqanDataset.day()`` plus JSON encoding for the same days on their own; and
the loading process's CPU seconds per phase, which give the same ratios less disturbed by other load.

Prints the figures, the ratios bronze/raw (target >= 0.5) and bronze/dlt (target >= 2.0), the
one-year full load time (target <= 10 min; scaled linearly when --days is not 365, and flagged so)
and the one-day peak RSS (target <= 500 MB), each marked PASS/MISS, and writes them as JSON to
``bench/results/alaqan_load-<UTC timestamp>.json``. Exits 0 even on a MISS unless ``--strict``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import resource
import secrets
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from harness import (  # the sibling script: puts the repository on sys.path
    RESULTS_DIR,
    last_json_line,
    mark_targets,
    rss_probe,
    save_results,
    serve_from_child,
    serve_until_parent_closes,
    temporary_home,
    versions,
    vm_mb,
)

START = date(2024, 1, 1)
SEED = 42
QUICK_DAYS, QUICK_EMPLOYEES = 30, 1000
TARGET_RAW_RATIO = 0.5
TARGET_DLT_RATIO = 2.0
TARGET_YEAR_SECONDS = 600.0
TARGET_RSS_MB = 500.0
BUSY_LOAD_AVERAGE = 0.5
SANDBOX_KEY_ENV = "ALAQAN_SANDBOX_API_KEY"
CHILD_TIMEOUT_SECONDS = 600.0
SANDBOX_START_TIMEOUT_SECONDS = 60.0


def _process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process (Linux ``/proc/<pid>/stat``), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Sandbox:
    """A running sandbox child process."""

    base_url: str
    api_key: str
    pid: int

    def cpu_seconds(self) -> float | None:
        """CPU seconds the sandbox process has used so far (None off Linux)."""
        return _process_cpu_seconds(self.pid)


@contextlib.contextmanager
def sandbox_process(employees: int, seed: int) -> Iterator[Sandbox]:
    """Serve ``AlaqanDataset(seed, employees)`` from a child process; stop it on exit.

    The child holds the server until its stdin reaches EOF, so it also ends if this process dies.
    """
    api_key = secrets.token_urlsafe(24)
    with serve_from_child(
        __file__,
        ["--employees", str(employees), "--seed", str(seed)],
        {**os.environ, SANDBOX_KEY_ENV: api_key},
        start_timeout=SANDBOX_START_TIMEOUT_SECONDS,
    ) as (pid, announced):
        yield Sandbox(base_url=announced["base_url"], api_key=api_key, pid=pid)


def _serve_child(employees: int, seed: int) -> None:
    from elt_platform.sandbox.alaqan.generator import AlaqanDataset
    from elt_platform.sandbox.alaqan.server import SandboxServer

    dataset = AlaqanDataset(seed=seed, employees=employees)
    with SandboxServer(dataset, api_key=os.environ[SANDBOX_KEY_ENV]) as server:
        serve_until_parent_closes({"base_url": server.base_url})


def measure_server_cost(employees: int, seed: int, days: list[date]) -> dict[str, Any]:
    """Time what the sandbox does per byDate request besides HTTP: generate the day, encode it.

    CPU time of this (single-threaded) loop, not wall time, so that other processes on the machine
    do not inflate it.

    Returns:
        ``cpu_seconds`` for all ``days``, ``events`` and ``bytes`` served, and events per day.
    """
    from elt_platform.sandbox.alaqan.generator import AlaqanDataset

    dataset = AlaqanDataset(seed=seed, employees=employees)
    per_day: dict[str, int] = {}
    size = 0
    cpu_seconds = 0.0
    for day in days:
        started = time.process_time()
        data = dataset.day(day)
        # The sandbox app's own encoding (PHP-style [] for an empty map).
        size += len(json.dumps({"data": data or []}, separators=(",", ":"), ensure_ascii=False).encode())
        cpu_seconds += time.process_time() - started
        per_day[day.isoformat()] = sum(len(records) for records in data.values())
    return {"cpu_seconds": cpu_seconds, "events": sum(per_day.values()), "bytes": size, "per_day": per_day}


def run_bronze(
    sandbox: Sandbox, days: list[date], *, workers: int, days_per_commit: int, profile: Path | None = None
) -> dict[str, Any]:
    """Load ``days`` into bronze with the real client and loader; time it.

    Args:
        sandbox: The running sandbox.
        days: Consecutive days to load.
        workers: Concurrent requests.
        days_per_commit: Days per Iceberg commit.
        profile: Write a cProfile of the load there (slows it down; the figures are then not comparable).

    Returns:
        The load summary with ``seconds``, this process's CPU seconds and the server's.
    """
    import pyiceberg.io.pyarrow  # noqa: F401  (a one-off ~1.5 s import the timing should not include)

    from elt_platform.iceberg.catalog import load_catalog
    from elt_platform.sources.alaqan.client import AlaqanClient
    from elt_platform.sources.alaqan.extract import load_days

    catalog = load_catalog()
    with AlaqanClient(sandbox.base_url, sandbox.api_key, requests_per_second=None) as client:
        server_cpu, own_cpu = sandbox.cpu_seconds(), _own_cpu_seconds()
        profiler = cProfile.Profile() if profile else None
        started = time.perf_counter()
        with profiler or contextlib.nullcontext():
            summary = load_days(
                client.by_date,
                days[0],
                days[-1] + timedelta(days=1),
                run_id="bench-alaqan-load",
                catalog=catalog,
                days_per_commit=days_per_commit,
                workers=workers,
            )
        seconds = time.perf_counter() - started
        if profiler is not None:
            profiler.dump_stats(profile)
        own_cpu = _own_cpu_seconds() - own_cpu
        server_end = sandbox.cpu_seconds()
    return {
        **summary.as_dict(),
        "seconds": seconds,
        "client_cpu_seconds": own_cpu,
        "server_cpu_seconds": None if server_cpu is None or server_end is None else server_end - server_cpu,
    }


def run_raw_ceiling() -> dict[str, Any]:
    """Append the bronze rows to a fresh table of the same declaration in one plain pyiceberg commit."""
    from elt_platform.iceberg.catalog import load_catalog
    from elt_platform.iceberg.tables import load_spec
    from elt_platform.iceberg.writer import ensure_table
    from elt_platform.sources.alaqan.extract import VISITS_SPEC

    catalog = load_catalog()
    spec = load_spec(VISITS_SPEC)
    started = time.perf_counter()
    rows = catalog.load_table(spec.identifier).scan().to_arrow().cast(spec.arrow_schema())
    read_seconds = time.perf_counter() - started
    raw_spec = replace(spec, identifier="bench.alaqan_visits_raw")
    own_cpu = _own_cpu_seconds()
    started = time.perf_counter()
    table = ensure_table(catalog, raw_spec)
    table.append(rows)
    seconds = time.perf_counter() - started
    own_cpu = _own_cpu_seconds() - own_cpu
    events = len(rows)
    del rows
    return {
        "events": events,
        "seconds": seconds,
        "client_cpu_seconds": own_cpu,
        "read_back_seconds": read_seconds,
    }


def _one_day_child(base_url: str, day: date, workers: int) -> None:
    import pyiceberg.io.pyarrow  # noqa: F401  (the write imports it anyway; counted before the load)

    from elt_platform.sources.alaqan.client import AlaqanClient
    from elt_platform.sources.alaqan.extract import load_days

    imported_at_mb = vm_mb("VmRSS")
    with AlaqanClient(base_url, os.environ[SANDBOX_KEY_ENV], requests_per_second=None) as client:
        started = time.perf_counter()
        summary = load_days(
            client.by_date, day, day + timedelta(days=1), run_id="bench-one-day", workers=workers
        )
        seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "events": summary.events,
                "seconds": seconds,
                "rss_after_imports_mb": imported_at_mb or 0,
                "vmhwm_mb": vm_mb("VmHWM") or 0,
            }
        )
    )


def run_one_day_rss(sandbox: Sandbox, day: date, *, workers: int) -> dict[str, Any]:
    """Load one day in a child process and return its peak RSS as the kernel accounts it.

    The loader is started by a small probe process that reads ``getrusage(RUSAGE_CHILDREN).ru_maxrss``
    once it has exited: a child forked straight from this (by now large) process would report this
    process's peak instead, because the kernel carries the pre-``exec`` high-water mark into the
    child's ``ru_maxrss``. The child's own ``VmHWM`` is reported beside it as a cross-check.
    """
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", "rss-probe"]
        + ["--base-url", sandbox.base_url, "--day", day.isoformat(), "--workers", str(workers)],
        env={**os.environ, SANDBOX_KEY_ENV: sandbox.api_key},
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_SECONDS + 30,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"one-day load child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return {"day": day.isoformat(), **last_json_line(done.stdout)}


def run_dlt(sandbox: Sandbox, days: list[date], *, workers: int, root: Path) -> dict[str, Any]:
    """Load the same days with dlt: a day resource feeding a parallel transformer, to local parquet.

    The transformer returns (not yields) a day's flattened events, which dlt runs in its extract
    thread pool, sized like the bronze loader's (``EXTRACT__WORKERS``). A one-day run into another
    pipeline goes first, untimed, so that dlt's lazy imports are not counted (the bronze side's
    imports are done before its timing too).
    """
    os.environ["EXTRACT__WORKERS"] = str(workers)
    import dlt
    import requests

    url = sandbox.base_url + "employees/byDate"
    session = requests.Session()
    session.headers.update({"X-Api-Key": sandbox.api_key, "Accept": "application/json"})

    def events_of(day: date) -> list[dict[str, Any]]:
        response = session.get(url, params={"date": day.isoformat()}, timeout=60)
        response.raise_for_status()
        data = response.json()["data"] or {}
        return [
            {"iin": iin, "event": record.get("event"), "time": record.get("time"), "visit_date": day}
            for iin, records in data.items()
            if isinstance(records, list)
            for record in records
            if isinstance(record, dict)
        ]

    def load(name: str, load_days: list[date]) -> tuple[float, int]:
        visit_days = dlt.resource(load_days, name="visit_days", selected=False)
        events = dlt.transformer(
            events_of, data_from=visit_days, name="events", parallelized=True, write_disposition="append"
        )
        pipeline = dlt.pipeline(
            pipeline_name=name,
            pipelines_dir=str(root / "pipelines"),
            destination=dlt.destinations.filesystem(bucket_url=(root / name).as_uri()),
            dataset_name="alaqan",
        )
        started = time.perf_counter()
        pipeline.run(events, loader_file_format="parquet")
        seconds = time.perf_counter() - started
        return seconds, int(pipeline.last_trace.last_normalize_info.row_counts.get("events", 0))

    with contextlib.closing(session):
        warmup_seconds, _ = load("alaqan_bench_warmup", days[:1])
        server_cpu, own_cpu = sandbox.cpu_seconds(), _own_cpu_seconds()
        seconds, records = load("alaqan_bench", days)
        own_cpu = _own_cpu_seconds() - own_cpu
        server_end = sandbox.cpu_seconds()
    return {
        "events": records,
        "seconds": seconds,
        "warmup_seconds": warmup_seconds,
        "client_cpu_seconds": own_cpu,
        "server_cpu_seconds": None if server_cpu is None or server_end is None else server_end - server_cpu,
    }


def evaluate(results: dict[str, Any]) -> dict[str, Any]:
    """Derive rates, ratios and target verdicts from the phase results (in place, and returned)."""
    for name in ("bronze", "raw_ceiling", "dlt"):
        phase = results[name]
        phase["events_per_second"] = phase["events"] / phase["seconds"] if phase["seconds"] else 0.0
        cpu = phase["client_cpu_seconds"]
        phase["events_per_cpu_second"] = phase["events"] / cpu if cpu else 0.0
    bronze = results["bronze"]
    days = results["config"]["days"]
    year_seconds = bronze["seconds"] * 365 / days
    raw_ratio = bronze["events_per_second"] / results["raw_ceiling"]["events_per_second"]
    dlt_ratio = bronze["events_per_second"] / results["dlt"]["events_per_second"]
    rss = results["one_day"]["peak_rss_mb"]
    # Not targets: the same ratios on the loader process's CPU time, which other load disturbs less.
    results["cpu_ratios"] = {
        "bronze_over_raw": bronze["events_per_cpu_second"] / results["raw_ceiling"]["events_per_cpu_second"],
        "bronze_over_dlt": bronze["events_per_cpu_second"] / results["dlt"]["events_per_cpu_second"],
    }
    results["targets"] = {
        "bronze_over_raw": {"value": raw_ratio, "target": f">= {TARGET_RAW_RATIO}"},
        "bronze_over_dlt": {"value": dlt_ratio, "target": f">= {TARGET_DLT_RATIO}"},
        "full_year_seconds": {
            "value": year_seconds,
            "target": f"<= {TARGET_YEAR_SECONDS:.0f}",
            "measured": days == 365,
        },
        "one_day_peak_rss_mb": {"value": rss, "target": f"<= {TARGET_RSS_MB:.0f}"},
    }
    checks = {
        "bronze_over_raw": raw_ratio >= TARGET_RAW_RATIO,
        "bronze_over_dlt": dlt_ratio >= TARGET_DLT_RATIO,
        "full_year_seconds": year_seconds <= TARGET_YEAR_SECONDS,
        "one_day_peak_rss_mb": rss <= TARGET_RSS_MB,
    }
    mark_targets(results["targets"], checks)
    return results


def _share(part: float | None, whole: float) -> str:
    return "n/a" if part is None else f"{part:.1f} s ({part / whole:.0%} of wall)"


def render(results: dict[str, Any]) -> str:
    """The human-readable report."""
    config, bronze, raw, peer = (results[k] for k in ("config", "bronze", "raw_ceiling", "dlt"))
    server, one_day, targets = results["server_cost"], results["one_day"], results["targets"]
    busy = config["load_average_at_start"][0] > BUSY_LOAD_AVERAGE
    lines = [
        f"Alaqan load benchmark: {config['days']} days from {config['start']} x {config['employees']} "
        f"employees (seed {config['seed']}); {config['cpus']} CPUs; {config['workers']} concurrent requests; "
        f"{config['days_per_commit']} days per bronze commit",
        f"load average (1 min) before the run: {config['load_average_at_start'][0]:.2f}"
        + (" -- other processes were busy, the figures are noisy" if busy else ""),
        "",
        f"{'path':38}{'events':>12}{'seconds':>10}{'events/s':>12}{'CPU-s':>9}{'events/CPU-s':>14}",
    ]
    for label, phase in (
        ("bronze (load_days, real client)", bronze),
        ("(a) raw ceiling (1 pyiceberg append)", raw),
        ("(b) dlt -> filesystem parquet", peer),
    ):
        lines.append(
            f"{label:38}{phase['events']:>12,}{phase['seconds']:>10.2f}{phase['events_per_second']:>12,.0f}"
            f"{phase['client_cpu_seconds']:>9.1f}{phase['events_per_cpu_second']:>14,.0f}"
        )
    lines += [
        "",
        f"bronze also quarantined {bronze['quarantined']:,} records in {bronze['commits']} commits; "
        f"raw ceiling read-back took {raw['read_back_seconds']:.2f} s (not counted)",
        f"sandbox server CPU during bronze: {_share(bronze['server_cpu_seconds'], bronze['seconds'])}; "
        f"during dlt: {_share(peer['server_cpu_seconds'], peer['seconds'])}",
        f"sandbox day() + JSON encoding of the same days, measured alone: {server['cpu_seconds']:.1f} CPU-s "
        f"({server['events']:,} events, {server['bytes'] / 1e6:.0f} MB of JSON)",
        "CPU-s: CPU seconds of the loading process, all threads, sandbox excluded",
        "ratios on events/CPU-s (not targets; other load disturbs them less): "
        "bronze/raw {bronze_over_raw:.2f}, bronze/dlt {bronze_over_dlt:.2f}".format(**results["cpu_ratios"]),
        f"one-day load ({one_day['day']}, {one_day['events']:,} events, a rerun of the busiest day): "
        f"{one_day['seconds']:.2f} s, RSS {one_day['rss_after_imports_mb']:.0f} MB after imports",
        "",
        f"{'target':28}{'value':>14}  {'goal':12}result",
    ]
    year = targets["full_year_seconds"]
    year_note = "measured" if year["measured"] else f"scaled linearly from {config['days']} days"
    rows = (
        ("bronze / raw ceiling", f"{targets['bronze_over_raw']['value']:.2f}", "bronze_over_raw", ""),
        ("bronze / dlt", f"{targets['bronze_over_dlt']['value']:.2f}", "bronze_over_dlt", ""),
        ("one-year full load", f"{year['value']:.0f} s", "full_year_seconds", f" ({year_note})"),
        ("one-day peak RSS", f"{targets['one_day_peak_rss_mb']['value']:.0f} MB", "one_day_peak_rss_mb", ""),
    )
    for label, value, key, note in rows:
        goal = targets[key]["target"] + (" s" if key == "full_year_seconds" else "")
        goal += " MB" if key == "one_day_peak_rss_mb" else ""
        lines.append(f"{label:28}{value:>14}  {goal:12}{targets[key]['result']}{note}")
    return "\n".join(lines)


def _busiest(per_day: dict[str, int]) -> date:
    return date.fromisoformat(max(per_day, key=lambda day: (per_day[day], day)))


def run(opts: argparse.Namespace) -> dict[str, Any]:
    """Run every phase in a fresh ELT_HOME and return the evaluated results."""
    with temporary_home("alaqan_bench_", keep=opts.keep) as home:
        os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
        os.environ["DLT_DATA_DIR"] = str(home / "dlt_data")
        days = [opts.start + timedelta(days=n) for n in range(opts.days)]
        results: dict[str, Any] = {
            "config": {
                "days": opts.days,
                "start": opts.start.isoformat(),
                "employees": opts.employees,
                "seed": opts.seed,
                "workers": opts.workers,
                "days_per_commit": opts.days_per_commit,
                "cpus": os.cpu_count(),
                "profiled": opts.profile is not None,
                "load_average_at_start": list(os.getloadavg()),
                "elt_home": str(home),
                "versions": versions(("pyiceberg", "pyarrow", "dlt", "requests", "uvicorn")),
            }
        }
        # pyiceberg warns when a replaced slice was empty, which is every slice of a first load.
        warnings.filterwarnings("ignore", message="Delete operation did not match any records")
        print(f"ELT_HOME={home}; generating and timing the sandbox's days ...", flush=True)
        results["server_cost"] = measure_server_cost(opts.employees, opts.seed, days)
        with sandbox_process(opts.employees, opts.seed) as sandbox:
            print(f"sandbox at {sandbox.base_url}; bronze load ...", flush=True)
            results["bronze"] = run_bronze(
                sandbox,
                days,
                workers=opts.workers,
                days_per_commit=opts.days_per_commit,
                profile=opts.profile,
            )
            print("raw pyiceberg append ...", flush=True)
            results["raw_ceiling"] = run_raw_ceiling()
            print("one-day load in a child process ...", flush=True)
            results["one_day"] = run_one_day_rss(
                sandbox, _busiest(results["server_cost"]["per_day"]), workers=opts.workers
            )
            print("dlt ...", flush=True)
            results["dlt"] = run_dlt(sandbox, days, workers=opts.workers, root=home / "dlt")
        results["config"]["load_average_at_end"] = list(os.getloadavg())
    return evaluate(results)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=None, help="days to load (default 365; --quick 30)")
    parser.add_argument(
        "--employees", type=int, default=None, help="sandbox roster size (default 5000; --quick 1000)"
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_DAYS} days x {QUICK_EMPLOYEES} employees"
    )
    parser.add_argument("--start", type=date.fromisoformat, default=START, help="first day (YYYY-MM-DD)")
    parser.add_argument("--seed", type=int, default=SEED, help="sandbox dataset seed")
    parser.add_argument("--workers", type=int, default=4, help="concurrent requests, bronze and dlt alike")
    parser.add_argument("--days-per-commit", type=int, default=31, help="bronze days per Iceberg commit")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary ELT_HOME")
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON goes (default bench/results)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="write a cProfile of the bronze load to this file (slows it: figures not comparable)",
    )
    parser.add_argument("--child", choices=("serve", "rss-probe", "one-day"), help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--day", type=date.fromisoformat, help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.days is None:
        opts.days = QUICK_DAYS if opts.quick else 365
    if opts.employees is None:
        opts.employees = QUICK_EMPLOYEES if opts.quick else 5000
    if opts.days < 1 or opts.employees < 1 or opts.workers < 1 or opts.days_per_commit < 1:
        parser.error("--days, --employees, --workers and --days-per-commit must be positive")
    return opts


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or one of its child roles); print and save the results."""
    opts = _parse_args(argv)
    if opts.child == "serve":
        _serve_child(opts.employees, opts.seed)
        return 0
    if opts.child == "rss-probe":
        rss_probe(
            __file__,
            "one-day",
            ["--base-url", opts.base_url, "--day", opts.day.isoformat(), "--workers", str(opts.workers)],
            timeout=CHILD_TIMEOUT_SECONDS,
        )
        return 0
    if opts.child == "one-day":
        warnings.filterwarnings("ignore", message="Delete operation did not match any records")
        _one_day_child(opts.base_url, opts.day, opts.workers)
        return 0
    results = run(opts)
    print()
    print(render(results))
    results["server_cost"].pop("per_day")
    return save_results(results, opts.results_dir, "alaqan_load", strict=opts.strict)


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark the amoCRM extract against the account's request limit, alone and with a second consumer.

Usage::

    python bench/amocrm_extract.py [--leads 1000000] [--quick] [--strict] [--keep]

amoCRM allows 7 requests/s per integration and at most 250 records a page, so no client can extract
faster than 7 × 250 = 1,750 records/s (700/s for events, 100 a page): the question is how close the real
extract gets to that bound, and whether it ever oversteps it. Everything happens in a fresh temporary
``ELT_HOME``; one ``AmoCrmDataset`` of N leads (plus 0.8 N contacts, 0.3 N companies, 1.5 N tasks and
their events) is served from a child process by the sandbox, which enforces 7 requests/s with 429s as
amoCRM does. Phases:

1. one consumer: ``load_interval`` (the real client on the state store's shared budget, landing, parsing,
   spill, the bronze commit) over the whole history, in a child process: records/s of the leads walk as
   a ratio of 1,750/s (target >= 0.9), the whole extraction against the page-weighted bound, 429s
   (target 0), peak RSS (target <= 500 MB);
2. two consumers: two processes, each with its own client and lakehouse, sharing the account's budget
   in one state store, extract half of the days each, at the same time: 429s (target 0) and their
   combined request rate (target <= 7/s, one bucket of burst aside), peak RSS of each.

The history spans ``leads / --leads-per-day`` days (5,000 a day by default, so a day's leads fill whole
pages: the bound assumes full pages, and a thin day's last page is the data's cost, not the client's).
Prints the figures with PASS/MISS, writes them as JSON to ``bench/results/amocrm_extract-<UTC>.json``
and exits 0 even on a MISS unless ``--strict``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
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
LEADS = 1_000_000
QUICK_LEADS = 5_000
LEADS_PER_DAY = 5_000
RATE = 7.0
PAGE_SIZE, EVENTS_PAGE_SIZE = 250, 100  # amoCRM's caps (settings.PAGE_SIZE / EVENTS_PAGE_SIZE)
TARGET_RATIO = 0.9
TARGET_RSS_MB = 500.0
BUSY_LOAD_AVERAGE = 0.5
TOKEN_ENV = "AMOCRM_BENCH_TOKEN"
CHILD_TIMEOUT_SECONDS = 6 * 3600.0
SANDBOX_START_TIMEOUT_SECONDS = 3600.0


# -- the sandbox child ----------------------------------------------------------------------------------


@dataclass
class Sandbox:
    """A running sandbox child process."""

    base_url: str
    root_url: str
    pid: int
    build_seconds: float
    counts: dict[str, int]
    rss_mb: float

    def _admin(self, method: str, path: str) -> dict[str, Any]:
        request = urllib.request.Request(f"{self.root_url}/__sandbox/{path}", method=method)
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own 127.0.0.1 child
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        """The server's request counters (by status, route, fault)."""
        return self._admin("GET", "stats")

    def reset_stats(self) -> None:
        self._admin("DELETE", "stats")


@contextlib.contextmanager
def sandbox_process(leads: int, days: int, seed: int, token: str) -> Iterator[Sandbox]:
    """Build and serve the dataset from a child process; stop it on exit (also when this process dies)."""
    with serve_from_child(
        __file__,
        ["--leads", str(leads), "--days", str(days), "--seed", str(seed)],
        {**os.environ, TOKEN_ENV: token},
        start_timeout=SANDBOX_START_TIMEOUT_SECONDS,
    ) as (pid, announced):
        yield Sandbox(pid=pid, **announced)


def _serve_child(leads: int, days: int, seed: int) -> None:
    from elt_platform.sandbox.amocrm.generator import AmoCrmDataset
    from elt_platform.sandbox.amocrm.server import AmoCrmSandboxServer

    start = datetime.combine(START, datetime.min.time(), tzinfo=UTC)
    began = time.perf_counter()
    dataset = AmoCrmDataset(seed=seed, leads=leads, start=start, now=start + timedelta(days=days))
    build_seconds = time.perf_counter() - began
    server = AmoCrmSandboxServer(dataset, long_lived_token=os.environ[TOKEN_ENV], requests_per_second=RATE)
    with server:
        serve_until_parent_closes(
            {
                "base_url": server.base_url,
                "root_url": server.root_url,
                "build_seconds": build_seconds,
                "counts": dataset.counts(),
                "rss_mb": vm_mb("VmRSS") or 0,
            }
        )


# -- the extract child ----------------------------------------------------------------------------------


class _TimedClient:
    """The real client, timing each list's walk (fetching and the loader's work on every page)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.seconds: Counter[str] = Counter()

    def iter_pages(self, path: str, params: Any = None, *, limit: int = PAGE_SIZE) -> Iterator[Any]:
        started = time.perf_counter()
        try:
            yield from self.client.iter_pages(path, params, limit=limit)
        finally:
            self.seconds[path] += time.perf_counter() - started

    @property
    def stats(self) -> Any:
        return self.client.stats


@dataclass(frozen=True)
class _Connection:
    """What ``AmoCrmClient.from_connection`` reads of an Airflow connection."""

    host: str
    password: str
    login: str | None = None
    port: int | None = None
    schema: str | None = None

    @property
    def extra_dejson(self) -> dict[str, Any]:
        return {"requests_per_second": RATE}


def _extract_child(base_url: str, start: date, end: date) -> None:
    """``load_interval`` as ``extract_interval`` runs it (shared budget and breaker), timed."""
    import pyiceberg.io.pyarrow  # noqa: F401  (a one-off import the timing should not include)

    from elt_platform.http.accounts import shared_limits
    from elt_platform.sources.amocrm.client import AmoCrmClient
    from elt_platform.sources.amocrm.connection import ConnectionConfig
    from elt_platform.sources.amocrm.extract import load_interval
    from elt_platform.state.store import open_state_store

    imported_mb = vm_mb("VmRSS")
    connection = _Connection(host=base_url, password=os.environ[TOKEN_ENV])
    config = ConnectionConfig.from_connection(connection)
    store = open_state_store()
    budget, breaker = shared_limits(config.account, config.requests_per_second, config.burst, store=store)
    with AmoCrmClient.from_connection(connection, budget=budget, breaker=breaker, store=store) as client:
        timed = _TimedClient(client)
        began, started = time.time(), time.perf_counter()
        summary = load_interval(timed, start, end, run_id=f"bench-{start}-{end}")
        seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "start": start.isoformat(),
                "end": end.isoformat(),
                "began_at": began,
                "seconds": seconds,
                "walk_seconds": dict(timed.seconds),
                "rows": summary.rows,
                "pages": dict(summary.pages),
                "requests": summary.requests,
                "rss_after_imports_mb": imported_mb or 0,
                "vmhwm_mb": vm_mb("VmHWM") or 0,
            }
        )
    )


def start_extract(sandbox: Sandbox, start: date, end: date, home: Path, state_db: Path) -> subprocess.Popen:
    """Start one consumer: its own lakehouse under ``home``, the shared state store ``state_db``."""
    env = {
        **os.environ,
        "ELT_HOME": str(home),
        "ELT_STATE_DB_URL": f"sqlite:///{state_db}",
        TOKEN_ENV: os.environ[TOKEN_ENV],
    }
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--child", "rss-probe"]
        + ["--base-url", sandbox.base_url, "--from", start.isoformat(), "--to", end.isoformat()],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_extract(child: subprocess.Popen) -> dict[str, Any]:
    out, err = child.communicate(timeout=CHILD_TIMEOUT_SECONDS + 60)
    if child.returncode != 0:
        raise RuntimeError(f"extract child failed ({child.returncode}):\n{err[-3000:]}")
    return last_json_line(out)


def run_consumers(
    sandbox: Sandbox, intervals: list[tuple[date, date]], root: Path, state_db: Path
) -> dict[str, Any]:
    """Extract ``intervals`` at the same time, one consumer process each; the server's view of the run."""
    from elt_platform.state.store import open_state_store

    open_state_store(f"sqlite:///{state_db}")  # migrated here, not raced by the consumers
    sandbox.reset_stats()
    began = time.perf_counter()
    children = [
        start_extract(sandbox, start, end, root / f"consumer-{n}", state_db)
        for n, (start, end) in enumerate(intervals, start=1)
    ]
    reports = [finish_extract(child) for child in children]
    wall = time.perf_counter() - began
    stats = sandbox.stats()
    first = min(r["began_at"] for r in reports)
    last = max(r["began_at"] + r["seconds"] for r in reports)
    return {"consumers": reports, "wall_seconds": wall, "extract_seconds": last - first, "server": stats}


# -- figures --------------------------------------------------------------------------------------------


def _bound_seconds(report: dict[str, Any]) -> float:
    """The least time 7 requests/s allow for these rows: full pages of each list, one request per snapshot."""
    rows, pages = report["rows"], report["pages"]
    lists = ("companies", "contacts", "leads", "tasks")
    requests = sum(rows[e] / PAGE_SIZE for e in lists) + rows["events"] / EVENTS_PAGE_SIZE
    requests += sum(pages.get(e, 0) for e in ("pipelines", "users", "custom_fields"))
    return requests / RATE


def evaluate(results: dict[str, Any]) -> dict[str, Any]:
    """Rates, ratios and verdicts from the phase results (in place, and returned)."""
    one = results["single"]["consumers"][0]
    leads_seconds = one["walk_seconds"]["leads"]
    leads_rate = one["rows"]["leads"] / leads_seconds
    single_429 = results["single"]["server"]["by_status"].get("429", 0)
    single = results["single"]
    single["leads_records_per_second"] = leads_rate
    single["leads_ratio"] = leads_rate / (RATE * PAGE_SIZE)
    single["records"] = sum(v for k, v in one["rows"].items() if k != "quarantine")
    single["whole_ratio"] = _bound_seconds(one) / one["seconds"]
    single["requests_per_second"] = one["requests"] / one["seconds"]
    pair = results["pair"]
    pair_requests = pair["server"]["requests"]
    pair_429 = pair["server"]["by_status"].get("429", 0)
    pair["requests_per_second"] = pair_requests / pair["extract_seconds"]
    # One full bucket (the budget's burst) may go out at once; beyond it, 7/s.
    pair["allowed_requests"] = RATE * pair["extract_seconds"] + results["config"]["burst"]
    peak = max(c["peak_rss_mb"] for c in (*single["consumers"], *pair["consumers"]))
    results["targets"] = {
        "leads_over_limit_bound": {"value": single["leads_ratio"], "target": f">= {TARGET_RATIO}"},
        "single_429s": {"value": single_429, "target": "== 0"},
        "pair_429s": {"value": pair_429, "target": "== 0"},
        "pair_requests_per_second": {"value": pair["requests_per_second"], "target": f"<= {RATE:g}"},
        "peak_rss_mb": {"value": peak, "target": f"<= {TARGET_RSS_MB:.0f}"},
    }
    checks = {
        "leads_over_limit_bound": single["leads_ratio"] >= TARGET_RATIO,
        "single_429s": single_429 == 0,
        "pair_429s": pair_429 == 0,
        "pair_requests_per_second": pair_requests <= pair["allowed_requests"],
        "peak_rss_mb": peak <= TARGET_RSS_MB,
    }
    mark_targets(results["targets"], checks)
    return results


def render(results: dict[str, Any]) -> str:
    """The human-readable report."""
    config, sandbox, single, pair = (results[k] for k in ("config", "sandbox", "single", "pair"))
    one = single["consumers"][0]
    busy = config["load_average_at_start"][0] > BUSY_LOAD_AVERAGE
    counts = sandbox["counts"]
    lines = [
        f"amoCRM extract benchmark: {config['leads']:,} leads over {config['days']} days "
        f"from {config['start']} (seed {config['seed']}); limit {RATE:g} requests/s; {config['cpus']} CPUs",
        f"load average (1 min) before the run: {config['load_average_at_start'][0]:.2f}"
        + (" -- other processes were busy, the figures are noisy" if busy else ""),
        f"sandbox: {counts['leads']:,} leads, {counts['contacts']:,} contacts, {counts['companies']:,} "
        f"companies, {counts['tasks']:,} tasks built in {sandbox['build_seconds']:.1f} s "
        f"(server RSS {sandbox['rss_mb']:.0f} MB)",
        "",
        "one consumer (load_interval over the whole history, bronze commit included):",
        f"{'list':12}{'records':>10}{'pages':>8}{'seconds':>9}{'records/s':>11}{'bound/s':>9}{'ratio':>7}",
    ]
    for entity, page in (
        ("companies", PAGE_SIZE),
        ("contacts", PAGE_SIZE),
        ("leads", PAGE_SIZE),
        ("tasks", PAGE_SIZE),
        ("events", EVENTS_PAGE_SIZE),
    ):
        seconds = one["walk_seconds"].get(entity, 0.0)
        rate = one["rows"][entity] / seconds if seconds else 0.0
        bound = RATE * page
        lines.append(
            f"{entity:12}{one['rows'][entity]:>10,}{one['pages'].get(entity, 0):>8,}{seconds:>9.1f}"
            f"{rate:>11,.0f}{bound:>9,.0f}{rate / bound:>7.2f}"
        )
    lines += [
        f"whole extract: {single['records']:,} records, {one['requests']:,} requests "
        f"in {one['seconds']:.1f} s = {single['requests_per_second']:.2f} requests/s; "
        f"against the full-page bound {single['whole_ratio']:.2f}",
        f"server: {single['server']['by_status']}",
        f"peak RSS {one['peak_rss_mb']:.0f} MB (VmHWM {one['vmhwm_mb']:.0f} MB, "
        f"{one['rss_after_imports_mb']:.0f} MB after imports)",
        "",
        f"two consumers sharing the account's budget ({len(pair['consumers'])} processes, "
        "half the days each):",
    ]
    for n, consumer in enumerate(pair["consumers"], start=1):
        lines.append(
            f"  consumer {n}: [{consumer['start']}, {consumer['end']}) {consumer['requests']:,} requests in "
            f"{consumer['seconds']:.1f} s, peak RSS {consumer['peak_rss_mb']:.0f} MB"
        )
    lines += [
        f"  together: {pair['server']['requests']:,} requests in {pair['extract_seconds']:.1f} s = "
        f"{pair['requests_per_second']:.2f} requests/s (at most {pair['allowed_requests']:.0f} allowed); "
        f"server: {pair['server']['by_status']}",
        "",
        f"{'target':28}{'value':>10}  {'goal':10}result",
    ]
    targets = results["targets"]
    for label, key, fmt in (
        ("leads records/s / 1,750", "leads_over_limit_bound", "{:.2f}"),
        ("429s, one consumer", "single_429s", "{}"),
        ("429s, two consumers", "pair_429s", "{}"),
        ("requests/s, two consumers", "pair_requests_per_second", "{:.2f}"),
        ("peak RSS per extract (MB)", "peak_rss_mb", "{:.0f}"),
    ):
        target = targets[key]
        lines.append(f"{label:28}{fmt.format(target['value']):>10}  {target['target']:10}{target['result']}")
    return "\n".join(lines)


def run(opts: argparse.Namespace) -> dict[str, Any]:
    """Every phase in a fresh ELT_HOME; the evaluated results."""
    from elt_platform.sources.amocrm.settings import DEFAULT_BURST

    with temporary_home("amocrm_bench_", keep=opts.keep) as home:
        os.environ[TOKEN_ENV] = secrets.token_urlsafe(24)
        days = max(1, round(opts.leads / opts.leads_per_day))
        start, end = START, START + timedelta(days=days)
        results: dict[str, Any] = {
            "config": {
                "leads": opts.leads,
                "days": days,
                "start": start.isoformat(),
                "seed": opts.seed,
                "rate": RATE,
                "burst": DEFAULT_BURST,
                "cpus": os.cpu_count(),
                "load_average_at_start": list(os.getloadavg()),
                "elt_home": str(home),
                "versions": versions(("pyiceberg", "pyarrow", "requests", "uvicorn", "fastapi")),
            }
        }
        print(
            f"ELT_HOME={home}; building {opts.leads:,} leads over {days} days in the sandbox ...", flush=True
        )
        with sandbox_process(opts.leads, days, opts.seed, os.environ[TOKEN_ENV]) as sandbox:
            results["sandbox"] = {
                "build_seconds": sandbox.build_seconds,
                "counts": sandbox.counts,
                "rss_mb": sandbox.rss_mb,
            }
            print(f"sandbox at {sandbox.base_url}; one consumer ...", flush=True)
            results["single"] = run_consumers(sandbox, [(start, end)], home / "single", home / "state-1.db")
            middle = start + timedelta(days=max(1, days // 2)) if days > 1 else None
            halves = [(start, middle), (middle, end)] if middle else [(start, end), (start, end)]
            print("two consumers sharing the budget ...", flush=True)
            results["pair"] = run_consumers(sandbox, halves, home / "pair", home / "state-2.db")
        results["config"]["load_average_at_end"] = list(os.getloadavg())
    return evaluate(results)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--leads", type=int, default=None, help=f"leads (default {LEADS:,}; --quick {QUICK_LEADS:,})"
    )
    parser.add_argument(
        "--leads-per-day",
        type=int,
        default=LEADS_PER_DAY,
        help=f"history density: the history spans leads / this many days (default {LEADS_PER_DAY:,})",
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_LEADS:,} leads")
    parser.add_argument("--seed", type=int, default=SEED, help="sandbox dataset seed")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary ELT_HOME")
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON goes (default bench/results)"
    )
    parser.add_argument("--child", choices=("serve", "rss-probe", "extract"), help=argparse.SUPPRESS)
    parser.add_argument("--days", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--from", dest="since", type=date.fromisoformat, help=argparse.SUPPRESS)
    parser.add_argument("--to", dest="until", type=date.fromisoformat, help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.leads is None:
        opts.leads = QUICK_LEADS if opts.quick else LEADS
    if opts.leads < 1 or opts.leads_per_day < 1:
        parser.error("--leads and --leads-per-day must be positive")
    return opts


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or one of its child roles); print and save the results."""
    opts = _parse_args(argv)
    if opts.child == "serve":
        _serve_child(opts.leads, opts.days, opts.seed)
        return 0
    if opts.child == "rss-probe":
        rss_probe(
            __file__,
            "extract",
            ["--base-url", opts.base_url, "--from", opts.since.isoformat(), "--to", opts.until.isoformat()],
            timeout=CHILD_TIMEOUT_SECONDS,
        )
        return 0
    if opts.child == "extract":
        warnings.filterwarnings("ignore", message="Delete operation did not match any records")
        _extract_child(opts.base_url, opts.since, opts.until)
        return 0
    results = run(opts)
    print()
    print(render(results))
    return save_results(results, opts.results_dir, "amocrm_extract", strict=opts.strict)


if __name__ == "__main__":
    raise SystemExit(main())

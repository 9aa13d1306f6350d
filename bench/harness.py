"""What every benchmark here does the same way: an isolated ``ELT_HOME``, child processes, RSS, results.

Imported by the scripts (run as ``python bench/<name>.py``) as their sibling ``harness``; importing it puts
the repository root and ``plugins/`` on ``sys.path``, as the Makefile's ``PYTHONPATH`` does.
Stdlib only, because the RSS probe runs in a process that must stay small.

- :func:`temporary_home`: a fresh ``ELT_HOME`` with every :data:`LOCATION_VARIABLES` dropped, so that a
  sourced ``.env`` cannot send a benchmark to a configured catalog, bucket or state store;
- :func:`serve_from_child` / :func:`serve_until_parent_closes`: a sandbox served from a child process of
  the script, which announces itself with one JSON line and stops when the parent closes its stdin;
- :func:`rss_probe`: a role of the script run from a stdlib-only process, and its peak RSS as the kernel
  accounts it (see ``bench/README.md``, ``alaqan_load.py`` phase 4, for why not a direct child);
- :func:`vm_mb`, :func:`mark_targets`, :func:`versions`, :func:`save_results`: figures and the report.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import resource
import select
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
for _path in (REPO_ROOT / "plugins", REPO_ROOT):  # as the Makefile's PYTHONPATH, wherever a script runs from
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
RESULTS_DIR = REPO_ROOT / "bench" / "results"
#: Variables that would point the platform somewhere other than ``ELT_HOME``: the lakehouse (see
#: ``elt_platform/config.py``), the 1C exchange folder and the state store. ``tests/conftest.py`` keeps
#: the same list for the test session (tests do not import benchmarks).
LOCATION_VARIABLES = (
    "ELT_ICEBERG_CATALOG_TYPE",
    "ELT_ICEBERG_CATALOG_URI",
    "ELT_ICEBERG_WAREHOUSE",
    "ELT_LANDING_URI",
    "ELT_QUALITY_URI",
    "ELT_S3_ENDPOINT",
    "ELT_ONEC_EXCHANGE_URI",
    "ELT_STATE_DB_URL",
)


@contextlib.contextmanager
def temporary_home(prefix: str, *, keep: bool) -> Iterator[Path]:
    """A fresh ``ELT_HOME`` for this process and its children; removed on exit unless ``keep``.

    Call it before anything reads the platform's configuration.
    """
    home = Path(tempfile.mkdtemp(prefix=prefix))
    for name in LOCATION_VARIABLES:
        os.environ.pop(name, None)
    os.environ["ELT_HOME"] = str(home)
    try:
        yield home
    finally:
        if keep:
            print(f"kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


def vm_mb(field: str) -> float | None:
    """A memory field of this process's ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in MB; None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def last_json_line(stdout: str) -> dict[str, Any]:
    """The report a child printed last (anything a library printed before it is skipped)."""
    return json.loads(stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def serve_from_child(
    script: str, args: Sequence[str], env: Mapping[str, str], *, start_timeout: float
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Run ``script --child serve *args``; yield its pid and the JSON line it announces itself with.

    The child serves until its stdin reaches EOF (:func:`serve_until_parent_closes`), so it also ends if
    this process dies.

    Raises:
        RuntimeError: no announcement within ``start_timeout`` seconds.
    """
    child = subprocess.Popen(
        [sys.executable, str(Path(script).resolve()), "--child", "serve", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=dict(env),
        text=True,
    )
    try:
        ready, _, _ = select.select([child.stdout], [], [], start_timeout)
        line = child.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"the sandbox child did not start within {start_timeout:.0f}s")
        yield child.pid, json.loads(line)
    finally:
        child.stdin.close()
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=15)


def serve_until_parent_closes(announcement: Mapping[str, Any]) -> None:
    """In the serving child: announce the running server, then hold it until the parent closes stdin."""
    print(json.dumps(announcement), flush=True)
    sys.stdin.read()


def rss_probe(script: str, role: str, args: Sequence[str], *, timeout: float) -> None:
    """Run ``script --child <role> *args`` from this small process; print its report plus ``peak_rss_mb``.

    ``peak_rss_mb`` is ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` once the role has exited: a fresh,
    stdlib-only process passes its few MB on to the child, where a large benchmark process would pass
    its own high-water mark on across ``exec``.
    """
    done = subprocess.run(
        [sys.executable, str(Path(script).resolve()), "--child", role, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-3000:])
        raise SystemExit(done.returncode)
    report = last_json_line(done.stdout)
    report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps(report))


def versions(packages: Iterable[str]) -> dict[str, str]:
    """Python's version and each package's installed version (``absent`` when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "absent"
    return found


def mark_targets(targets: dict[str, dict[str, Any]], checks: Mapping[str, bool]) -> None:
    """Set each target's ``result`` to PASS or MISS from ``checks`` (same keys)."""
    for name, ok in checks.items():
        targets[name]["result"] = "PASS" if ok else "MISS"


def save_results(results: Mapping[str, Any], results_dir: Path, name: str, *, strict: bool) -> int:
    """Write ``<name>-<UTC timestamp>.json`` to ``results_dir``, print where; the exit code.

    Returns:
        1 when ``strict`` and a target was missed, else 0.
    """
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = results_dir / f"{name}-{stamp}.json"
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults: {out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out}")
    missed = [key for key, target in results["targets"].items() if target["result"] == "MISS"]
    return 1 if strict and missed else 0


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (the smallest value with at least ``share`` of the values at or below it)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]

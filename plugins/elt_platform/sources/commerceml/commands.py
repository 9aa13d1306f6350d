"""``elt load-1c PATH``: load (or replay) one 1C exchange package into ``bronze.onec_*`` (``make load-1c``).

:func:`register` adds the command to the platform CLI (``elt_platform/cli.py``). Every outcome is one
line the operator can act on: ``✔ package … loaded`` and its summary on stdout, or ``✘ PATH: reason``
on stderr with exit code 1 — a missing path, a folder without XML, a file that is not XML or not
CommerceML (an HTML error page saved as ``import.xml``), a DOCTYPE/entity declaration, malformed XML,
a package the stocks mode refuses. A package that was identified (it has XML files) is journaled
``failed`` in ``bronze.onec_packages`` by the loader; the line says so.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the loader pulls in pyiceberg: imported when the command runs, not for ``elt --help``
    from elt_platform.sources.commerceml.loader import PackageLoadError

EXIT_FAILED = 1
"""Exit code of a package that was refused or failed (argparse uses 2 for bad arguments)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``load-1c`` to a CLI.

    Args:
        subparsers: the result of ``parser.add_subparsers()``; the command sets ``func`` (taking the
            parsed namespace, returning an exit code).
    """
    load_1c = subparsers.add_parser(
        "load-1c", help="load or replay one 1C exchange package (directory or zip) into bronze.onec_*"
    )
    load_1c.add_argument("path", help="package directory, .zip or single .xml file")
    load_1c.add_argument(
        "--mode",
        choices=("auto", "catalog", "stocks"),
        default="auto",
        help="catalog: all entities; stocks: prices/stocks only; auto (default): by the package's files",
    )
    load_1c.add_argument(
        "--run-id", help="lineage id for rows and snapshots (default manual__load-1c__<time>)"
    )
    load_1c.add_argument("--json", action="store_true", help="print the load summary as JSON")
    load_1c.set_defaults(func=cmd_load_1c)


def delta_label(is_full: bool, contains_only_changes: bool | None) -> str:
    """How a package's delta flag reads in the summary (full unless a file declares ``true``)."""
    if not is_full:
        return "delta (only changes)"
    if contains_only_changes is None:
        return "full export (no СодержитТолькоИзменения: full by default)"
    return "full export"


def cmd_load_1c(args: argparse.Namespace) -> int:
    """``load-1c PATH``: load the package, print its summary; a refused or failed package is one ✘ line."""
    from elt_platform.sources.commerceml.loader import PackageLoadError, load_package

    run_id = args.run_id or f"manual__load-1c__{datetime.now(UTC):%Y%m%dT%H%M%S}"
    try:
        result = load_package(args.path, run_id=run_id, mode=args.mode)
    except PackageLoadError as exc:
        print(f"✘ {exc.source}: {_reason(exc)}{_journal_note(exc)}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False, indent=1))
        return 0
    print(f"✔ package {result.package_id} loaded in {result.seconds:.1f}s (run {run_id})")
    print(f"  source:  {result.source}")
    print(
        f"  mode:    {result.mode}, {delta_label(result.is_full, result.contains_only_changes)}, "
        f"schema {result.schema_version or 'mixed'}, attempt {result.attempts}"
    )
    print(f"\n  {'table':32} {'rows':>9} {'flagged':>8}  issues")
    for entity, count in result.counts.items():
        issues = result.issues.get(entity, {})
        flagged = ", ".join(f"{code} {n}" for code, n in sorted(issues.items()))
        print(f"  {'bronze.onec_' + entity:32} {count:>9,} {result.flagged.get(entity, 0):>8,}  {flagged}")
    if result.skipped:
        print(f"\n  not written in {result.mode} mode: {result.skipped}")
    return 0


def _reason(exc: PackageLoadError) -> str:
    # A single-file package names its file in the reason too: say it once.
    own_name = f"{Path(exc.source).name}: "
    if exc.reason.startswith(own_name) and not Path(exc.source).is_dir():
        return exc.reason.removeprefix(own_name)
    return exc.reason


def _journal_note(exc: PackageLoadError) -> str:
    if exc.package_id is None:
        return " (nothing loaded, nothing journaled)"
    where = f"package {exc.package_id[:12]}, attempt {exc.attempts}"
    if exc.journal_status == "failed":
        return f" ({where}: journaled failed, bronze unchanged)"
    if exc.journal_status == "loaded":
        return f" ({where}: replay failed, its loaded rows stay as they were)"
    return f" ({where}: bronze unchanged, the journal could not be written)"


__all__ = ["EXIT_FAILED", "cmd_load_1c", "delta_label", "register"]

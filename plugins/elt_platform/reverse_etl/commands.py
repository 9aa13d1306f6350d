"""``elt reverse-etl …``: queue sizes, re-queueing dead letters and review rows, and a run outside Airflow.

:func:`register` adds the commands to the platform CLI (``elt_platform/cli.py``). Output is one line per
row, with counts only — no personal data.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from elt_platform.registry import registry


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``reverse-etl status|requeue|run`` to a CLI."""
    names = sorted(registry().destinations)
    parser = subparsers.add_parser("reverse-etl", help="reverse-ETL queues and runs (Bitrix24, amoCRM)")
    sub = parser.add_subparsers(dest="reverse_etl_command", required=True)
    sub.add_parser("status", help="records per destination and status, last runs").set_defaults(
        func=cmd_status
    )
    requeue = sub.add_parser("requeue", help="put dead letters (and --review rows) back in the queue")
    requeue.add_argument("destination", choices=names)
    requeue.add_argument("--review", action="store_true", help="also rows waiting for review")
    requeue.set_defaults(func=cmd_requeue)
    run = sub.add_parser("run", help="plan and execute one run now, outside Airflow (no approval step)")
    run.add_argument("destination", choices=names)
    run.add_argument("--dry-run", action="store_true", help="plan only")
    run.set_defaults(func=cmd_run)


def cmd_status(_args: argparse.Namespace) -> int:
    from elt_platform.state import open_state_store, outbox

    store = open_state_store()
    sizes = outbox.queue_sizes(store)
    for name in sorted(set(registry().destinations) | set(sizes)):
        counts = sizes.get(name, {})
        line = ", ".join(f"{status} {n:,}" for status, n in sorted(counts.items())) or "nothing yet"
        print(f"{name:10} {line}")
    for run in outbox.list_runs(store)[-5:]:
        print(f"  run {run['run_id']} {run['destination']}: {run['status']} {run['summary'] or ''}")
    return 0


def cmd_requeue(args: argparse.Namespace) -> int:
    from elt_platform.state import open_state_store, outbox

    statuses = ("dead", "review") if args.review else ("dead",)
    count = outbox.requeue(open_state_store(), args.destination, statuses)
    print(
        f"{args.destination}: {count:,} record(s) re-queued ({', '.join(statuses)}); the next run plans them"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from elt_platform.reverse_etl.runs import execute_run, plan_run, report_run

    run_id = f"manual__{datetime.now(UTC):%Y-%m-%dT%H:%M:%S}"
    summary = plan_run(args.destination, run_id, dry_run=args.dry_run)
    print(summary["text"])
    counts = None if args.dry_run else execute_run(args.destination, run_id)
    report = report_run(args.destination, run_id, counts, dry_run=args.dry_run)
    print(", ".join(f"{k} {v}" for k, v in report.items() if isinstance(v, int)))
    return 0

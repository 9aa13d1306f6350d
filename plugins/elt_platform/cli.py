"""Command line of the platform: ``python -m elt_platform.cli <command>`` (wrapped by the Makefile).

Commands:
    run        the main job: Alaqan sandbox → extract_alaqan → transform_alaqan for a window (make run)
    sql        Spark SQL over the lakehouse: interactive prompt, or ``-e QUERY`` (make sql)
    counts     rows per layer and quarantine
    snapshots  a table's snapshots with the run that wrote each
    rollback   set a table back to the snapshot before a run's first commit
    load-1c    load (or replay) one 1C exchange package — a directory or a zip — into bronze.onec_*
    counts-1c  rows per 1C table
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from datetime import date, timedelta

from elt_platform.config import PlatformConfig

LAYER_TABLES = (
    "bronze.alaqan_visits",
    "bronze.alaqan_visits_quarantine",
    "silver.alaqan_visits",
    "silver.alaqan_visits_quarantine",
    "gold.alaqan_daily_attendance",
    "gold.alaqan_monthly_summary",
)


ONEC_TABLES = (
    "bronze.onec_packages",
    "bronze.onec_groups",
    "bronze.onec_products",
    "bronze.onec_offers",
    "bronze.onec_prices",
    "bronze.onec_stocks",
    "bronze.onec_contragents",
    "bronze.onec_documents",
    "silver.onec_packages",
    "silver.onec_products",
    "silver.onec_categories",
    "silver.onec_customers",
    "gold.onec_catalog",
    "gold.onec_stock_by_warehouse",
    "gold.onec_price_history",
)


def table_counts(tables=LAYER_TABLES) -> dict[str, int | None]:
    """Row counts from Iceberg metadata (snapshot summaries): no data file is read."""
    from pyiceberg.exceptions import NoSuchTableError

    from elt_platform.iceberg.catalog import load_catalog

    catalog = load_catalog()
    counts: dict[str, int | None] = {}
    for name in tables:
        try:
            snapshot = catalog.load_table(name).current_snapshot()
        except NoSuchTableError:
            counts[name] = None
            continue
        summary = snapshot.summary if snapshot else None
        counts[name] = int(summary["total-records"]) if summary and "total-records" in summary else 0
    return counts


def _alaqan_connection(server) -> str:
    return json.dumps({"conn_type": "http", "host": server.base_url, "password": server.api_key})


def cmd_run(args: argparse.Namespace) -> int:
    from elt_platform.local_run import test_dag

    end = date.fromisoformat(args.end) if args.end else date.today()
    start = date.fromisoformat(args.start) if args.start else end - timedelta(days=args.days)
    conf = {"start_date": start.isoformat(), "end_date": end.isoformat()}
    server = None
    if "AIRFLOW_CONN_ALAQAN_DEFAULT" not in os.environ:
        from elt_platform.sandbox.alaqan.generator import AlaqanDataset
        from elt_platform.sandbox.alaqan.server import SandboxServer

        server = SandboxServer(AlaqanDataset(seed=args.seed, employees=args.employees)).start()
        os.environ["AIRFLOW_CONN_ALAQAN_DEFAULT"] = _alaqan_connection(server)
        print(f"» Alaqan sandbox: {server.root_url} ({args.employees} employees, seed {args.seed})")
    began = time.monotonic()
    try:
        print(f"» extract_alaqan  [{start}, {end})")
        test_dag("extract_alaqan", conf)
        print(f"» transform_alaqan [{start}, {end})")
        test_dag("transform_alaqan", conf)
    finally:
        if server is not None:
            server.stop()
    print_summary(time.monotonic() - began)
    return 0


def print_summary(seconds: float) -> None:
    config = PlatformConfig.from_env()
    counts = table_counts()
    print(f"\n✔ Alaqan pipeline finished in {seconds:.0f}s\n")
    print(f"  {'table':40} {'rows':>10}")
    for name, count in counts.items():
        print(f"  {name:40} {'-' if count is None else f'{count:,}':>10}")
    print(f"\n  warehouse:       {config.warehouse}")
    print(f"  catalog:         {config.catalog_uri}")
    print(f"  raw responses:   {config.landing_uri}/alaqan")
    print(f"  quality results: {config.quality_uri}  (Data Docs: {config.home / 'gx'})")
    print(
        "  query gold:      make sql   (or: make sql Q='select * from gold.alaqan_monthly_summary limit 10')"
    )
    print("  Airflow UI:      make airflow  → http://localhost:8080 (DAGs extract_alaqan, transform_alaqan)")


def cmd_counts(_args: argparse.Namespace) -> int:
    for name, count in table_counts().items():
        print(f"{name:40} {'-' if count is None else count:>10}")
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    from elt_platform.iceberg.catalog import lakehouse_spark_session

    spark = lakehouse_spark_session("sql")
    if args.execute:
        spark.sql(args.execute).show(args.limit, truncate=False)
        return 0
    print("Spark SQL on the lakehouse (catalog 'lakehouse': bronze, silver, gold). End a statement with ';'.")
    print("Try: show tables in gold;  select * from gold.alaqan_monthly_summary limit 10;  quit;")
    buffer: list[str] = []
    while True:
        try:
            line = input("sql> " if not buffer else "...> ")
        except EOFError:
            return 0
        if line.strip().lower() in {"quit", "exit", "quit;", "exit;"}:
            return 0
        buffer.append(line)
        if line.rstrip().endswith(";"):
            statement = "\n".join(buffer).rstrip().rstrip(";")
            buffer.clear()
            try:
                spark.sql(statement).show(args.limit, truncate=False)
            except Exception as exc:  # noqa: BLE001 - a prompt reports and continues
                print(f"error: {exc}".splitlines()[0])


def cmd_snapshots(args: argparse.Namespace) -> int:
    from elt_platform.iceberg.maintenance import list_snapshots

    for row in list_snapshots(args.table):
        print(json.dumps(row, default=str))
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from elt_platform.iceberg.maintenance import rollback_run

    snapshot_id = rollback_run(args.table, args.run_id)
    print(f"{args.table}: current snapshot is now {snapshot_id} (state before run {args.run_id})")
    return 0


def cmd_counts_1c(_args: argparse.Namespace) -> int:
    for name, count in table_counts(ONEC_TABLES).items():
        print(f"{name:40} {'-' if count is None else count:>10}")
    return 0


def cmd_load_1c(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from elt_platform.sources.commerceml.loader import PackageLoadError, load_package, package_kind
    from elt_platform.sources.commerceml.package import build_manifest

    mode = args.mode
    if mode == "auto":
        mode = package_kind(build_manifest(args.path))
    run_id = args.run_id or f"manual__load-1c__{datetime.now(UTC):%Y%m%dT%H%M%S}"
    try:
        result = load_package(args.path, run_id=run_id, mode=mode)
    except PackageLoadError as exc:
        print(f"✘ package {exc.package_id or '?'} failed (attempt {exc.attempts}): {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False, indent=1))
        return 0
    print(f"✔ package {result.package_id} loaded in {result.seconds:.1f}s (run {run_id})")
    print(f"  source:  {result.source}")
    print(
        f"  mode:    {result.mode}, {'full export' if result.is_full else 'delta (only changes)'}, "
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m elt_platform.cli", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the Alaqan pipeline end to end against the sandbox")
    run.add_argument("--days", type=int, default=30, help="window length ending today (default 30)")
    run.add_argument("--start", help="first day (YYYY-MM-DD), overrides --days")
    run.add_argument("--end", help="day after the last one (default today)")
    run.add_argument("--employees", type=int, default=300, help="sandbox roster size")
    run.add_argument("--seed", type=int, default=42, help="sandbox data seed")
    run.set_defaults(func=cmd_run)
    sql = sub.add_parser("sql", help="Spark SQL over the lakehouse")
    sql.add_argument("-e", "--execute", help="run one statement and exit")
    sql.add_argument("--limit", type=int, default=50)
    sql.set_defaults(func=cmd_sql)
    sub.add_parser("counts", help="rows per table").set_defaults(func=cmd_counts)
    snaps = sub.add_parser("snapshots", help="list snapshots with their run ids")
    snaps.add_argument("table")
    snaps.set_defaults(func=cmd_snapshots)
    rollback = sub.add_parser("rollback", help="undo a run's commits on a table")
    rollback.add_argument("table")
    rollback.add_argument("--run-id", required=True)
    rollback.set_defaults(func=cmd_rollback)
    load_1c = sub.add_parser(
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
    sub.add_parser("counts-1c", help="rows per 1C table (bronze/silver/gold)").set_defaults(
        func=cmd_counts_1c
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=os.environ.get("ELT_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

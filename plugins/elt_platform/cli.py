"""Command line of the platform: ``elt <command>`` (console script; ``python -m elt_platform.cli`` too).

Commands:
    run        the main job: every registered source's extract DAGs, then its domains' transform DAGs,
               against each source's sandbox unless a real endpoint is configured (make run)
    sql        Spark SQL over the lakehouse: interactive prompt, or ``-e QUERY`` (make sql)
    counts     rows per registered table (``--source`` narrows)
    snapshots  a table's snapshots with the run that wrote each
    rollback   set a table back to the snapshot before a run's first commit
    load-1c    load (or replay) one 1C exchange package — a directory or a zip — into bronze.onec_*
    amocrm-auth  exchange an amoCRM authorization code for the first OAuth token pair (state store)
    counts-1c  rows per 1C table
    airflow    the embedded Airflow (api-server, scheduler, dag-processor, triggerer) with the sandboxes
    backfill   inclusive days of an interval extract through the running scheduler, waits for gold
    breaker / budget / ledger / watermark / state   the transactional state store (see state/README.md)
    ops-export the state store's rows as ops.* Iceberg tables (also done after every transform)

Every command loads ``.env`` first (variables already set win).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

from elt_platform.config import PlatformConfig, load_env_file
from elt_platform.registry import registry
from elt_platform.transform.layers import domain_settings


def table_counts(tables: list[str] | tuple[str, ...] | None = None) -> dict[str, int | None]:
    """Row counts from Iceberg metadata (snapshot summaries): no data file is read.

    Args:
        tables: identifiers; default every table the registry declares.

    Returns:
        Table → rows, None for a table that does not exist yet.
    """
    from pyiceberg.exceptions import NoSuchTableError

    from elt_platform.iceberg.catalog import load_catalog

    catalog = load_catalog()
    counts: dict[str, int | None] = {}
    for name in tables if tables is not None else registry().tables():
        try:
            snapshot = catalog.load_table(name).current_snapshot()
        except NoSuchTableError:
            counts[name] = None
            continue
        # pyiceberg's Summary answers None for a key it lacks (``in`` is always true): test the value.
        total = snapshot.summary["total-records"] if snapshot and snapshot.summary else None
        counts[name] = int(total) if total is not None else 0
    return counts


def _window(args: argparse.Namespace) -> tuple[date, date]:
    """``[start, end)`` from ``--start``/``--end`` (inclusive dates) or ``--days`` ending yesterday."""
    today = datetime.now(UTC).date()
    last = date.fromisoformat(args.end) if args.end else today - timedelta(days=1)
    first = date.fromisoformat(args.start) if args.start else last - timedelta(days=args.days - 1)
    if last < first:
        raise ValueError(f"--end {last} is before --start {first}")
    return first, last + timedelta(days=1)


def _describe(result: object) -> str:
    """A task's return value in a few words: rows loaded, or dbt nodes built."""
    if not isinstance(result, dict):
        return ""
    if "quality_results" in result:
        return f"{len(result['quality_results'])} suite(s) passed"
    if "events" in result:
        return f"{result['events']:,} rows" + (
            f", {result['quarantined']:,} quarantined" if result.get("quarantined") else ""
        )
    if "packages" in result:
        rows = sum(sum(p.get("counts", {}).values()) for p in result["packages"])
        return f"{len(result['packages'])} package(s), {rows:,} rows"
    if "intervals" in result:
        return "full rebuild" if result.get("full") else f"{len(result['intervals'])} interval(s)"
    if result and all(isinstance(v, int) for v in result.values()):
        return ", ".join(f"{n} {status}" for status, n in sorted(result.items()))
    return ""


_MARK = {"success": "✔", "skipped": "–", "failed": "✘", "upstream_failed": "✘"}


def _print_run(report, out) -> None:
    print(
        f"  {_MARK.get(report.state, '?')} {report.dag_id:28} {report.state:10} {report.seconds:6.1f}s",
        file=out,
    )
    for task in report.tasks:
        detail = _describe(task.result)
        print(f"      {task.task_id:26} {task.state:10} {task.seconds:6.1f}s  {detail}".rstrip(), file=out)


def _endpoint(source) -> str:
    """Where a source's configured endpoint points (host or URI, never a secret)."""
    value = os.environ.get(source.endpoint_variable or "", "")
    try:
        host = json.loads(value).get("host") or "?"
    except (ValueError, AttributeError):
        parts = urlsplit(value)
        host = f"{parts.scheme}://{parts.hostname}{parts.path}" if parts.hostname else value.split("?")[0]
    return f"configured {host} (from {source.endpoint_variable})"


def cmd_run(args: argparse.Namespace) -> int:
    from elt_platform.local_run import DagRunFailed, quiet_terminal, run_dag
    from elt_platform.sandbox.launch import SandboxOptions

    try:
        start, end = _window(args)
    except ValueError as exc:
        print(f"✘ {exc}", file=sys.stderr)
        return 2
    reg = registry()
    names = args.sources.split(",") if args.sources else list(reg.sources)
    unknown = sorted(set(names) - set(reg.sources))
    if unknown:
        print(f"✘ unknown source(s) {unknown}; known: {sorted(reg.sources)}", file=sys.stderr)
        return 2
    sources = [reg.sources[n] for n in names]
    domains = [d for d in reg.domains.values() if set(d.sources) & set(names)]
    config = PlatformConfig.from_env()
    log_path = config.home / "logs" / f"run-{datetime.now(UTC):%Y%m%dT%H%M%S}.log"
    conf = {"start_date": start.isoformat(), "end_date": end.isoformat()}
    options = SandboxOptions(employees=args.employees, seed=args.seed)
    days = (end - start).days
    failed: list[str] = []
    began = time.monotonic()
    with ExitStack() as stack:
        # Everything the run prints (Airflow's task logs, dbt, uvicorn, the JVM) goes to the log
        # file from here on; the terminal gets these progress lines only (all of it with -v).
        out = sys.stdout if args.verbose else stack.enter_context(quiet_terminal(log_path))
        print(
            f"» window     {start} .. {end - timedelta(days=1)} ({days} day{'s' * (days != 1)}, inclusive)",
            file=out,
        )
        for domain in domains:
            for key, value in domain_settings(domain).summary.items():
                print(f"» {key:10} {value} ({domain.name})", file=out)
        destinations = [d for d in reg.destinations.values() if d.domain in {m.name for m in domains}]
        start_sandboxes(stack, sources, destinations, options, out)
        if not args.verbose:
            print(f"» logs       {log_path}", file=out)
        runs = [(e.dag_id, conf if e.kind == "interval" else {}) for s in sources for e in s.extracts]
        runs += [(d.dag_id, {}) for d in domains]
        runs += [(d.dag_id, {}) for d in destinations]
        for dag_id, run_conf in runs:
            try:
                report = run_dag(dag_id, run_conf, check=False)
            except (DagRunFailed, KeyError) as exc:
                print(f"  ✘ {dag_id}: {exc}", file=out)
                failed.append(dag_id)
                continue
            _print_run(report, out)
            if not report.ok:
                failed.append(dag_id)
    # py4j says goodbye on its INFO logger when the interpreter exits, after the log file is closed.
    logging.getLogger("py4j").setLevel(logging.WARNING)
    print_summary(time.monotonic() - began, sources, failed, log_path)
    return 1 if failed else 0


def start_sandboxes(stack: ExitStack, sources, destinations, options, out) -> None:
    """Start the sandbox of every source and destination with no endpoint configured; print where each is.

    A sandbox exports its connection (``AIRFLOW_CONN_*``) into this process's environment for as long as
    ``stack`` is open. Reverse ETL to a sandbox needs no approval: nobody is there to give it.

    Args:
        stack: closes the sandboxes.
        sources / destinations: the registry entries of the run.
        options: the sandboxes' scale and seed.
        out: where the progress lines go.
    """
    from elt_platform.registry import call

    sandboxed: set[str | None] = set()  # connections a sandbox of this run serves
    for source in sources:
        if source.endpoint_variable and os.environ.get(source.endpoint_variable):
            endpoint = _endpoint(source)
        elif source.sandbox:
            endpoint = stack.enter_context(call(source.sandbox, options))
            sandboxed.add(source.endpoint_variable)
        else:
            endpoint = "no sandbox and no endpoint configured"
        print(f"» {source.name:10} {endpoint}", file=out)
    for destination in destinations:
        if destination.endpoint_variable in sandboxed:  # the source's sandbox is the same account
            endpoint = f"the {destination.connection} sandbox above"
            stack.enter_context(_auto_approved(destination.name))
        elif destination.endpoint_variable and os.environ.get(destination.endpoint_variable):
            endpoint = f"{destination.connection} connection (runs wait for approval when needed)"
        elif destination.sandbox:
            endpoint = stack.enter_context(call(destination.sandbox, options))
            stack.enter_context(_auto_approved(destination.name))
        else:
            endpoint = "no sandbox and no endpoint configured"
        print(f"» {destination.name:10} {endpoint}", file=out)


@contextmanager
def _auto_approved(destination: str) -> Iterator[None]:
    """While a sandbox stands in for ``destination``'s CRM, its plans need no person's approval."""
    from elt_platform.reverse_etl.runs import AUTO_APPROVE_VARIABLE

    before = os.environ.get(AUTO_APPROVE_VARIABLE)
    names = [n for n in (before or "").split(",") if n]
    os.environ[AUTO_APPROVE_VARIABLE] = ",".join([*names, destination])
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(AUTO_APPROVE_VARIABLE, None)
        else:
            os.environ[AUTO_APPROVE_VARIABLE] = before


def print_summary(
    seconds: float, sources, failed: list[str], log_path, hints: list[str] | None = None
) -> None:
    config = PlatformConfig.from_env()
    reg = registry()
    counts = table_counts([t for s in sources for t in reg.tables(s.name)])
    verdict = (
        f"✘ {len(failed)} DAG run(s) failed: {', '.join(failed)}" if failed else "✔ platform run finished"
    )
    print(f"\n{verdict} in {seconds:.0f}s\n")
    print(f"  {'source':8} {'table':44} {'rows':>10}")
    for source in sources:
        for name in reg.tables(source.name):
            count = counts.get(name)
            print(f"  {source.name:8} {name:44} {'-' if count is None else f'{count:,}':>10}")
    if reg.destinations:
        from elt_platform.state import open_state_store, outbox

        sizes = outbox.queue_sizes(open_state_store())
        print(f"\n  {'CRM':8} {'records by status (reverse ETL)':44}")
        for name in reg.destinations:
            line = ", ".join(f"{status} {n:,}" for status, n in sorted(sizes.get(name, {}).items()))
            print(f"  {name:8} {line or 'nothing sent'}")
    print(f"\n  warehouse:       {config.warehouse}")
    print(f"  catalog:         {config.display_catalog_uri}")
    print(f"  raw responses:   {config.landing_uri}")
    print(f"  quality results: {config.quality_uri}  (Data Docs: {config.home / 'gx'})")
    print(f"  full log:        {log_path}")
    for line in hints or [
        "query gold:      elt sql -e 'select * from gold.alaqan_monthly_summary limit 10'  (or make sql)",
        "Airflow UI:      make airflow  → http://127.0.0.1:8080",
    ]:
        print(f"  {line}")


def cmd_counts(args: argparse.Namespace) -> int:
    tables = registry().tables(args.source) if args.source else None
    for name, count in table_counts(tables).items():
        print(f"{name:40} {'-' if count is None else count:>10}")
    return 0


def _first_line(exc: BaseException) -> str:
    """The engine's one-line message (Spark's AnalysisException carries the SQL state first)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def cmd_sql(args: argparse.Namespace) -> int:
    from elt_platform.iceberg.catalog import lakehouse_spark_session

    spark = lakehouse_spark_session("sql")
    if args.execute:
        try:
            spark.sql(args.execute).show(args.limit, truncate=False)
        except Exception as exc:  # noqa: BLE001 - the engine's own message, not a Python traceback
            print(f"✘ {_first_line(exc)}", file=sys.stderr)
            return 1
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
                print(f"✘ {_first_line(exc)}")


def cmd_ops_export(_args: argparse.Namespace) -> int:
    from elt_platform.ops import export_state

    for table, rows in export_state().items():
        print(f"{table:32} {rows:>8,}")
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="elt", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run", help="run every source end to end (its sandbox unless a real endpoint is configured)"
    )
    run.add_argument("--days", type=int, default=30, help="window length ending yesterday (default 30)")
    run.add_argument("--start", help="first day, inclusive (YYYY-MM-DD); overrides --days")
    run.add_argument("--end", help="last day, inclusive (YYYY-MM-DD; default yesterday, UTC)")
    run.add_argument("--sources", help="comma-separated sources (default: every registered source)")
    run.add_argument("--employees", type=int, default=300, help="Alaqan sandbox roster size")
    run.add_argument("--seed", type=int, default=42, help="sandbox data seed")
    run.add_argument("-v", "--verbose", action="store_true", help="show every log line on the terminal")
    run.set_defaults(func=cmd_run)
    sql = sub.add_parser("sql", help="Spark SQL over the lakehouse")
    sql.add_argument("-e", "--execute", help="run one statement and exit")
    sql.add_argument("--limit", type=int, default=50)
    sql.set_defaults(func=cmd_sql)
    counts = sub.add_parser("counts", help="rows per table (every registered table)")
    counts.add_argument("--source", choices=sorted(registry().sources), help="only this source's tables")
    counts.set_defaults(func=cmd_counts)
    sub.add_parser(
        "ops-export", help="copy the state store's ledger, budgets, breakers and watermarks to ops.*"
    ).set_defaults(func=cmd_ops_export)
    snaps = sub.add_parser("snapshots", help="list snapshots with their run ids")
    snaps.add_argument("table")
    snaps.set_defaults(func=cmd_snapshots)
    rollback = sub.add_parser("rollback", help="undo a run's commits on a table")
    rollback.add_argument("table")
    rollback.add_argument("--run-id", required=True)
    rollback.set_defaults(func=cmd_rollback)
    from elt_platform.sources.commerceml.commands import register as register_onec

    register_onec(sub)
    from elt_platform.sources.amocrm.commands import register as register_amocrm

    register_amocrm(sub)
    sub.add_parser("counts-1c", help="rows per 1C table (= counts --source onec)").set_defaults(
        func=cmd_counts, source="onec"
    )
    from elt_platform.airflow_local import register as register_airflow
    from elt_platform.reverse_etl.commands import register as register_reverse_etl
    from elt_platform.state.commands import register as register_state

    register_state(sub)
    register_reverse_etl(sub)
    register_airflow(sub)
    from elt_platform.services.run import register as register_prod_local

    register_prod_local(sub)
    return parser


#: Commands whose library log lines are their progress; the others print their own one-line results
#: (and ``✘`` errors), so their log lines only show with ``ELT_LOG_LEVEL``.
_LOGGING_COMMANDS = ("run", "airflow", "backfill")


def main(argv: list[str] | None = None) -> int:
    load_env_file()
    args = build_parser().parse_args(argv)
    default = "INFO" if args.command in _LOGGING_COMMANDS else "CRITICAL"
    logging.basicConfig(
        level=os.environ.get("ELT_LOG_LEVEL") or default,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

"""``elt prod-local``: the whole platform on the production-shaped services, through Airflow's scheduler.

``run`` (``make run-prod-local``):

1. reads the profile's ``.env`` (``ELT_ENV_FILE``, else ``$ELT_HOME/prod.env`` — written with generated
   secrets on first use; ``ELT_HOME`` defaults to ``<repo>/.local/prod``) — its values win over the
   shell's, since ``make`` exports the embedded defaults;
2. starts the services (:class:`.stack.ServiceStack`), the sandboxes of the sources and CRMs, and Airflow's
   api-server, scheduler, dag-processor and triggerer with LocalExecutor on the Postgres metadata DB;
3. drives the DAGs as an operator would: each source's interval extract is backfilled for the window
   (:func:`elt_platform.airflow_local.backfill`, which also wakes the source's transform DAG), the 1C
   package DAGs are unpaused for one scheduled run over what the exchange area holds, then the reverse-
   ETL DAGs are unpaused for one run each (their sandboxes need no approval);
4. prints ``make run``'s summary, the services' start times and memory, and one query through the
   Thrift server with ``beeline`` (the JDBC client in the Spark distribution);
5. stops everything it started.

``up`` starts the services and Airflow (and the sandboxes) and keeps them until Ctrl-C, for a BI tool or
the Airflow UI. Nothing here is specific to a source: the registry says what to run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TextIO

from elt_platform.config import REPO_ROOT

DEFAULT_HOME = REPO_ROOT / ".local" / "prod"
#: The analyst's query the run ends with (gold of the first domain).
THRIFT_QUERY = "select * from gold.alaqan_monthly_summary order by 1 limit 5"
FINISHED = ("success", "failed", "skipped", "upstream_failed")


def load_profile_env(env_file: Path | None = None) -> Path:
    """Put the profile's variables into ``os.environ`` (they win over the shell's) and return the file.

    ``ELT_ENV_FILE`` (or ``env_file``) names the file; without one, ``$ELT_HOME/prod.env`` is used and
    written with generated secrets when missing (:func:`.settings.generate_env`).
    """
    from dotenv import dotenv_values

    from elt_platform.services.settings import generate_env

    path = env_file or (Path(os.environ["ELT_ENV_FILE"]) if os.environ.get("ELT_ENV_FILE") else None)
    if path is None:
        home = Path(os.environ.get("ELT_PROD_HOME") or DEFAULT_HOME).resolve()
        path = generate_env(home / "prod.env", home)
    values = {k: v for k, v in dotenv_values(path).items() if v is not None}
    os.environ.update(values)
    home = Path(os.environ["ELT_HOME"])
    os.environ["AIRFLOW_HOME"] = str(home / "airflow")
    return path


def _beeline(host: str, port: int, query: str, env: Mapping[str, str]) -> subprocess.CompletedProcess:
    from elt_platform.services.stack import spark_home

    home = spark_home()
    return subprocess.run(
        [str(home / "bin" / "beeline"), "-u", f"jdbc:hive2://{host}:{port}/default", "-n", "analyst"]
        + ["--silent=true", "--outputformat=table", "-e", query],
        env={**env, "SPARK_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _latest_run_id() -> int:
    """The highest ``dag_run.id`` so far: runs created later are the ones a phase waits for.

    (A scheduled run created on unpause has a ``run_after`` in the past — its interval's end — so time
    cannot tell it from an older run; the sequence can.)
    """
    from airflow.models.dagrun import DagRun
    from sqlalchemy import func, select

    from elt_platform.airflow_local import _in_session

    return _in_session(lambda session: session.scalar(select(func.max(DagRun.id))) or 0)


def _dag_states(dag_ids: Iterable[str], after_id: int) -> dict[str, list[str]]:
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    from elt_platform.airflow_local import _in_session, _state

    ids = list(dag_ids)

    def read(session) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {d: [] for d in ids}
        rows = session.scalars(
            select(DagRun).where(DagRun.dag_id.in_(ids), DagRun.id > after_id).order_by(DagRun.id)
        )
        for run in rows:
            out[run.dag_id].append(_state(run.state))
        return out

    return _in_session(read)


def _set_paused(dag_ids: Iterable[str], paused: bool) -> None:
    from elt_platform.airflow_local import _in_session
    from elt_platform.airflow_local import _set_paused as set_paused

    ids = list(dag_ids)
    _in_session(lambda session: set_paused(session, ids, paused))


def _wait_parsed(dag_ids: Iterable[str], timeout: float) -> None:
    from elt_platform.airflow_local import _in_session, _paused

    wanted = set(dag_ids)
    deadline = time.monotonic() + timeout
    while not wanted <= set(_in_session(lambda session: _paused(session, wanted))):
        if time.monotonic() > deadline:
            raise TimeoutError(f"DAGs not parsed after {timeout:.0f}s: {sorted(wanted)}")
        time.sleep(2)


def _trigger(dag_id: str) -> None:
    """``airflow dags trigger`` (a manual run; it starts once the DAG is unpaused)."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    result = subprocess.run(
        [airflow, "dags", "trigger", dag_id], capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode:
        raise RuntimeError(f"airflow dags trigger {dag_id} failed: {result.stderr.strip()[-500:]}")


def _one_run_each(
    trigger: list[str], wake: list[str], *, pending_domains: Iterable[str], timeout: float, out: TextIO
) -> list[str]:
    """Trigger ``trigger`` and unpause it with ``wake`` (asset-scheduled DAGs they feed) until every run
    created since has finished and the domains' ledgers are empty; pause them again.

    A DAG unpaused for the first time also gets its latest scheduled run: both are waited for.

    Returns:
        The DAG ids with a run that did not succeed.
    """
    from elt_platform.state import TransformLedger, open_state_store

    dag_ids = trigger + wake
    after_id = _latest_run_id()
    for dag_id in trigger:
        _trigger(dag_id)
    _set_paused(dag_ids, False)
    ledgers = [TransformLedger(open_state_store(), d) for d in pending_domains]
    seen: dict[str, list[str]] = {}
    deadline = time.monotonic() + timeout
    try:
        while True:
            states = _dag_states(dag_ids, after_id)
            for dag_id, runs in states.items():
                if seen.get(dag_id) != runs:
                    print(f"  {dag_id:28} {', '.join(runs) or 'no run yet'}", file=out, flush=True)
            seen = states
            settled = all(s in FINISHED for runs in states.values() for s in runs)
            if settled and all(states[d] for d in trigger) and not sum(len(x.pending()) for x in ledgers):
                return [d for d, runs in states.items() if any(s != "success" for s in runs)]
            if time.monotonic() > deadline:
                raise TimeoutError(f"runs not finished after {timeout:.0f}s: {states}")
            time.sleep(3)
    finally:
        _set_paused(dag_ids, True)


def _backfills(
    dag_ids: list[str], first: date, last: date, logs: Path, timeout: float, out: TextIO
) -> list[str]:
    """Backfill each interval extract for ``first..last`` at the same time (one process each); failed ids."""
    procs = {}
    for dag_id in dag_ids:
        log = open(logs / f"backfill-{dag_id}.log", "w")  # noqa: SIM115 - closed below
        command = [sys.executable, "-m", "elt_platform.airflow_local", "backfill", dag_id]
        command += [
            "--from",
            str(first),
            "--to",
            str(last),
            "--max-active-runs",
            "1",
            # A rerun of the same window runs its days again (each task is idempotent for its interval).
            "--reprocess",
            "completed",
            "--timeout",
            str(int(timeout)),
        ]
        procs[dag_id] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), log)
        print(f"  backfill {dag_id} {first} .. {last}  (log {log.name})", file=out, flush=True)
    failed = []
    for dag_id, (proc, log) in procs.items():
        code = proc.wait(timeout=timeout + 120)
        log.close()
        last_line = (Path(log.name).read_text(errors="replace").strip().splitlines() or ["?"])[-1]
        print(f"  {'✔' if code == 0 else '✘'} {dag_id:26} {last_line}", file=out, flush=True)
        if code:
            failed.append(dag_id)
    return failed


def drive(first: date, last: date, *, logs: Path, timeout: float, out: TextIO) -> list[str]:
    """Run every source for ``first..last`` and every reverse-ETL destination once, through the scheduler.

    Returns:
        The DAG ids that failed.
    """
    from elt_platform.registry import registry

    reg = registry()
    intervals = [s.extracts[0].dag_id for s in reg.sources.values() if s.extracts[0].kind == "interval"]
    packages = [e.dag_id for s in reg.sources.values() for e in s.extracts if e.kind == "package"]
    package_sources = [s.name for s in reg.sources.values() if any(e.kind == "package" for e in s.extracts)]
    package_domains = [d for name in package_sources for d in reg.domains_of(name)]
    destinations = [d.dag_id for d in reg.destinations.values()]
    every = intervals + packages + [d.dag_id for d in reg.domains.values()] + destinations
    _wait_parsed(every, timeout=300)
    print(f"» sources through the scheduler: {', '.join(intervals + packages)}", file=out, flush=True)
    failed = _backfills(intervals, first, last, logs, timeout, out)
    failed += _one_run_each(
        packages,
        [d.dag_id for d in package_domains],
        pending_domains=[d.name for d in package_domains],
        timeout=timeout,
        out=out,
    )
    print(f"» reverse ETL through the scheduler: {', '.join(destinations)}", file=out, flush=True)
    failed += _one_run_each(destinations, [], pending_domains=(), timeout=timeout, out=out)
    return failed


def prepare_airflow(settings, logs: Path):
    """Airflow's profile on the Postgres metadata DB: admin password file, ``db migrate``, pools.

    Returns:
        (the :class:`elt_platform.airflow_local.Profile`, the components' environment).
    """
    from elt_platform.airflow_local import Profile, ensure_admin_password, ensure_pools, migrate

    profile = Profile.from_env(
        os.environ,
        airflow_home=Path(os.environ["AIRFLOW_HOME"]),
        host=settings.airflow.host,
        port=settings.airflow.port,
    )
    env = profile.env()
    ensure_admin_password(profile.passwords_file)
    migrate(env, logs / "airflow-migrate.log")
    ensure_pools(env, logs / "airflow-pools.log")
    return profile, env


def run(args: argparse.Namespace) -> int:
    """``elt prod-local run``: services, sandboxes, Airflow; drive the DAGs; summary; stop everything."""
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("✘ interrupted: every service started was stopped", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    env_file = load_profile_env(args.env_file)
    from elt_platform.airflow_local import AirflowStack, _sigterm_as_interrupt, last_complete_day
    from elt_platform.cli import print_summary, start_sandboxes
    from elt_platform.registry import registry
    from elt_platform.sandbox.launch import SandboxOptions
    from elt_platform.services.settings import ProdLocalSettings, SettingsError
    from elt_platform.services.stack import ServiceError, ServiceStack

    out = sys.stdout
    try:
        settings = ProdLocalSettings.from_env()
    except SettingsError as exc:
        print(f"✘ {exc}", file=sys.stderr)
        return 2
    # By default the last day every source's daily run has covered: at 01:00 UTC yesterday's runs (02:00,
    # 02:30, 03:00 UTC) have not come yet, and Airflow would create no backfill run for it.
    complete = last_complete_day()
    try:
        last = complete if args.end is None else date.fromisoformat(args.end)
    except ValueError:
        print(f"✘ --end must be YYYY-MM-DD, got {args.end!r}", file=sys.stderr)
        return 2
    if last > complete:
        print(
            f"✘ --end {last} is not complete yet: the last day every daily run has covered is {complete}",
            file=sys.stderr,
        )
        return 2
    first = last - timedelta(days=args.days - 1)
    logs = settings.home / "logs" / f"prod-local-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    logs.mkdir(parents=True, exist_ok=True)
    print(f"» profile    production-local ({env_file}); window {first} .. {last} (inclusive)", file=out)
    began = time.monotonic()
    reg = registry()
    failed: list[str] = []
    with _sigterm_as_interrupt(), ExitStack() as stack:
        services = ServiceStack(settings, out=out)
        try:
            services.start()
        except (ServiceError, OSError, RuntimeError) as exc:
            print(f"✘ {exc}", file=sys.stderr)
            return 1
        stack.callback(services.stop)
        start_sandboxes(
            stack,
            list(reg.sources.values()),
            list(reg.destinations.values()),
            SandboxOptions(employees=args.employees),
            out,
        )
        profile, env = prepare_airflow(settings, logs)
        os.environ.update(env)  # this process reads the same metadata DB (backfills, run states)
        airflow = stack.enter_context(AirflowStack(profile, env, out=out))
        airflow.wait_ready()
        print(
            f"» Airflow    {profile.base_url} (LocalExecutor on Postgres; "
            f"user admin, password in {profile.passwords_file})",
            file=out,
            flush=True,
        )
        failed = drive(first, last, logs=logs, timeout=args.timeout, out=out)
        sources = list(reg.sources.values())
        thrift = f"jdbc:hive2://{settings.thrift.host}:{settings.thrift.port}/default"
        hints = [
            f"query gold:      beeline -u {thrift} (any JDBC/ODBC BI tool), while `make prod-local-up` runs",
            f"Airflow UI:      make prod-local-up  → {profile.base_url}",
        ]
        print_summary(time.monotonic() - began, sources, failed, logs, hints)
        print(f"\n  {'service':13} {'address':22} {'start':>7} {'memory':>9}")
        for name, address, seconds, rss in services.report():
            print(f"  {name:13} {address:22} {seconds:6.1f}s {rss:7.0f} MB")
        print(
            f"\n» analyst query over JDBC (beeline → Thrift {settings.thrift.host}:{settings.thrift.port}):"
            f"\n  {THRIFT_QUERY}"
        )
        result = _beeline(settings.thrift.host, settings.thrift.port, THRIFT_QUERY, os.environ)
        print(result.stdout.rstrip() or result.stderr[-2000:])
        if result.returncode:
            failed.append("thrift query")
    print(f"» stopped every service ({time.monotonic() - began:.0f}s in all)")
    return 1 if failed else 0


def up(args: argparse.Namespace) -> int:
    """``elt prod-local up``: services + sandboxes + Airflow until Ctrl-C."""
    load_profile_env(args.env_file)
    from elt_platform.airflow_local import _sigterm_as_interrupt, serve
    from elt_platform.services.settings import ProdLocalSettings, SettingsError
    from elt_platform.services.stack import ServiceStack

    try:
        settings = ProdLocalSettings.from_env()
    except SettingsError as exc:
        print(f"✘ {exc}", file=sys.stderr)
        return 2
    with _sigterm_as_interrupt(), ServiceStack(settings):
        print(
            f"» Thrift JDBC: jdbc:hive2://{settings.thrift.host}:{settings.thrift.port}/default", flush=True
        )
        profile, _env = prepare_airflow(settings, settings.home / "logs")
        return serve(profile)


def register(subparsers) -> None:
    """Add ``elt prod-local {run,up}``."""
    parser = subparsers.add_parser(
        "prod-local", help="the production profile on this machine, without Docker"
    )
    commands = parser.add_subparsers(dest="action", required=True)
    for name, func, text in (
        ("run", run, "start the services, run every source and the reverse ETL through the scheduler, stop"),
        ("up", up, "start the services and Airflow until Ctrl-C"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument(
            "--env-file", type=Path, help="the profile's .env (default $ELT_ENV_FILE or .local/prod/prod.env)"
        )
        command.set_defaults(func=func)
        if name == "run":
            command.add_argument("--days", type=int, default=1, help="days of the window (default 1)")
            command.add_argument(
                "--end",
                help="last day of the window, inclusive (default: the last day all daily runs have covered)",
            )
            command.add_argument("--employees", type=int, default=300, help="size of the Alaqan sandbox")
            command.add_argument("--timeout", type=float, default=2400, help="seconds to wait for each phase")

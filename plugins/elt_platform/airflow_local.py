"""The embedded Airflow: a small supervisor for ``make airflow`` and a backfill that runs only what was asked.

``make airflow`` (``elt airflow``) starts Airflow's own components — ``api-server``, ``scheduler``,
``dag-processor``, ``triggerer`` — instead of ``airflow standalone``, because standalone binds every
server to 0.0.0.0 and leaves its children behind when it is stopped. Here:

* the API server binds ``ELT_AIRFLOW_HOST``:``ELT_AIRFLOW_PORT`` (default 127.0.0.1:8080) and the
  scheduler and triggerer run with ``--skip-serve-logs`` (Airflow's log server always binds all
  interfaces; LocalExecutor writes log files the API server reads directly, so none is needed);
* every component gets its own process group and log file; stopping (Ctrl-C, SIGTERM) sends SIGTERM to
  every process of every component — LocalExecutor workers and task processes, which Airflow puts in
  process groups of their own, included — waits a bounded time, then SIGKILLs what is left;
* parallelism fits the machine (:func:`embedded_parallelism`); the simple auth manager keeps its admin
  password in a file written here (only its path is printed, never the password).

``elt backfill DAG --from D --to D`` (:func:`backfill`) creates an Airflow backfill for inclusive days.
Airflow 3.3 neither starts the runs of a paused DAG nor schedules their tasks (``DagRun.
get_queued_dag_runs_to_set_running``, ``SchedulerJobRunner._executable_task_instances_to_queued``), and
offers no backfill that runs on a paused DAG (apache/airflow#60768). Unpausing a ``catchup=False`` DAG
makes the scheduler create its latest scheduled run at once (``DagModel.next_dagrun_create_after`` is
already due). So for a paused DAG the backfill *holds* it: it is unpaused in the same transaction that
moves its next-run fields to the first interval ending in the future (what the scheduler itself writes
after creating that run), the fields are kept there while the backfill runs — the dag-processor
recomputes them on every parse of the file — and the DAG is paused again at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any, TextIO

from elt_platform.config import REPO_ROOT, PlatformConfig, port_setting

HOST_VARIABLE = "ELT_AIRFLOW_HOST"
PORT_VARIABLE = "ELT_AIRFLOW_PORT"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
#: Ceiling of the embedded executor's parallelism: each task may start a Spark driver.
MAX_PARALLELISM = 8
#: Seconds a component gets to exit after SIGTERM before it (and its descendants) are killed.
STOP_TIMEOUT_S = 20.0
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
#: How often a held backfill checks its DAG's next-run fields (seconds).
HOLD_POLL_S = 0.25


class BackfillError(ValueError):
    """A backfill request that cannot be honoured; the message is one line for the terminal."""


# -- the embedded profile -------------------------------------------------------------------------------


def embedded_parallelism(cores: int | None = None) -> int:
    """Task slots of the embedded LocalExecutor: two per core, at most :data:`MAX_PARALLELISM`.

    Args:
        cores: CPUs available to this process (default: the scheduler affinity).

    Returns:
        ``AIRFLOW__CORE__PARALLELISM``; LocalExecutor starts that many workers.
    """
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(2 * cores, MAX_PARALLELISM))


@dataclass(frozen=True)
class Profile:
    """How the embedded Airflow runs.

    Attributes:
        airflow_home: ``AIRFLOW_HOME`` (metadata DB, airflow.cfg, task logs).
        host / port: where the API server (UI, REST and execution API) listens.
        parallelism: task slots (LocalExecutor workers).
        components: which Airflow components to start.
        fast: poll and parse more often (tests): scheduler heartbeat 1 s, bundle listing every 5 s.
    """

    airflow_home: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    parallelism: int = field(default_factory=embedded_parallelism)
    components: tuple[str, ...] = COMPONENTS
    fast: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> Profile:
        """The profile named by ``AIRFLOW_HOME``, ``ELT_AIRFLOW_HOST`` and ``ELT_AIRFLOW_PORT``.

        Raises:
            ValueError: ``ELT_AIRFLOW_PORT`` is not a port number.
        """
        env = os.environ if env is None else env
        home = Path(env.get("AIRFLOW_HOME") or PlatformConfig.from_env(dict(env)).home / "airflow")
        values: dict[str, Any] = {
            "airflow_home": home,
            "host": env.get(HOST_VARIABLE) or DEFAULT_HOST,
            "port": port_setting(env, PORT_VARIABLE, DEFAULT_PORT),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{'127.0.0.1' if self.host in ('0.0.0.0', '::') else host}:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.airflow_home / "logs" / "components"

    @property
    def passwords_file(self) -> Path:
        return self.airflow_home / "simple_auth_manager_passwords.json.generated"

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The components' environment: ``base`` (default ``os.environ``) plus the embedded settings.

        Settings already in ``base`` win, except the bindings and parallelism, which this profile owns.
        """
        env = dict(os.environ if base is None else base)
        paths = [str(REPO_ROOT), str(REPO_ROOT / "plugins")]
        paths += [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p not in paths]
        defaults = {
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # Every component, task and CLI call writes the SQLite metadata DB; pysqlite's default
            # 5 s busy timeout fails a backfill created while the scheduler commits.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.airflow_home / 'airflow.db'}?timeout=60",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file),
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            # A file is reparsed as soon as it changes (modified-time order); unchanged files only
            # every 10 minutes, which also keeps a held backfill's next-run fields (see backfill()).
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            # Secrets every component must share (the execution API's tokens are signed with the
            # JWT secret): generated per start unless configured, never written to a log.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "GX_ANALYTICS_ENABLED": "False",
            "DO_NOT_TRACK": "1",
        }
        if self.fast:
            defaults.update(
                {
                    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
                    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                    "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "1",
                }
            )
        for name, value in defaults.items():
            env.setdefault(name, value)
        env.update(
            {
                "AIRFLOW_HOME": str(self.airflow_home),
                "PYTHONPATH": os.pathsep.join(paths),
                "AIRFLOW__API__HOST": self.host,
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            }
        )
        return env

    def commands(self, airflow: str | None = None) -> dict[str, list[str]]:
        """Component name → command line, in start order.

        Args:
            airflow: the ``airflow`` executable (default: the one beside this interpreter).
        """
        airflow = airflow or str(Path(sys.executable).with_name("airflow"))
        every = {
            "api-server": [
                airflow,
                "api-server",
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--workers",
                "1",
            ],
            "scheduler": [airflow, "scheduler", "--skip-serve-logs"],
            "dag-processor": [airflow, "dag-processor"],
            "triggerer": [airflow, "triggerer", "--skip-serve-logs"],
        }
        unknown = sorted(set(self.components) - set(every))
        if unknown:
            raise ValueError(f"unknown Airflow components {unknown}; known: {list(every)}")
        return {name: argv for name, argv in every.items() if name in self.components}


def ensure_admin_password(path: Path, users: str = "admin:admin") -> Path:
    """Write a generated password for every simple-auth-manager user missing from ``path`` (mode 0600).

    The API server prints the passwords it generates itself to its log; generating them here keeps
    them out of every log. Existing passwords are kept.

    Args:
        path: the passwords file the API server reads.
        users: ``[core] simple_auth_manager_users`` (``name:role,...``).

    Returns:
        ``path``.
    """
    passwords = json.loads(path.read_text() or "{}") if path.is_file() else {}
    missing = [u.split(":")[0] for u in users.split(",") if u.strip() and u.split(":")[0] not in passwords]
    if missing or not path.is_file():
        passwords.update({name: secrets.token_urlsafe(12) for name in missing})
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(passwords, handle)
    os.chmod(path, 0o600)
    return path


def migrate(env: Mapping[str, str], log_path: Path) -> None:
    """``airflow db migrate`` for ``env``'s ``AIRFLOW_HOME`` (idempotent).

    Raises:
        RuntimeError: the migration failed (the log's last lines are in the message).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    airflow = str(Path(sys.executable).with_name("airflow"))
    with open(log_path, "ab") as log:
        code = subprocess.call(
            [airflow, "db", "migrate"], env=dict(env), stdout=log, stderr=subprocess.STDOUT
        )
    if code:
        tail = log_path.read_text(errors="replace").splitlines()[-20:]
        raise RuntimeError(f"airflow db migrate failed ({code}):\n" + "\n".join(tail))


def ensure_pools(env: Mapping[str, str], log_path: Path) -> list[str]:
    """Create the registry's pools (:meth:`Registry.pools`, one slot each) in ``env``'s metadata DB.

    The stack's ``AIRFLOW_HOME`` is not this process's, hence ``airflow pools set`` in a subprocess
    rather than :func:`elt_platform.local_run.ensure_pools`. Idempotent.

    Returns:
        The pools set.
    """
    from elt_platform.registry import registry

    pools = registry().pools()
    airflow = str(Path(sys.executable).with_name("airflow"))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        for pool, description in sorted(pools.items()):
            code = subprocess.call(
                [airflow, "pools", "set", pool, "1", description], env=dict(env), stdout=log, stderr=log
            )
            if code:
                raise RuntimeError(f"airflow pools set {pool} failed ({code}); see {log_path}")
    return sorted(pools)


# -- processes ------------------------------------------------------------------------------------------


def _tree(roots: Iterable[int]) -> list:
    """The live processes of ``roots`` and all their descendants (psutil handles, PID-reuse safe)."""
    import psutil

    found: dict[int, psutil.Process] = {}
    for pid in roots:
        try:
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                found.setdefault(proc.pid, proc)
        except psutil.NoSuchProcess:
            continue
    return list(found.values())


def _signal_all(procs: Iterable, sig: int) -> None:
    """Send ``sig`` to each process and to each process group they lead (never to our own group)."""
    import psutil

    own_group = os.getpgrp()
    groups: set[int] = set()
    for proc in procs:
        try:
            groups.add(os.getpgid(proc.pid))
            proc.send_signal(sig)
        except (psutil.NoSuchProcess, ProcessLookupError):
            continue
    for group in groups - {own_group}:
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            continue


def stop_processes(roots: Iterable[int], timeout: float = STOP_TIMEOUT_S) -> list[int]:
    """Stop ``roots`` and every descendant: SIGTERM, wait up to ``timeout`` s, then SIGKILL.

    Descendants are collected before signalling and again while waiting, so children that Airflow
    moved into process groups of their own (task processes) or that were orphaned meanwhile are
    still stopped.

    Returns:
        PIDs that had to be killed with SIGKILL.
    """
    import psutil

    procs = {p.pid: p for p in _tree(roots)}
    _signal_all(procs.values(), signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in _tree([p.pid for p in procs.values() if p.is_running()]):
            procs.setdefault(proc.pid, proc)
        alive = [p for p in procs.values() if _alive(p)]
        if not alive:
            return []
        psutil.wait_procs(alive, timeout=min(0.5, max(0.0, deadline - time.monotonic())))
    survivors = [p for p in procs.values() if _alive(p)]
    _signal_all(survivors, signal.SIGKILL)
    psutil.wait_procs(survivors, timeout=5)
    return sorted(p.pid for p in survivors)


def _alive(proc) -> bool:
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class AirflowStack:
    """Airflow's components as child processes, each in its own process group.

    Use as a context manager: leaving it (normally, by an exception, by KeyboardInterrupt) stops
    everything that was started.

    Args:
        profile: bindings, parallelism, components.
        env: the components' environment (default ``profile.env()``).
        out: where progress lines go.
    """

    def __init__(self, profile: Profile, env: Mapping[str, str] | None = None, out: TextIO = sys.stdout):
        self.profile = profile
        self.env = dict(env) if env is not None else profile.env()
        self.out = out
        self.processes: dict[str, subprocess.Popen] = {}

    def log_path(self, component: str) -> Path:
        return self.profile.log_dir / f"{component}.log"

    def start(self) -> AirflowStack:
        """Start every component (its output goes to ``<AIRFLOW_HOME>/logs/components/<name>.log``)."""
        self.profile.log_dir.mkdir(parents=True, exist_ok=True)
        if "api-server" in self.profile.components:
            users = self.env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
            ensure_admin_password(Path(self.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]), users)
        ensure_pools(self.env, self.log_path("pools"))
        for name, argv in self.profile.commands().items():
            with open(self.log_path(name), "ab") as log:
                self.processes[name] = subprocess.Popen(
                    argv,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            print(f"» {name:14} pid {self.processes[name].pid:<7} log {self.log_path(name)}", file=self.out)
        return self

    def failed(self) -> dict[str, int]:
        """Components that exited, with their exit codes."""
        return {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until the API server answers its health check.

        Raises:
            RuntimeError: a component exited, or the API server did not answer within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        url = f"{self.profile.base_url}/api/v2/monitor/health"
        while time.monotonic() < deadline:
            if failed := self.failed():
                raise RuntimeError(f"Airflow component(s) exited: {failed} (logs in {self.profile.log_dir})")
            if "api-server" not in self.processes:
                return
            try:
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own local URL
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(1)
        raise RuntimeError(f"the API server did not answer {url} within {timeout:.0f}s")

    def stop(self, timeout: float | None = None) -> list[int]:
        """Stop every component and its descendants (see :func:`stop_processes`).

        Args:
            timeout: seconds between SIGTERM and SIGKILL (default :data:`STOP_TIMEOUT_S`).

        Returns:
            PIDs that needed SIGKILL.
        """
        timeout = STOP_TIMEOUT_S if timeout is None else timeout
        killed = stop_processes([p.pid for p in self.processes.values() if p.poll() is None], timeout)
        for process in self.processes.values():
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return killed

    def __enter__(self) -> AirflowStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info) -> None:
        self.stop()


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while the block runs, so ``finally`` clauses stop what was started."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve(profile: Profile, *, sandboxes: bool = True, out: TextIO = sys.stdout) -> int:
    """Run the embedded Airflow until interrupted; stop everything on the way out.

    Starts, in order: each source's sandbox, the embedded SQL server (a local Spark Thrift server that
    every task's dbt uses, unless ``ELT_SQL_SERVER=off``; :mod:`elt_platform.services.sql_server`), then
    Airflow's components.

    Args:
        profile: bindings, parallelism, components.
        sandboxes: start each registered source's sandbox unless a real endpoint is configured.
        out: progress lines.

    Returns:
        0 after Ctrl-C/SIGTERM, 1 when a component or the SQL server exited on its own.
    """
    from elt_platform.registry import call, registry
    from elt_platform.sandbox.launch import SandboxOptions
    from elt_platform.services import sql_server

    with _sigterm_as_interrupt(), ExitStack() as stack:
        for source in registry().sources.values():
            if source.endpoint_variable and os.environ.get(source.endpoint_variable):
                print(f"» {source.name:14} configured by {source.endpoint_variable}", file=out)
            elif sandboxes and source.sandbox:
                print(
                    f"» {source.name:14} {stack.enter_context(call(source.sandbox, SandboxOptions()))}",
                    file=out,
                )
        try:
            sql = stack.enter_context(sql_server.serving(os.environ, out))
        except (sql_server.ServiceError, ValueError) as exc:
            print(f"✘ {exc}", file=out)
            return 1
        airflow = AirflowStack(profile, env=profile.env({**os.environ, **sql.env}), out=out)
        stack.callback(_report_stop, airflow, out)
        airflow.start()
        try:
            airflow.wait_ready()
            print(
                f"» Airflow UI     {profile.base_url}  (user admin, password in {profile.passwords_file})",
                file=out,
            )
            print(f"» parallelism    {profile.parallelism} task slots; Ctrl-C stops everything", file=out)
            while not (failed := airflow.failed()) and not (gone := sql.failure()):
                time.sleep(1)
            if failed:
                print(f"✘ Airflow component(s) exited: {failed} (logs in {profile.log_dir})", file=out)
            else:
                print(f"✘ {gone}: every transform would fail; stopping", file=out)
            return 1
        except KeyboardInterrupt:
            return 0
        except RuntimeError as exc:
            print(f"✘ {exc}", file=out)
            return 1


def _report_stop(airflow: AirflowStack, out: TextIO) -> None:
    print("» stopping Airflow …", file=out)
    killed = airflow.stop()
    print(f"» stopped{f' (killed after {STOP_TIMEOUT_S:.0f}s: pids {killed})' if killed else ''}", file=out)


# -- backfill ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackfillWindow:
    """A validated backfill request: inclusive days mapped onto Airflow's logical-date range."""

    dag_id: str
    first_day: date
    last_day: date
    transforms: tuple[str, ...]
    domains: tuple[str, ...]

    @property
    def from_date(self) -> datetime:
        return datetime.combine(self.first_day, clock.min, tzinfo=UTC)

    @property
    def to_date(self) -> datetime:
        # Inclusive in Airflow: every logical date (the data interval's start) on the last day.
        return datetime.combine(self.last_day, clock.max.replace(microsecond=0), tzinfo=UTC)

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1


def _complete_through(schedule: str | timedelta, now: datetime) -> date:
    """The last day whose every data interval of an extract scheduled ``schedule`` had ended at ``now``:
    the day before the one its latest ended interval ends on, asked of the DAG's own timetable as the
    scheduler evaluates it (a micro-batch's interval is the point ``now``)."""
    import pendulum
    from airflow.serialization.encoders import coerce_to_core_timetable

    from elt_platform.dag_factory import extract_timetable

    timetable = coerce_to_core_timetable(extract_timetable(schedule))
    latest = timetable.infer_manual_data_interval(run_after=pendulum.instance(now.astimezone(UTC)))
    return latest.end.date() - timedelta(days=1)


def last_complete_day(dag_id: str | None = None, *, now: datetime | None = None) -> date:
    """The last day interval extract ``dag_id`` can be backfilled for at ``now`` (default: the last day
    every interval extract can be).

    A day is complete when its data interval has ended, not at midnight: ``extract_alaqan`` runs at
    02:00 UTC for the 24 hours before, so at 01:00 UTC on the 2nd the last complete day is the 30th, and
    Airflow creates no backfill run for the 1st.

    Raises:
        BackfillError: ``dag_id`` is not an interval extract.
    """
    from elt_platform.registry import registry

    schedules = {e.dag_id: e.schedule for _, e in registry().extracts() if e.kind == "interval"}
    if dag_id is not None and dag_id not in schedules:
        raise BackfillError(f"{dag_id!r} is not a backfillable DAG; interval extracts: {sorted(schedules)}")
    now = now or datetime.now(UTC)
    wanted = [dag_id] if dag_id is not None else sorted(schedules)
    return min(_complete_through(schedules[d], now) for d in wanted)


def backfill_window(
    dag_id: str,
    first_day: date | str,
    last_day: date | str,
    *,
    max_active_runs: int,
    now: datetime | None = None,
) -> BackfillWindow:
    """Check a backfill request against the registry; days are inclusive and must be complete
    (:func:`last_complete_day`).

    Raises:
        BackfillError: unknown or non-interval DAG, malformed or inverted dates, a day not complete yet,
            ``max_active_runs`` < 1.
    """
    from elt_platform.registry import registry

    reg = registry()
    interval = {e.dag_id: (s, e) for s, e in reg.extracts() if e.kind == "interval"}
    if dag_id not in interval:
        raise BackfillError(f"{dag_id!r} is not a backfillable DAG; interval extracts: {sorted(interval)}")
    try:
        first = first_day if isinstance(first_day, date) else date.fromisoformat(first_day)
        last = last_day if isinstance(last_day, date) else date.fromisoformat(last_day)
    except ValueError:
        raise BackfillError(f"dates must be YYYY-MM-DD, got FROM={first_day!r} TO={last_day!r}") from None
    now = now or datetime.now(UTC)
    if last < first:
        raise BackfillError(f"TO {last} is before FROM {first}")
    complete = last_complete_day(dag_id, now=now)
    if last > complete:
        raise BackfillError(
            f"TO {last} is not complete yet for {dag_id} (schedule {interval[dag_id][1].schedule} UTC: "
            f"its run for that day has not come); the last complete day is {complete}"
        )
    if max_active_runs < 1:
        raise BackfillError(f"max active runs must be at least 1, got {max_active_runs}")
    source = interval[dag_id][0]
    domains = tuple(d.name for d in reg.domains_of(source.name))
    return BackfillWindow(dag_id, first, last, tuple(f"transform_{d}" for d in domains), domains)


@dataclass
class BackfillReport:
    """What a backfill did: its runs' final states and the transform runs it woke."""

    backfill_id: int
    runs: dict[str, str]
    transform_runs: dict[str, str]
    pending: int
    seconds: float

    @property
    def ok(self) -> bool:
        return (
            bool(self.runs)
            and all(s == "success" for s in self.runs.values())
            and all(s in ("success",) for s in self.transform_runs.values())
            and self.pending == 0
        )


def _airflow_error_types() -> tuple[type[Exception], ...]:
    from airflow.exceptions import DagNotFound
    from airflow.models import backfill as backfill_model

    names = (
        "AlreadyRunningBackfill",
        "NoBackfillRunsToCreate",
        "InvalidBackfillDate",
        "InvalidBackfillDateRange",
        "InvalidReprocessBehavior",
        "DagNonPeriodicScheduleException",
        "DagRunTypeNotAllowed",
    )
    return (DagNotFound, *(getattr(backfill_model, n) for n in names if hasattr(backfill_model, n)))


def _hold_unpaused(session, dag_id: str) -> bool:
    """Move a held DAG's next-run fields past now if the dag-processor made a scheduled run due.

    Returns:
        Whether the fields were moved.
    """
    from airflow.models.dag import DagModel
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.timetables.base import TimeRestriction
    from sqlalchemy import select

    model = session.scalar(select(DagModel).where(DagModel.dag_id == dag_id))
    due = model.next_dagrun_create_after
    if due is not None and due > datetime.now(UTC):
        return False
    dag = SerializedDagModel.get_dag(dag_id, session=session)
    if dag is None:  # never serialized: the scheduler cannot have made a run due either
        return False
    # Airflow types the restriction with pendulum DateTime; a serialized DAG's dates are pendulum
    # values typed as plain datetime.
    restriction = TimeRestriction(
        earliest=dag.start_date,  # type: ignore[arg-type]
        latest=dag.end_date,  # type: ignore[arg-type]
        catchup=False,
    )
    latest = dag.timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    if latest is None:
        return False
    following = dag.timetable.next_dagrun_info(
        last_automated_data_interval=latest.data_interval, restriction=restriction
    )
    model.next_dagrun = following.logical_date if following else None
    model.next_dagrun_data_interval = following.data_interval if following else None
    model.next_dagrun_create_after = following.run_after if following else None
    return True


def _set_paused(session, dag_ids: Iterable[str], paused: bool) -> None:
    from airflow.models.dag import DagModel
    from sqlalchemy import update

    ids = list(dag_ids)
    if ids:
        session.execute(update(DagModel).where(DagModel.dag_id.in_(ids)).values(is_paused=paused))


def _paused(session, dag_ids: Iterable[str]) -> dict[str, bool]:
    from airflow.models.dag import DagModel
    from sqlalchemy import select

    rows = session.execute(
        select(DagModel.dag_id, DagModel.is_paused).where(DagModel.dag_id.in_(list(dag_ids)))
    )
    return {dag_id: bool(paused) for dag_id, paused in rows}


def _retrying(action, attempts: int = 8):
    """Run ``action()``, again while SQLite reports ``database is locked``.

    A SQLite transaction that read before it writes fails at once (no busy wait) when another
    process committed meanwhile; Airflow's own API answers such a backfill creation with 503, retry.
    """
    from airflow.utils.sqlalchemy import is_lock_not_available_error
    from sqlalchemy.exc import OperationalError

    for attempt in range(1, attempts + 1):
        try:
            return action()
        except OperationalError as exc:
            if attempt == attempts or not is_lock_not_available_error(exc):
                raise
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


def _in_session(action):
    """``action(session)`` in one committed transaction, retried while the metadata DB is locked."""
    from airflow.utils.session import create_session

    def run():
        with create_session() as session:
            return action(session)

    return _retrying(run)


def _state(value) -> str:
    return str(getattr(value, "value", value) or "none")


def backfill(
    dag_id: str,
    first_day: date | str,
    last_day: date | str,
    *,
    max_active_runs: int,
    reprocess: str = "none",
    poll_seconds: float = 2.0,
    timeout: float | None = None,
    out: TextIO = sys.stdout,
) -> BackfillReport:
    """Backfill the inclusive days ``first_day``..``last_day`` of an interval extract and wait for gold.

    Creates an Airflow backfill (one run per day, ``max_active_runs`` at a time) on the metadata DB of
    ``AIRFLOW_HOME``; a running scheduler executes it. A paused DAG is held unpaused without a scheduled
    run (see the module docstring) and paused again at the end; the transform DAGs consuming the
    source are unpaused for the backfill too (asset events only wake unpaused DAGs) and restored after.
    Returns when the backfill is complete, no transform run is active and the transform ledger has
    nothing pending (or a transform run failed).

    Args:
        dag_id: an interval extract DAG (``extract_alaqan``).
        first_day / last_day: inclusive days (``date`` or ``YYYY-MM-DD``); the last one must be over.
        max_active_runs: concurrent backfill runs.
        reprocess: days that already have a run: ``none`` (skip), ``failed`` or ``completed`` (rerun).
        poll_seconds: how often to check progress.
        timeout: give up waiting after this many seconds (the backfill keeps running).
        out: progress lines.

    Returns:
        The runs' final states.

    Raises:
        BackfillError: the request is invalid or Airflow refused it (one-line message).
        TimeoutError: ``timeout`` passed first.
    """
    from airflow.models.backfill import BackfillDagRun, ReprocessBehavior, _create_backfill
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    from elt_platform.state import TransformLedger, open_state_store

    window = backfill_window(dag_id, first_day, last_day, max_active_runs=max_active_runs)
    began = time.monotonic()
    paused = _in_session(lambda session: _paused(session, (dag_id, *window.transforms)))
    if dag_id not in paused:
        raise BackfillError(f"{dag_id} is not in the metadata DB yet: is `make airflow` running?")
    try:
        created = _retrying(
            lambda: _create_backfill(
                dag_id=dag_id,
                from_date=window.from_date,
                to_date=window.to_date,
                max_active_runs=max_active_runs,
                reverse=False,
                dag_run_conf=None,
                triggering_user_name="elt backfill",
                reprocess_behavior=ReprocessBehavior(reprocess),
            )
        )
    except _airflow_error_types() as exc:
        raise BackfillError(str(exc).strip().splitlines()[0]) from None
    to_unpause = [d for d, is_paused in paused.items() if is_paused]
    hold = paused[dag_id]

    def unpause(session) -> None:
        if hold:
            _hold_unpaused(session, dag_id)
        _set_paused(session, to_unpause, False)

    _in_session(unpause)
    run_ids = _in_session(
        lambda session: dict(
            session.execute(
                select(DagRun.run_id, DagRun.logical_date)
                .join(BackfillDagRun, BackfillDagRun.dag_run_id == DagRun.id)
                .where(BackfillDagRun.backfill_id == created.id)
            ).all()
        )
    )
    print(
        f"» backfill {created.id}: {dag_id} days {window.first_day} .. {window.last_day} (inclusive), "
        f"{len(run_ids)} run(s), {max_active_runs} at a time"
        + (f"; unpaused {', '.join(to_unpause)} for its duration" if to_unpause else ""),
        file=out,
    )
    ledgers = [TransformLedger(open_state_store(), d) for d in window.domains]
    started = datetime.now(UTC)
    seen: dict[str, str] = {}
    next_check = 0.0
    try:
        while True:
            if hold and _in_session(lambda session: _hold_unpaused(session, dag_id)):
                # Checked more often than progress: the scheduler acts about a second after the
                # dag-processor makes a scheduled run due.
                print(f"  {dag_id}: next-run fields moved past now again (the file was reparsed)", file=out)
            if time.monotonic() < next_check:
                time.sleep(HOLD_POLL_S)
                continue
            next_check = time.monotonic() + poll_seconds
            complete, runs, transforms = _in_session(
                lambda session: _progress(session, created.id, window, started)
            )
            for key, state in {**runs, **transforms}.items():
                if seen.get(key) != state:
                    print(f"  {key:70} {state}", file=out)
                    seen[key] = state
            pending = sum(len(ledger.pending()) for ledger in ledgers)
            active = any(s in ("queued", "running") for s in transforms.values())
            failed = any(s == "failed" for s in transforms.values())
            if complete and not active and (pending == 0 or failed):
                return BackfillReport(created.id, runs, transforms, pending, time.monotonic() - began)
            if timeout is not None and time.monotonic() - began > timeout:
                raise TimeoutError(f"backfill {created.id} not finished after {timeout:.0f}s: {runs}")
    finally:
        restore = to_unpause if hold else [d for d in to_unpause if d != dag_id]
        _in_session(lambda session: _set_paused(session, restore, True))


def _progress(session, backfill_id: int, window: BackfillWindow, since: datetime):
    """(backfill complete?, its runs' states, the states of transform runs created since ``since``)."""
    from airflow.models.backfill import Backfill
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    complete = session.get(Backfill, backfill_id).completed_at is not None
    runs = {
        r.run_id: _state(r.state)
        for r in session.scalars(select(DagRun).where(DagRun.backfill_id == backfill_id))
    }
    transforms = {
        f"{r.dag_id} {r.run_id}": _state(r.state)
        for r in session.scalars(
            select(DagRun).where(DagRun.dag_id.in_(window.transforms), DagRun.run_after >= since)
        )
    }
    return complete, runs, transforms


# -- command line ---------------------------------------------------------------------------------------


def cmd_airflow(args: argparse.Namespace) -> int:
    try:
        profile = Profile.from_env(host=args.host, port=args.port)
    except ValueError as exc:
        print(f"✘ {exc}", file=sys.stderr)
        return 2
    if args.no_triggerer:
        profile = Profile(
            **{**profile.__dict__, "components": tuple(c for c in COMPONENTS if c != "triggerer")}
        )
    return serve(profile, sandboxes=not args.no_sandboxes)


def cmd_backfill(args: argparse.Namespace) -> int:
    try:
        with _sigterm_as_interrupt():
            report = backfill(
                args.dag_id,
                args.from_day,
                args.to_day,
                max_active_runs=args.max_active_runs,
                reprocess=args.reprocess,
                timeout=args.timeout,
            )
    except BackfillError as exc:
        print(f"✘ {exc}", file=sys.stderr)
        return 2
    except TimeoutError as exc:
        print(f"✘ {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "✘ interrupted: pause flags restored; queued backfill runs continue when the DAG is unpaused "
            "(or `airflow backfill cancel`)",
            file=sys.stderr,
        )
        return 130
    verdict = "✔" if report.ok else "✘"
    print(
        f"{verdict} backfill {report.backfill_id}: {sum(s == 'success' for s in report.runs.values())}/"
        f"{len(report.runs)} run(s) succeeded, {len(report.transform_runs)} transform run(s), "
        f"{report.pending} slice(s) still pending, {report.seconds:.0f}s"
    )
    return 0 if report.ok else 1


def register(subparsers) -> None:
    """Add ``elt airflow`` and ``elt backfill`` to the CLI's subparsers."""
    serve_cmd = subparsers.add_parser(
        "airflow",
        help="run Airflow (api-server, scheduler, dag-processor, triggerer) with the sandboxes",
    )
    serve_cmd.add_argument("--host", help=f"API server address (default ${HOST_VARIABLE} or {DEFAULT_HOST})")
    serve_cmd.add_argument(
        "--port", type=int, help=f"API server port (default ${PORT_VARIABLE} or {DEFAULT_PORT})"
    )
    serve_cmd.add_argument("--no-sandboxes", action="store_true", help="start no source sandbox")
    serve_cmd.add_argument("--no-triggerer", action="store_true", help="no triggerer (no deferrable tasks)")
    serve_cmd.set_defaults(func=cmd_airflow)
    fill = subparsers.add_parser(
        "backfill", help="backfill inclusive days of an interval extract DAG (needs `elt airflow` running)"
    )
    fill.add_argument("dag_id", help="interval extract DAG, e.g. extract_alaqan")
    fill.add_argument("--from", dest="from_day", required=True, help="first day, inclusive (YYYY-MM-DD)")
    fill.add_argument("--to", dest="to_day", required=True, help="last day, inclusive (YYYY-MM-DD)")
    fill.add_argument("--max-active-runs", type=int, default=2, help="concurrent runs (default 2)")
    fill.add_argument(
        "--reprocess",
        choices=("none", "failed", "completed"),
        default="none",
        help="days that already have a run: skip (none), rerun failed ones, or rerun all",
    )
    fill.add_argument("--timeout", type=float, help="stop waiting after this many seconds")
    fill.set_defaults(func=cmd_backfill)


def main(argv: list[str] | None = None) -> int:
    """``python -m elt_platform.airflow_local {airflow,backfill} …`` (same as ``elt airflow|backfill``)."""
    from elt_platform.config import load_env_file

    load_env_file()
    parser = argparse.ArgumentParser(prog="elt", description=__doc__.splitlines()[0])
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

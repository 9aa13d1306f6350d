"""The embedded profile's SQL endpoint: one long-lived, local-mode Spark Thrift server over the lakehouse.

``make airflow`` starts it beside Airflow and points every dbt invocation of its tasks at it (the
profile's ``prod`` target, ``method: thrift``): a task then pays a Thrift session, not a Spark driver
start and the first, cold runs of every statement (a fast-path build of the clinic: 45 s with a cold
in-process driver, 24–27 s on a warm server, measured at 100,000 receptions; see bench/README.md).
Analysts' BI tools reach the same server over JDBC/ODBC (``jdbc:hive2://127.0.0.1:10000/default``).

It mounts the catalog exactly as a task's driver does (:func:`elt_platform.services.stack.thrift_conf`,
the SQLite catalog and local warehouse by default), so pyiceberg's bronze commits are visible to its next
statement (the catalog cache is off). HiveServer2 has no authentication here: it binds 127.0.0.1 unless
``ELT_SQL_HOST`` says otherwise.

Settings: ``ELT_SQL_SERVER`` (``on`` by default; ``off`` keeps dbt in each task's own Spark session),
``ELT_SQL_HOST`` / ``ELT_SQL_PORT`` (127.0.0.1:10000), ``ELT_SPARK_DRIVER_MEMORY`` (2g).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from elt_platform.services.stack import (
    ServiceError,
    Started,
    port_open,
    properties_text,
    start_thrift_server,
    thrift_conf,
)

SWITCH_VARIABLE = "ELT_SQL_SERVER"
HOST_VARIABLE = "ELT_SQL_HOST"
PORT_VARIABLE = "ELT_SQL_PORT"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 10000
#: Spark's scheduler pools: the one pool every session uses, sharing the cores fairly among its jobs.
FAIR_POOLS = """<?xml version="1.0"?>
<allocations>
  <pool name="default">
    <schedulingMode>FAIR</schedulingMode>
    <weight>1</weight>
    <minShare>0</minShare>
  </pool>
</allocations>
"""
#: Seconds to wait for the server's port (a first start resolves nothing: the jars are cached by then).
START_TIMEOUT_S = 300


def wanted(env: Mapping[str, str]) -> bool:
    """Whether the embedded profile runs its SQL server: ``ELT_SQL_SERVER`` is not off, and dbt is not
    already pointed at another Thrift server (``DBT_TARGET=prod`` with ``DBT_SPARK_HOST`` set).

    Raises:
        ValueError: ``ELT_SQL_SERVER`` is neither on nor off.
    """
    switch = (env.get(SWITCH_VARIABLE) or "on").strip().lower()
    if switch not in {"on", "off", "true", "false", "1", "0", "yes", "no"}:
        raise ValueError(f"{SWITCH_VARIABLE}={env.get(SWITCH_VARIABLE)!r}: expected on or off")
    if switch in {"off", "false", "0", "no"}:
        return False
    return not (env.get("DBT_TARGET") == "prod" and env.get("DBT_SPARK_HOST"))


@dataclass
class EmbeddedSqlServer:
    """A local-mode Spark Thrift server for the embedded profile.

    Args:
        home: ``ELT_HOME``; the server keeps its log and properties under ``<home>/services/sql-server``.
        host / port: where HiveServer2 listens.
    """

    home: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides) -> EmbeddedSqlServer:
        """The server named by ``ELT_HOME``, ``ELT_SQL_HOST`` and ``ELT_SQL_PORT``.

        Raises:
            ValueError: ``ELT_SQL_PORT`` is not a port number.
        """
        from elt_platform.config import PlatformConfig, port_setting

        values: dict[str, Any] = {
            "home": PlatformConfig.from_env(dict(env)).home,
            "host": env.get(HOST_VARIABLE) or DEFAULT_HOST,
            "port": port_setting(env, PORT_VARIABLE, DEFAULT_PORT),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def directory(self) -> Path:
        return self.home / "services" / "sql-server"

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:hive2://{self.host}:{self.port}/default"

    def dbt_env(self) -> dict[str, str]:
        """What points a process's dbt at this server (``dbt/profiles.yml``'s ``prod`` target)."""
        return {
            "DBT_TARGET": "prod",
            "DBT_SPARK_METHOD": "thrift",
            "DBT_SPARK_HOST": self.host,
            "DBT_SPARK_PORT": str(self.port),
        }

    @property
    def scheduler_pools(self) -> Path:
        return self.directory / "fairscheduler.xml"

    def conf(self, env: Mapping[str, str]) -> dict[str, str]:
        """The server's Spark properties: the task drivers' catalog on ``local[*]``, and fair scheduling
        between clients (a daily full build's long jobs do not hold the fast path's short ones back)."""
        conf = thrift_conf(
            env,
            master=env.get("ELT_SPARK_MASTER") or "local[*]",
            host=self.host,
            port=self.port,
            directory=self.directory,
            driver_memory="2g",
        )
        conf["spark.scheduler.mode"] = "FAIR"
        conf["spark.scheduler.allocation.file"] = str(self.scheduler_pools)
        return conf

    def start(self, env: Mapping[str, str]) -> Started:
        """Start the server and wait until it listens (30–60 s: a Spark driver and the catalog).

        Raises:
            ServiceError: the port is taken, or the server exited or did not listen in time (the
                message names its log).
        """
        if port_open(self.host, self.port):
            raise ServiceError(
                f"{self.host}:{self.port} is already taken: set {PORT_VARIABLE} to a free port, "
                f"or {SWITCH_VARIABLE}=off to run dbt in each task's own Spark session"
            )
        # Every client's jobs land in the pool `default`, FIFO inside unless declared FAIR here.
        self.directory.mkdir(parents=True, exist_ok=True)
        self.scheduler_pools.write_text(FAIR_POOLS)
        return start_thrift_server(
            "sql-server",
            properties_text(self.conf(env)),
            host=self.host,
            port=self.port,
            directory=self.directory,
            env=env,
            bind=self.host if self.host not in ("0.0.0.0", "::") else DEFAULT_HOST,
            timeout=START_TIMEOUT_S,
        )


@dataclass
class Serving:
    """What :func:`serving` yields.

    Attributes:
        env: the variables that point dbt at the server (empty when it is off): add them to the
            environment of every process that runs dbt.
        started: the running server (None when it is off).
    """

    env: dict[str, str]
    started: Started | None = None

    def failure(self) -> str | None:
        """None while the server runs (or when none was started), else why it is gone, in one line."""
        if self.started is None or self.started.running():
            return None
        return f"the SQL server exited; see {self.started.log}"


@contextmanager
def serving(env: Mapping[str, str], out: TextIO | None = None, **overrides) -> Iterator[Serving]:
    """Run the embedded SQL server for the block, when :func:`wanted`; stop it on the way out.

    Args:
        env: the platform settings (the Airflow components' environment).
        out: progress lines (default: standard output).
        overrides: ``host`` / ``port`` instead of ``ELT_SQL_HOST`` / ``ELT_SQL_PORT``.

    Yields:
        The dbt variables and the server's process (:class:`Serving`).

    Raises:
        ServiceError: the server did not start.
    """
    out = out or sys.stdout
    if not wanted(env):
        print(f"» {'SQL server':14} off (dbt runs in each task's Spark session)", file=out, flush=True)
        yield Serving({})
        return
    server = EmbeddedSqlServer.from_env(env, **overrides)
    print(f"» {'SQL server':14} starting Spark Thrift server (local) …", file=out, flush=True)
    started = server.start(env)
    try:
        print(
            f"» {'SQL server':14} {server.jdbc_url}  ready in {started.seconds:.0f}s (log {started.log})",
            file=out,
            flush=True,
        )
        yield Serving(server.dbt_env(), started)
    finally:
        started.stop()

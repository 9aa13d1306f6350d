"""Start and stop the production-local services natively, in dependency order, and measure them.

Order (as compose's healthchecks): PostgreSQL → object store (S3Proxy, then the bucket) → Spark master
→ Spark worker → Spark Thrift server. Each is one process tree with its own log under
``$ELT_HOME/services/<name>/``; a service counts as started when its port accepts connections (the
Thrift server: when it answers a HiveServer2 session). Airflow's components are started by
:class:`elt_platform.airflow_local.AirflowStack` on top of this (see :mod:`.run`).

Every JVM binds ``ELT_BIND_ADDRESS`` (``SPARK_LOCAL_IP`` makes Spark's RPC and web UIs bind there too)
and no secret is put on a command line (``ps`` shows those): S3Proxy's key pair and the Thrift server's
catalog password and PII hash key are in mode-0600 properties files.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from elt_platform.services.maven import ensure_packages
from elt_platform.services.objectstore import S3ProxyConfig, ensure_bucket
from elt_platform.services.postgres import PostgresServer
from elt_platform.services.settings import ProdLocalSettings

THRIFT_SERVER_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"


class ServiceError(RuntimeError):
    """A service did not start (the message names it and its log)."""


def spark_home() -> Path:
    """The Spark distribution inside the pyspark package (``bin/spark-class``, ``jars/``)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def process_tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, in MB (0 when it is gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


@dataclass
class Started:
    """A running service: how long it took to be ready and its root process."""

    name: str
    pid: int
    seconds: float
    address: str
    log: Path
    stop: Callable[[], None] = field(repr=False)

    def rss_mb(self) -> float:
        return process_tree_rss_mb(self.pid)

    def running(self) -> bool:
        """Whether its root process is still alive (an exited child not yet reaped counts as gone)."""
        import psutil

        try:
            return psutil.Process(self.pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` readable by its owner only (mode 0600): it may hold secrets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
    return path


def thrift_conf(
    env: Mapping[str, str], *, master: str, host: str, port: int, directory: Path, driver_memory: str
) -> dict[str, str]:
    """A Spark Thrift server's properties: the catalog exactly as every task driver mounts it.

    ``spark_jobs.session.session_conf`` is the one source of the catalog settings (jars, the JDBC
    catalog on SQLite or Postgres, S3FileIO), so dbt through a Thrift server and a Spark job in a task
    cannot disagree. Used by the production profile's server (on the standalone cluster) and by the
    embedded profile's (``local[*]``, :mod:`elt_platform.services.sql_server`).

    Args:
        env: the platform settings.
        master: ``spark.master`` of the server's driver.
        host / port: where HiveServer2 listens.
        directory: the server's own directory (its ``spark-warehouse``).
        driver_memory: ``spark.driver.memory`` unless ``ELT_SPARK_DRIVER_MEMORY`` says otherwise.
    """
    from elt_platform.pii import HASH_KEY_CONF, pii_masking
    from spark_jobs.session import DEFAULT_PACKAGES, session_conf

    conf = session_conf(dict(env))
    conf.pop("spark.jars.packages", None)
    jars = ensure_packages(
        env.get("ELT_SPARK_PACKAGES") or ",".join(DEFAULT_PACKAGES), Path(conf["spark.jars.ivy"])
    )
    if jars:
        # The Thrift server's sessions load the catalog classes through the system class loader:
        # jars added with spark.jars alone are invisible there (ClassNotFoundException: SparkCatalog).
        conf["spark.jars"] = ",".join(str(jar) for jar in jars)
        conf["spark.driver.extraClassPath"] = os.pathsep.join(str(jar) for jar in jars)
    conf.update(
        {
            "spark.master": master,
            "spark.driver.memory": env.get("ELT_SPARK_DRIVER_MEMORY") or driver_memory,
            "spark.ui.enabled": "false",
            "spark.sql.warehouse.dir": str(directory / "spark-warehouse"),
            # One SparkSession for every JDBC/ODBC session: each session of its own would mount its own
            # catalog, i.e. its own JDBC connection pool to the catalog database, never closed — a dbt
            # build opens dozens (Postgres then refuses clients: "too many clients already").
            "spark.sql.hive.thriftServer.singleSession": "true",
            # hive.server2.* are read from the Hadoop configuration of the session.
            "spark.hadoop.hive.server2.thrift.bind.host": host,
            "spark.hadoop.hive.server2.thrift.port": str(port),
        }
    )
    key = pii_masking(env).spark_conf.get(HASH_KEY_CONF)
    if key:
        # dbt's masking macros read ${spark.elt.iin_hash_key} inside this driver, never in compiled SQL.
        conf[HASH_KEY_CONF] = key
    return conf


def properties_text(conf: Mapping[str, str]) -> str:
    """``spark-submit --properties-file`` text of ``conf``."""
    return "".join(f"{name} {value}\n" for name, value in sorted(conf.items()))


def thrift_properties(env: Mapping[str, str], settings: ProdLocalSettings) -> str:
    """The production profile's Thrift server properties: :func:`thrift_conf` on the standalone cluster."""
    conf = thrift_conf(
        env,
        master=f"spark://{settings.spark_master.host}:{settings.spark_master.port}",
        host=settings.thrift.host,
        port=settings.thrift.port,
        directory=settings.directory / "thrift",
        driver_memory="1g",
    )
    conf["spark.cores.max"] = env.get("SPARK_THRIFT_CORES_MAX") or "2"
    conf["spark.executor.memory"] = "1g"
    return properties_text(conf)


def thrift_command(properties: Path) -> list[str]:
    """``spark-submit`` of the Spark Thrift server (HiveServer2) with its properties file."""
    argv = [str(spark_home() / "bin" / "spark-submit"), "--class", THRIFT_SERVER_CLASS]
    return argv + [
        "--name",
        "Thrift JDBC/ODBC Server",
        "--properties-file",
        str(properties),
        "spark-internal",
    ]


def start_thrift_server(
    name: str,
    properties: str,
    *,
    host: str,
    port: int,
    directory: Path,
    env: Mapping[str, str],
    bind: str,
    timeout: float = 300,
) -> Started:
    """Start a Spark Thrift server (:func:`thrift_command`) with ``properties`` (:func:`properties_text`)
    in a mode-0600 file under ``directory``, once its catalog can serve a first client.

    Raises:
        ServiceError: as :func:`start_java_service`.
    """
    from elt_platform.config import PlatformConfig
    from elt_platform.iceberg.catalog import load_catalog

    # pyiceberg creates the JDBC catalog's tables (Spark is told not to, see spark_jobs.session), and a
    # HiveServer2 session opens in the namespace `default`: both must exist before the first client.
    load_catalog(PlatformConfig.from_env(dict(env))).create_namespace_if_not_exists("default")
    conf_file = write_private(directory / "spark-thrift.conf", properties)
    return start_java_service(
        name,
        thrift_command(conf_file),
        host=host,
        port=port,
        directory=directory,
        env=env,
        bind=bind,
        timeout=timeout,
    )


def start_java_service(
    name: str,
    argv: list[str],
    *,
    host: str,
    port: int,
    directory: Path,
    env: Mapping[str, str],
    bind: str,
    timeout: float = 180,
) -> Started:
    """Start one JVM service in its own process group and wait until ``host:port`` accepts connections.

    Its output goes to ``<directory>/<name>.log``; ``SPARK_LOCAL_IP`` makes Spark bind ``bind``.

    Raises:
        ServiceError: it exited, or did not listen within ``timeout`` (then it is stopped).
    """
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / f"{name}.log"
    child_env = {**env, "SPARK_LOCAL_IP": bind, "SPARK_HOME": str(spark_home())}
    child_env["PYSPARK_PYTHON"] = sys.executable
    began = time.monotonic()
    with open(log, "ab") as handle:
        proc = subprocess.Popen(
            argv,
            cwd=directory,
            env=child_env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop() -> None:
        from elt_platform.airflow_local import stop_processes

        stop_processes([proc.pid])
        proc.wait(timeout=30)  # reap it (and let its Popen know: no "still running" warning)

    deadline = began + timeout
    try:
        while not port_open(host, port):
            if proc.poll() is not None:
                tail = log.read_text(errors="replace").splitlines()[-15:]
                raise ServiceError(f"{name} exited ({proc.returncode}); {log}:\n" + "\n".join(tail))
            if time.monotonic() > deadline:
                raise ServiceError(f"{name} not listening on {host}:{port} after {timeout:.0f}s; see {log}")
            time.sleep(0.5)
    except BaseException:  # a timeout, or Ctrl-C while it starts: leave no half-started JVM behind
        if proc.poll() is None:
            stop()
        raise
    return Started(name, proc.pid, time.monotonic() - began, f"{host}:{port}", log, stop)


class ServiceStack:
    """The profile's services; start them with :meth:`start`, stop with :meth:`stop` (reverse order)."""

    def __init__(
        self, settings: ProdLocalSettings, env: Mapping[str, str] | None = None, out: TextIO = sys.stdout
    ):
        self.settings = settings
        self.env = dict(os.environ if env is None else env)
        self.out = out
        self.started: list[Started] = []

    # -- one service each ------------------------------------------------------------------------------

    def _postgres(self) -> Started:
        pg = self.settings.postgres
        server = PostgresServer(
            self.settings.directory / "postgres",
            pg.databases,
            user=pg.user,
            password=pg.password,
            host=self.settings.bind,
            port=pg.port,
            max_connections=200,
        )
        began = time.monotonic()
        server.start()
        assert server.pid is not None
        return Started(
            "postgres", server.pid, time.monotonic() - began, f"{pg.host}:{pg.port}", server.log, server.stop
        )

    def _java_service(
        self, name: str, argv: list[str], host: str, port: int, timeout: float = 180
    ) -> Started:
        return start_java_service(
            name,
            argv,
            host=host,
            port=port,
            directory=self.settings.directory / name,
            env=self.env,
            bind=self.settings.bind,
            timeout=timeout,
        )

    def _object_store(self) -> Started:
        config = S3ProxyConfig(
            self.settings.bind,
            self.settings.s3.port,
            self.env["AWS_ACCESS_KEY_ID"],
            self.env["AWS_SECRET_ACCESS_KEY"],
            self.settings.directory / "s3proxy",
        )
        config.write_properties()
        started = self._java_service(
            "s3proxy", config.command(), self.settings.s3.host, self.settings.s3.port
        )
        try:
            ensure_bucket(
                config.endpoint,
                self.settings.s3_bucket,
                region=self.env.get("AWS_REGION"),
                credentials=(config.access_key, config.secret_key),
            )
        except Exception:
            started.stop()
            raise
        return started

    def _spark(self, name: str) -> Started:
        home = spark_home()
        master = self.settings.spark_master
        url = f"spark://{master.host}:{master.port}"
        if name == "spark-master":
            argv = [str(home / "bin" / "spark-class"), "org.apache.spark.deploy.master.Master"]
            argv += ["--host", master.host, "--port", str(master.port)]
            argv += ["--webui-port", self.env.get("SPARK_MASTER_WEBUI_PORT") or "8090"]
            return self._java_service(name, argv, master.host, master.port)
        if name == "spark-worker":
            work = self.settings.directory / name / "work"
            argv = [str(home / "bin" / "spark-class"), "org.apache.spark.deploy.worker.Worker", url]
            argv += ["--host", self.settings.bind, "--work-dir", str(work)]
            # SPARK_WORKER_CORES / SPARK_WORKER_MEMORY / SPARK_WORKER_WEBUI_PORT: read by the worker itself.
            webui = int(self.env.get("SPARK_WORKER_WEBUI_PORT") or 8091)
            return self._java_service(name, argv, self.settings.bind, webui)
        raise ValueError(f"unknown Spark service {name!r}")

    def _thrift(self) -> Started:
        return start_thrift_server(
            "spark-thrift",
            thrift_properties(self.env, self.settings),
            host=self.settings.thrift.host,
            port=self.settings.thrift.port,
            directory=self.settings.directory / "spark-thrift",
            env=self.env,
            bind=self.settings.bind,
        )

    # -- the stack -------------------------------------------------------------------------------------

    def start(self) -> ServiceStack:
        """Start every service in order; on a failure stop what was started and raise.

        Raises:
            ServiceError: a service did not start (its log's tail is in the message).
        """
        steps: list[tuple[str, Callable[[], Started]]] = [
            ("postgres", self._postgres),
            ("s3proxy", self._object_store),
            ("spark-master", lambda: self._spark("spark-master")),
            ("spark-worker", lambda: self._spark("spark-worker")),
            ("spark-thrift", self._thrift),
        ]
        try:
            for name, step in steps:
                print(f"» starting {name} …", file=self.out, flush=True)
                started = step()
                self.started.append(started)
                print(
                    f"  {name:13} {started.address:22} ready in {started.seconds:5.1f}s  (log {started.log})",
                    file=self.out,
                    flush=True,
                )
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the services in reverse order (each bounded; errors are reported, not raised)."""
        while self.started:
            service = self.started.pop()
            try:
                service.stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                print(f"  ✘ stopping {service.name}: {exc}", file=self.out)

    def report(self) -> list[tuple[str, str, float, float]]:
        """(name, address, start seconds, resident MB now) per running service."""
        return [(s.name, s.address, s.seconds, s.rss_mb()) for s in self.started]

    def __enter__(self) -> ServiceStack:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

"""The embedded profile's SQL server: when it runs, what it mounts, how dbt is pointed at it.

The server itself (a Spark Thrift server in its own JVM serving dbt's fast path, equal row by row to a
full rebuild) is exercised in ``tests/dbt_models/test_clinic_incremental.py``.
"""

from __future__ import annotations

import os
import socket
import stat
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml

from elt_platform.services import sql_server
from elt_platform.services.sql_server import EmbeddedSqlServer, ServiceError

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setattr("elt_platform.services.stack.ensure_packages", lambda packages, ivy: [])
    return {
        "ELT_HOME": str(tmp_path / "home"),
        "ELT_PII_MASKING": "hash",
        "ELT_PII_HASH_KEY": "k3y-for-the-server",
    }


@pytest.mark.parametrize(
    ("settings", "runs"),
    [
        ({}, True),
        ({"ELT_SQL_SERVER": "on"}, True),
        ({"ELT_SQL_SERVER": "OFF"}, False),
        ({"ELT_SQL_SERVER": "0"}, False),
        # dbt already pointed at another Thrift server (the production profile's): none of our own
        ({"DBT_TARGET": "prod", "DBT_SPARK_HOST": "spark-thrift"}, False),
        ({"DBT_TARGET": "embedded", "DBT_SPARK_HOST": "spark-thrift"}, True),
    ],
)
def test_when_the_server_runs(settings: dict[str, str], runs: bool) -> None:
    assert sql_server.wanted(settings) is runs


def test_a_switch_that_is_neither_on_nor_off_is_refused() -> None:
    with pytest.raises(ValueError, match="ELT_SQL_SERVER='maybe': expected on or off"):
        sql_server.wanted({"ELT_SQL_SERVER": "maybe"})


def test_a_port_that_is_not_one_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="ELT_SQL_PORT='10k' is not a TCP port"):
        EmbeddedSqlServer.from_env({**env, "ELT_SQL_PORT": "10k"})


def test_defaults_bind_loopback_under_the_platform_home(env: dict[str, str]) -> None:
    server = EmbeddedSqlServer.from_env(env)
    assert (server.host, server.port) == ("127.0.0.1", 10000)
    assert server.directory == Path(env["ELT_HOME"]) / "services" / "sql-server"
    assert server.jdbc_url == "jdbc:hive2://127.0.0.1:10000/default"
    moved = EmbeddedSqlServer.from_env({**env, "ELT_SQL_HOST": "0.0.0.0", "ELT_SQL_PORT": "10001"})
    assert moved.jdbc_url == "jdbc:hive2://0.0.0.0:10001/default"


def test_the_server_mounts_the_task_drivers_catalog_in_local_mode(env: dict[str, str]) -> None:
    from spark_jobs.session import catalog_conf

    server = EmbeddedSqlServer.from_env(env, port=10042)
    conf = server.conf(env)
    assert conf["spark.master"] == "local[*]"
    assert conf["spark.hadoop.hive.server2.thrift.bind.host"] == "127.0.0.1"
    assert conf["spark.hadoop.hive.server2.thrift.port"] == "10042"
    # one SparkSession for every client: one catalog connection pool, shared session conf
    assert conf["spark.sql.hive.thriftServer.singleSession"] == "true"
    # dbt's masking macros read the key inside the server; it is never in compiled SQL
    assert conf["spark.elt.iin_hash_key"] == "k3y-for-the-server"
    # exactly the catalog a task's own driver mounts (the SQLite catalog of ELT_HOME, cache off)
    for key, value in catalog_conf(env).items():
        assert conf[key] == value, key
    assert conf["spark.sql.catalog.lakehouse.uri"] == f"jdbc:sqlite:{env['ELT_HOME']}/catalog.db"
    assert conf["spark.sql.catalog.lakehouse.cache-enabled"] == "false"
    # clients' jobs share the cores: a long build does not queue the fast path's statements behind it
    assert conf["spark.scheduler.mode"] == "FAIR"
    assert conf["spark.scheduler.allocation.file"] == str(server.directory / "fairscheduler.xml")


def test_dbt_env_selects_the_thrift_target_of_the_profile(env: dict[str, str]) -> None:
    server = EmbeddedSqlServer.from_env(env, port=10042)
    dbt_env = server.dbt_env()
    profile = yaml.safe_load((REPO / "dbt" / "profiles.yml").read_text())["elt_platform"]
    target = profile["outputs"][dbt_env["DBT_TARGET"]]
    assert (target["type"], target["method"]) == ("spark", "thrift")
    assert "DBT_SPARK_HOST" in target["host"] and "DBT_SPARK_PORT" in target["port"]
    assert (dbt_env["DBT_SPARK_HOST"], dbt_env["DBT_SPARK_PORT"]) == ("127.0.0.1", "10042")


def test_serving_with_the_switch_off_starts_nothing(env: dict[str, str], capsys) -> None:
    with sql_server.serving({**env, "ELT_SQL_SERVER": "off"}) as sql:
        assert (sql.env, sql.started, sql.failure()) == ({}, None, None)
    assert "off (dbt runs in each task's Spark session)" in capsys.readouterr().out
    assert not (Path(env["ELT_HOME"]) / "services").exists()


def test_a_taken_port_is_a_one_line_error_before_anything_starts(env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = EmbeddedSqlServer.from_env(env, port=port)
        with pytest.raises(ServiceError) as error:
            server.start(env)
    message = str(error.value)
    assert "\n" not in message
    assert f"127.0.0.1:{port} is already taken: set ELT_SQL_PORT" in message
    assert not server.directory.exists()


def test_the_properties_file_holding_the_hash_key_is_private(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """start() writes the properties (with the hash key) mode 0600 and puts no secret on the command line."""
    seen: dict[str, list[str]] = {}

    def fake_start(name, argv, **kwargs):
        seen["argv"] = argv
        raise ServiceError("stop here")

    monkeypatch.setattr("elt_platform.services.stack.start_java_service", fake_start)
    server = EmbeddedSqlServer.from_env(env, port=1)  # nothing listens on port 1
    with pytest.raises(ServiceError, match="stop here"):
        server.start(env)
    properties = server.directory / "spark-thrift.conf"
    assert stat.S_IMODE(os.stat(properties).st_mode) == 0o600
    assert "spark.elt.iin_hash_key k3y-for-the-server" in properties.read_text().splitlines()
    assert not [arg for arg in seen["argv"] if "k3y" in arg]
    assert seen["argv"][-3:] == ["--properties-file", str(properties), "spark-internal"]
    pools = ElementTree.parse(server.scheduler_pools).getroot()
    modes = [(pool.get("name"), pool.findtext("schedulingMode")) for pool in pools.iter("pool")]
    assert modes == [("default", "FAIR")]


def test_a_server_that_exited_is_reported_with_its_log(tmp_path: Path) -> None:
    """serve() stops everything when the server is gone: every transform would fail on it."""
    import subprocess

    from elt_platform.services.stack import Started

    child = subprocess.Popen(["sleep", "30"])
    log = tmp_path / "sql-server.log"
    started = Started("sql-server", child.pid, 1.0, "127.0.0.1:1", log, child.kill)
    sql = sql_server.Serving({"DBT_TARGET": "prod"}, started)
    assert sql.failure() is None
    child.kill()
    deadline = time.monotonic() + 10
    while sql.failure() is None and time.monotonic() < deadline:  # exited, not yet reaped: a zombie
        time.sleep(0.05)
    assert sql.failure() == f"the SQL server exited; see {log}"
    child.wait()  # reaped: the pid is gone
    assert sql.failure() == f"the SQL server exited; see {log}"


def test_ctrl_c_while_a_service_starts_leaves_no_process_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psutil

    from elt_platform.services import stack

    def interrupted(host: str, port: int, timeout: float = 1.0) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(stack, "port_open", interrupted)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(KeyboardInterrupt):
        stack.start_java_service(
            "sql-server",
            ["sleep", "60"],
            host="127.0.0.1",
            port=1,
            directory=tmp_path,
            env=dict(os.environ),
            bind="127.0.0.1",
        )
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    assert [p for p in left if p.status() != psutil.STATUS_ZOMBIE] == []

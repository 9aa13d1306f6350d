"""Spark driver settings that do not need a running JVM: logging goes to stdout, not stderr."""

from __future__ import annotations

import re
from pathlib import Path

from spark_jobs.session import catalog_conf, session_conf


def _log4j_file(conf: dict[str, str]) -> Path:
    match = re.search(r"-Dlog4j2\.configurationFile=file://(\S+)", conf["spark.driver.extraJavaOptions"])
    assert match, conf["spark.driver.extraJavaOptions"]
    return Path(match.group(1))


def test_driver_console_logging_goes_to_stdout(tmp_path):
    # Airflow's task runner logs a task's stderr at ERROR: JVM warnings there drowned real errors.
    config = _log4j_file(session_conf({"ELT_HOME": str(tmp_path)}))
    properties = dict(
        line.split("=", 1)
        for line in (p.strip() for p in config.read_text().splitlines())
        if line and not line.startswith("#")
    )
    properties = {k.strip(): v.strip() for k, v in properties.items()}
    console = properties["rootLogger.appenderRef.stdout.ref"]
    appender = next(k.split(".")[1] for k, v in properties.items() if k.endswith(".name") and v == console)
    assert properties[f"appender.{appender}.target"] == "SYSTEM_OUT"
    assert properties["rootLogger.level"] == "warn"


def test_derby_home_stays_under_the_platform_home(tmp_path):
    options = session_conf({"ELT_HOME": str(tmp_path)})["spark.driver.extraJavaOptions"]
    assert f"-Dderby.system.home={tmp_path.resolve() / 'derby'}" in options.split()


def test_spark_never_serves_cached_table_metadata(tmp_path):
    # pyiceberg commits bronze moments before Spark reads it (same process embedded, the long-lived
    # Thrift server in production): a cached snapshot hid a just-written tombstone from silver.
    assert catalog_conf({"ELT_HOME": str(tmp_path)})["spark.sql.catalog.lakehouse.cache-enabled"] == "false"

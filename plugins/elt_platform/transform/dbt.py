"""Run dbt in-process on the platform's Spark session.

dbt-spark's ``session`` method builds its SparkSession with ``getOrCreate()``; creating it here
first (``spark_jobs.session.build_session``) means dbt, quality checks and Spark jobs in one task
process share a single session — a Spark start costs seconds, a model costs milliseconds. The
profile reads only environment variables, which :func:`elt_platform.config.dbt_env` derives from
the same settings as Spark and pyiceberg.

Usage from a shell (what ``make dbt-build`` runs)::

    python -m elt_platform.transform.dbt build --select tag:silver --vars '{start_date: ...}'
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from datetime import date

from elt_platform.config import REPO_ROOT, PlatformConfig, dbt_env

log = logging.getLogger(__name__)

DBT_PROJECT_DIR = REPO_ROOT / "dbt"


class DbtRunError(RuntimeError):
    """dbt finished with failed models or tests; the message lists them."""


@dataclass
class DbtRunSummary:
    """What a dbt invocation did, per node status."""

    command: str
    statuses: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def export_profile_env() -> None:
    """Export the variables ``dbt/profiles.yml`` reads (``env_var()``), derived from the platform
    settings like Spark's and pyiceberg's. dbt only reads its profile from the process environment;
    values already set win, and nothing but the profile's variables is touched."""
    for key, value in dbt_env().items():
        if value:
            os.environ.setdefault(key, value)
    os.environ.setdefault("DBT_TARGET", "embedded")


def _apply_spark_conf(spark_conf: dict[str, str]) -> None:
    """Set session-level SQL conf (read by models as ``${key}``) on the shared embedded session."""
    if not spark_conf:
        return
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is None:  # the caller starts the lakehouse session first
        raise RuntimeError("no active SparkSession to set dbt's Spark conf on")
    for key, value in spark_conf.items():
        session.conf.set(key, value)


def interval_vars(start: date | None, end: date | None) -> dict[str, str]:
    """dbt vars for a half-open data interval ``[start, end)``."""
    out = {}
    if start:
        out["start_date"] = start.isoformat()
    if end:
        out["end_date"] = end.isoformat()
    return out


def run_dbt(
    args: list[str], *, dbt_vars: dict | None = None, spark_conf: dict[str, str] | None = None
) -> DbtRunSummary:
    """Invoke dbt (e.g. ``["build", "--select", "tag:silver"]``) and fail loudly on any error.

    Args:
        args: dbt command and its selection flags.
        dbt_vars: values for ``--vars``.
        spark_conf: SQL conf set on the Spark session first; models read it as ``${key}``, so a secret
            (a hash key) never appears in compiled SQL. On the ``thrift`` target the server sets it.

    Returns:
        Node counts by status.

    Raises:
        DbtRunError: a model, test or the invocation itself failed.
    """
    from dbt.cli.main import dbtRunner

    export_profile_env()
    config = PlatformConfig.from_env()
    if os.environ["DBT_TARGET"] == "embedded":
        from elt_platform.iceberg.catalog import lakehouse_spark_session

        lakehouse_spark_session("dbt", config)
        _apply_spark_conf(spark_conf or {})
    target_dir = config.home / "dbt" / "target"
    full = [
        *args,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(target_dir),
        "--log-path",
        str(config.home / "dbt" / "logs"),
    ]
    if dbt_vars:
        full += ["--vars", json.dumps(dbt_vars)]
    log.info("dbt %s", " ".join(full))
    result = dbtRunner().invoke(full)
    summary = DbtRunSummary(command=" ".join(args))
    for node_result in getattr(result.result, "results", None) or []:
        status = str(node_result.status)
        summary.statuses[status] = summary.statuses.get(status, 0) + 1
        if status in {"error", "fail", "runtime error"}:
            summary.failures.append(f"{node_result.node.unique_id}: {node_result.message}")
    log.info("dbt %s finished: %s", args[0], summary.statuses)
    if not result.success:
        detail = "\n".join(summary.failures) or repr(result.exception)
        raise DbtRunError(f"dbt {' '.join(args)} failed:\n{detail}")
    return summary


def main(argv: list[str] | None = None) -> int:
    """Shell entry point: ``python -m elt_platform.transform.dbt <dbt args>``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        run_dbt(args)
    except DbtRunError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

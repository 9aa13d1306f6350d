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
DEV_IIN_HASH_KEY = "embedded-development-key"


class DbtRunError(RuntimeError):
    """dbt finished with failed models or tests; the message lists them."""


@dataclass
class DbtRunSummary:
    """What a dbt invocation did, per node status."""

    command: str
    statuses: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def prepare_environment() -> None:
    """Export the variables ``dbt/profiles.yml`` reads (existing values win)."""
    for key, value in dbt_env().items():
        if value:
            os.environ.setdefault(key, value)
    os.environ.setdefault("DBT_TARGET", "embedded")
    if os.environ["DBT_TARGET"] == "embedded" and not os.environ.get("ELT_IIN_HASH_KEY"):
        # Gold hashes IINs with this key (Spark reads it from the driver's environment). Embedded
        # runs get a fixed development key so they work out of the box; production sets its own.
        log.warning("ELT_IIN_HASH_KEY is not set: gold IINs are hashed with the development key")
        os.environ["ELT_IIN_HASH_KEY"] = DEV_IIN_HASH_KEY


def interval_vars(start: date | None, end: date | None) -> dict[str, str]:
    """dbt vars for a half-open data interval ``[start, end)``."""
    out = {}
    if start:
        out["start_date"] = start.isoformat()
    if end:
        out["end_date"] = end.isoformat()
    return out


def run_dbt(args: list[str], *, dbt_vars: dict | None = None) -> DbtRunSummary:
    """Invoke dbt (e.g. ``["build", "--select", "tag:silver"]``) and fail loudly on any error.

    Args:
        args: dbt command and its selection flags.
        dbt_vars: values for ``--vars``.

    Returns:
        Node counts by status.

    Raises:
        DbtRunError: a model, test or the invocation itself failed.
    """
    from dbt.cli.main import dbtRunner

    prepare_environment()
    config = PlatformConfig.from_env()
    if os.environ["DBT_TARGET"] == "embedded":
        from elt_platform.iceberg.catalog import lakehouse_spark_session

        lakehouse_spark_session("dbt", config)
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

"""Run the real Airflow DAGs in-process (``dag.test()``), as ``make run`` and the end-to-end tests do.

``dag.test()`` is Airflow's own runner: it creates a DAG run in the metadata database and executes
every task in this process, in dependency order, with connections taken from ``AIRFLOW_CONN_*``.
Running in one process also lets every Spark step share one SparkSession.

:func:`quiet_terminal` sends everything the run prints — Airflow's task logs, dbt, the JVM's stderr —
to a log file at the file-descriptor level (the JVM writes there directly), leaving the terminal to
the concise progress lines of ``elt run``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from elt_platform.config import REPO_ROOT

log = logging.getLogger(__name__)

DAGS_FOLDER = REPO_ROOT / "dags"


class DagRunFailed(RuntimeError):
    """A DAG run finished in a state other than success."""


@dataclass(frozen=True)
class TaskReport:
    """One task of a finished run: state, seconds and its return value (XCom), if any."""

    task_id: str
    state: str
    seconds: float
    result: Any = None


@dataclass
class DagRunReport:
    """A finished DAG run."""

    dag_id: str
    run_id: str
    state: str
    seconds: float
    tasks: list[TaskReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.state == "success"


def _dagbag(folder: Path):
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.1 kept it in airflow.models (and took include_examples)
        from airflow.models import dagbag as legacy

        return legacy.DagBag(dag_folder=str(folder), include_examples=False)
    return DagBag(dag_folder=str(folder))


def load_dag(dag_id: str, folder: Path = DAGS_FOLDER):
    """Parse ``dags/`` and return one DAG.

    Raises:
        KeyError: no such DAG, or its file failed to import (the import error is in the message).
    """
    bag = _dagbag(folder)
    if dag_id not in bag.dags:
        raise KeyError(f"DAG {dag_id!r} not found in {folder}; import errors: {bag.import_errors}")
    return bag.dags[dag_id]


def _state(value: object) -> str:
    return str(getattr(value, "value", value) or "none").lower().rpartition(".")[2]


def _return_value(dag_id: str, run_id: str, task_id: str) -> Any:
    try:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            query = XComModel.get_many(run_id=run_id, dag_ids=dag_id, task_ids=task_id, key="return_value")
            row = session.scalars(query).first()
            return XComModel.deserialize_value(row) if row is not None else None
    except Exception:  # noqa: BLE001 - a missing summary must not fail a finished run
        log.debug("no return value for %s.%s", dag_id, task_id, exc_info=True)
        return None


def _report(dag_id: str, run, began: float) -> DagRunReport:
    tasks = []
    for ti in sorted(run.get_task_instances(), key=lambda t: (t.start_date is None, t.start_date or 0)):
        seconds = (ti.end_date - ti.start_date).total_seconds() if ti.start_date and ti.end_date else 0.0
        state = _state(ti.state)
        result = _return_value(dag_id, run.run_id, ti.task_id) if state == "success" else None
        tasks.append(TaskReport(ti.task_id, state, seconds, result))
    return DagRunReport(dag_id, run.run_id, _state(run.state), time.monotonic() - began, tasks)


def ensure_pools() -> list[str]:
    """Create the registry's pools (:meth:`Registry.pools`, one slot each) in this process's metadata DB."""
    from airflow.models.pool import Pool

    from elt_platform.registry import registry

    pools = registry().pools()
    for pool, description in sorted(pools.items()):
        if Pool.get_pool(pool) is None:
            Pool.create_or_update_pool(pool, 1, description, False)
    return sorted(pools)


def run_dag(
    dag_id: str, conf: dict | None = None, *, retries: bool = False, check: bool = True
) -> DagRunReport:
    """Run one DAG to completion with ``dag.test(run_conf=conf)``.

    Task-level retries are switched off unless ``retries`` is set: a local run should fail at once
    with the real error rather than wait out a production retry delay (HTTP retries still happen
    inside the clients).

    Returns:
        What the run did, task by task.

    Raises:
        DagRunFailed: the run did not succeed (when ``check``); the failed tasks are named.
    """
    dag = load_dag(dag_id)
    ensure_pools()
    if not retries:
        for task in dag.tasks:
            task.retries = 0
    log.info("running %s with %s", dag_id, conf or {})
    began = time.monotonic()
    run = dag.test(run_conf=conf or {})
    report = _report(dag_id, run, began)
    if check and not report.ok:
        failed = [t.task_id for t in report.tasks if t.state in ("failed", "upstream_failed")]
        raise DagRunFailed(f"{dag_id} run {report.run_id} finished {report.state}; failed tasks: {failed}")
    return report


@contextmanager
def quiet_terminal(log_path: Path) -> Iterator[TextIO]:
    """Redirect this process's stdout and stderr (file descriptors 1 and 2) to ``log_path``.

    Yields:
        A text stream on the original terminal, for progress lines.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(saved_out), "w", buffering=1, encoding="utf-8")
    with open(log_path, "ab", buffering=0) as target:
        os.dup2(target.fileno(), 1)
        os.dup2(target.fileno(), 2)
        try:
            yield terminal
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)
            terminal.close()

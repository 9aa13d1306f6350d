"""Run the real Airflow DAGs in-process (``dag.test()``), as ``make run`` and the end-to-end tests do.

``dag.test()`` is Airflow's own runner: it creates a DAG run in the metadata database and executes
every task in this process, in dependency order, with connections taken from ``AIRFLOW_CONN_*``.
Running in one process also lets every Spark step share one SparkSession.
"""

from __future__ import annotations

import logging
from pathlib import Path

from elt_platform.config import REPO_ROOT

log = logging.getLogger(__name__)

DAGS_FOLDER = REPO_ROOT / "dags"


class DagRunFailed(RuntimeError):
    """A DAG run finished in a state other than success."""


def _dagbag(folder: Path):
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.1 kept it in airflow.models (and took include_examples)
        from airflow.models.dagbag import DagBag

        return DagBag(dag_folder=str(folder), include_examples=False)
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


def test_dag(dag_id: str, conf: dict | None = None, *, retries: bool = False) -> str:
    """Run one DAG to completion with ``dag.test(run_conf=conf)``.

    Task-level retries are switched off unless ``retries`` is set: a local run should fail at once
    with the real error rather than wait out a production retry delay (HTTP retries still happen
    inside the clients).

    Returns:
        The run id.

    Raises:
        DagRunFailed: the run did not succeed; the failed tasks are named.
    """
    dag = load_dag(dag_id)
    if not retries:
        for task in dag.tasks:
            task.retries = 0
    log.info("running %s with %s", dag_id, conf or {})
    run = dag.test(run_conf=conf or {})
    state = str(getattr(run, "state", "")).lower()
    if not state.endswith("success"):
        failed = [ti.task_id for ti in run.get_task_instances() if str(ti.state).lower().endswith("failed")]
        raise DagRunFailed(f"{dag_id} run {run.run_id} finished {state}; failed tasks: {failed}")
    return run.run_id

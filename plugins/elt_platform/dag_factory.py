"""The only DAG builders: ``build_extract_dag`` (interval sources) and ``build_package_dag`` (1C packages).

Shape of every interval extract DAG, one per entry of ``EXTRACT_PIPELINES``: ``extract_to_bronze``
(fetch, land raw, replace the interval's bronze slice) → ``quality_gate_bronze`` (Great Expectations;
on success emits the bronze assets with the interval in the event's ``extra``). The 1C exchange DAGs,
one per loader mode: ``load_packages`` (the complete packages waiting, oldest first) →
``quality_gate_bronze`` (the loaded package slices; emits ``bronze.onec_packages`` with the package
ids). Task bodies delegate to ``elt_platform``; nothing heavy is imported while the file is parsed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from importlib import import_module

from airflow.sdk import DAG, CronDataIntervalTimetable, Param, dag, get_current_context, task

from elt_platform.assets import BRONZE_ONEC_PACKAGES

DEFAULT_ARGS = {
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
}
INTERVAL_PARAMS = {
    "start_date": Param(
        None, type=["null", "string"], format="date", description="First day to load (manual runs)."
    ),
    "end_date": Param(
        None, type=["null", "string"], format="date", description="Day after the last one (exclusive)."
    ),
}

PACKAGE_PARAMS = {
    "path": Param(None, type=["null", "string"], description="Load this package instead."),
}


def _call(dotted: str, *args, **kwargs):
    module, _, name = dotted.partition(":")
    return getattr(import_module(module), name)(*args, **kwargs)


def run_interval() -> tuple:
    """The current task's ``[start, end)`` days (params, else data interval, else yesterday)."""
    from elt_platform.intervals import resolve_interval

    context = get_current_context()
    return resolve_interval(
        context.get("params"),
        context.get("data_interval_start"),
        context.get("data_interval_end"),
        today=datetime.now().date(),
    )


def build_extract_dag(
    *,
    source: str,
    schedule: str,
    owner: str,
    start_date: datetime,
    doc_md: str | None = None,
    catchup: bool = False,
    tags: tuple[str, ...] = (),
) -> DAG:
    """Build ``extract_<source>``.

    Args:
        source: key of ``EXTRACT_PIPELINES``.
        schedule: cron expression; each run loads its data interval (a cron *data-interval*
            timetable: the run at 02:00 on day D covers day D-1, as backfills expect).
        owner: team or person answering for the DAG.
        start_date: first data interval (history is loaded with ``airflow backfill create``).
        doc_md: DAG docs (the DAG file's docstring).
        catchup: whether the scheduler fills missed intervals itself.
        tags: extra tags besides ``extract`` and the source.

    Returns:
        The DAG (registered by Airflow because the DAG file calls this at module level).
    """
    from elt_platform.pipelines import EXTRACT_PIPELINES

    pipeline = EXTRACT_PIPELINES[source]

    @dag(
        dag_id=f"extract_{source}",
        schedule=CronDataIntervalTimetable(schedule, timezone="UTC"),
        start_date=start_date,
        catchup=catchup,
        max_active_runs=4,
        default_args={**DEFAULT_ARGS, "owner": owner},
        params=INTERVAL_PARAMS,
        tags=["extract", "bronze", source, *tags],
        doc_md=doc_md or pipeline.description,
    )
    def extract_dag():
        @task(task_id="extract_to_bronze")
        def extract_to_bronze() -> dict:
            start, end = run_interval()
            run_id = get_current_context()["run_id"]
            summary = _call(pipeline.extract, start, end, run_id=run_id)
            return {"start": start.isoformat(), "end": end.isoformat(), "run_id": run_id, **summary}

        @task(task_id="quality_gate_bronze", outlets=list(pipeline.outlets))
        def quality_gate_bronze(loaded: dict) -> dict:
            from datetime import date

            from elt_platform.quality.gate import run_gate

            start, end = date.fromisoformat(loaded["start"]), date.fromisoformat(loaded["end"])
            results = {
                suite: run_gate(suite, start, end, run_id=loaded["run_id"]).result_uri
                for suite in pipeline.bronze_suites
            }
            outlet_events = get_current_context()["outlet_events"]
            for asset in pipeline.outlets:
                outlet_events[asset].extra = {
                    "start": loaded["start"],
                    "end": loaded["end"],
                    "run_id": loaded["run_id"],
                    "events": loaded.get("events"),
                }
            return {"quality_results": results, **loaded}

        quality_gate_bronze(extract_to_bronze())

    return extract_dag()


def build_package_dag(
    *,
    dag_id: str,
    mode: str,
    schedule: str,
    owner: str,
    start_date: datetime,
    retry_delay: timedelta,
    doc_md: str | None = None,
    catchup: bool = False,
    tags: tuple[str, ...] = (),
) -> DAG:
    """Build a DAG loading the 1C exchange packages of one loader mode into bronze.

    Args:
        dag_id: the DAG file's stem.
        mode: loader mode (``catalog`` or ``stocks``), see
            :func:`elt_platform.sources.commerceml.extract.load_pending`.
        schedule: cron expression; each run loads whatever complete packages are waiting.
        owner: team or person answering for the DAG.
        start_date: first scheduled run.
        retry_delay: pause before a failed task's retry.
        doc_md: DAG docs (the DAG file's docstring).
        catchup: whether the scheduler fills missed runs itself.
        tags: extra tags besides ``extract``, ``bronze`` and ``onec``.

    Returns:
        The DAG (registered by Airflow because the DAG file calls this at module level).
    """

    @dag(
        dag_id=dag_id,
        schedule=schedule,
        start_date=start_date,
        catchup=catchup,
        max_active_runs=1,  # deltas must apply in order
        default_args={"owner": owner, "retries": 2, "retry_delay": retry_delay},
        params=PACKAGE_PARAMS,
        tags=["extract", "bronze", "onec", *tags],
        doc_md=doc_md,
    )
    def package_dag():
        @task
        def load_packages() -> dict:
            from elt_platform.sources.commerceml.extract import load_pending

            context = get_current_context()
            return load_pending(mode, run_id=context["run_id"], path=context["params"].get("path"))

        @task(outlets=[BRONZE_ONEC_PACKAGES])
        def quality_gate_bronze(loaded: dict) -> dict:
            from airflow.sdk.exceptions import AirflowSkipException

            from elt_platform.sources.commerceml.extract import gate_packages

            if not loaded["package_ids"]:
                raise AirflowSkipException(f"no complete {mode} package waiting")
            context = get_current_context()
            results = gate_packages(loaded, run_id=context["run_id"])
            context["outlet_events"][BRONZE_ONEC_PACKAGES].extra = {
                "kind": loaded["kind"],
                "package_ids": loaded["package_ids"],
            }
            return results

        quality_gate_bronze(load_packages())

    return package_dag()

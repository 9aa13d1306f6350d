"""The only DAG builder: ``build_extract_dag`` turns an entry of ``EXTRACT_PIPELINES`` into a DAG.

Shape of every extract DAG: ``extract_to_bronze`` (fetch, land raw, replace the interval's bronze
slice) → ``quality_gate_bronze`` (Great Expectations; on success emits the bronze assets with the
interval in the event's ``extra``). Task bodies delegate to ``elt_platform``; nothing heavy is
imported while the file is parsed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from importlib import import_module

from airflow.sdk import DAG, CronDataIntervalTimetable, Param, dag, get_current_context, task

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

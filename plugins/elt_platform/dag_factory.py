"""The only DAG builders, driven by the registry (:mod:`elt_platform.registry`).

* ``build_extract_dag(source, extract)`` — interval kind: ``extract_to_bronze`` (load ``[start, end)``,
  record it in the transform ledger) → ``quality_gate_bronze`` (Great Expectations; marks the interval
  pending and emits the source's trigger asset). Package kind: ``load_packages`` → ``quality_gate_bronze``.
* ``build_reverse_etl_dag(destination)`` — ``plan`` (match rows in the CRM, store the plan) → ``route``
  → ``approve`` (Airflow's human-in-the-loop ``ApprovalOperator``, only when the plan crosses the
  destination's thresholds) → ``execute`` → ``report`` → ``alert`` (error rate over 10 % in the last
  hour fails it on every run and notifies once per breach); a ``dry_run`` param stops after the plan.
* ``build_transform_dag(domain)`` — ``claim_pending`` (the ledger's pending slices) → ``dbt_build_silver``
  → ``quality_gate_silver`` → ``dbt_build_gold`` → ``mark_done``; scheduled on its sources' trigger
  assets *or* a sweep cron, so work whose event was coalesced or missed is still built.

Task bodies are a few lines delegating to :mod:`elt_platform.runs`; nothing heavy is imported while a
DAG file is parsed. Input that can never succeed (an inverted interval, a malformed date) fails the
task at once, without retries.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from airflow.sdk import (
    DAG,
    AssetAny,
    AssetOrTimeSchedule,
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    DeltaTriggerTimetable,
    Param,
    dag,
    get_current_context,
    task,
)

from elt_platform.assets import gold_assets, silver_assets, table_asset, trigger_asset
from elt_platform.registry import Destination, Domain, Extract, Source, registry


def _date_params(start_doc: str, end_doc: str) -> dict[str, Param]:
    """Optional ``start_date``/``end_date`` params (ISO dates) of a manual run."""
    return {
        "start_date": Param(None, type=["null", "string"], format="date", description=start_doc),
        "end_date": Param(None, type=["null", "string"], format="date", description=end_doc),
    }


INTERVAL_PARAMS = _date_params("First day to load (manual runs).", "Day after the last one (exclusive).")
PACKAGE_PARAMS = {
    "path": Param(None, type=["null", "string"], description="Load this package instead."),
}
TRANSFORM_PARAMS = _date_params("Also rebuild from this day (manual).", "…to this day, exclusive.")


def _requested_interval(context) -> tuple[date, date]:
    """The task's ``[start, end)`` (params, else data interval, else yesterday in UTC).

    Raises:
        AirflowFailException: the params are malformed or inverted — retrying cannot help.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from elt_platform.intervals import IntervalError, resolve_interval

    try:
        return resolve_interval(
            context.get("params"),
            context.get("data_interval_start"),
            context.get("data_interval_end"),
            today=datetime.now(UTC).date(),
        )
    except (IntervalError, ValueError) as exc:
        raise AirflowFailException(f"bad interval: {exc}") from None


def _manual_interval(context) -> tuple[date, date] | None:
    params = context.get("params") or {}
    if not (params.get("start_date") or params.get("end_date")):
        return None
    return _requested_interval(context)


def extract_timetable(schedule: str | timedelta) -> CronDataIntervalTimetable | DeltaTriggerTimetable:
    """The timetable of an interval extract's DAG: a UTC cron data-interval, or a micro-batch's period."""
    if isinstance(schedule, timedelta):
        return DeltaTriggerTimetable(schedule)
    return CronDataIntervalTimetable(schedule, timezone="UTC")


def build_extract_dag(source: Source, extract: Extract) -> DAG:
    """Build one extract DAG of ``source`` (interval or package kind)."""
    interval = extract.kind == "interval"
    trigger = trigger_asset(source)
    default_args = {
        "owner": source.owner,
        "retries": 2,
        "retry_delay": extract.retry_delay,
        "retry_exponential_backoff": interval,
    }
    if source.pool:
        default_args["pool"] = source.pool

    @dag(
        dag_id=extract.dag_id,
        # Interval kind: a cron *data-interval* timetable — the run at 02:00 on day D covers day D-1,
        # as backfills expect; a micro-batch polled every N seconds: a trigger timetable (a point in
        # time: its run loads the day before, see intervals.resolve_interval). Package kind: each run
        # loads whatever is waiting.
        schedule=extract_timetable(extract.schedule) if interval else extract.schedule,
        start_date=source.start_date,
        catchup=False,
        max_active_runs=extract.max_active_runs,
        default_args=default_args,
        params=INTERVAL_PARAMS if interval else PACKAGE_PARAMS,
        tags=["extract", "bronze", source.name, *extract.tags],
        doc_md=extract.doc,
    )
    def extract_dag():
        if interval:

            @task(task_id="extract_to_bronze")
            def extract_to_bronze() -> dict:
                from elt_platform.runs.extract import load_interval

                context = get_current_context()
                start, end = _requested_interval(context)
                return load_interval(source.name, extract.dag_id, start, end, run_id=context["run_id"])

            @task(task_id="quality_gate_bronze", outlets=[trigger])
            def quality_gate_bronze(loaded: dict) -> dict:
                from airflow.sdk.exceptions import AirflowSkipException

                from elt_platform.runs.extract import NOTHING_NEW, gate_interval

                if loaded.get(NOTHING_NEW):  # a micro-batch that found no change: nothing to hand on
                    raise AirflowSkipException("nothing changed at the source since the last run")
                context = get_current_context()
                results = gate_interval(source.name, loaded, run_id=loaded["run_id"], dag_id=extract.dag_id)
                context["outlet_events"][trigger].extra = {
                    "start": loaded["start"],
                    "end": loaded["end"],
                    "run_id": loaded["run_id"],
                }
                return {"quality_results": results, **loaded}

            # TaskFlow: an upstream call's XComArg stands for its return value; Airflow types the value.
            quality_gate_bronze(extract_to_bronze())  # type: ignore[arg-type]
        else:

            @task(task_id="load_packages")
            def load_packages() -> dict:
                from elt_platform.runs.extract import load_packages as load

                context = get_current_context()
                path = (context.get("params") or {}).get("path")
                return load(source.name, extract.dag_id, run_id=context["run_id"], path=path)

            @task(task_id="quality_gate_bronze", outlets=[trigger])
            def quality_gate_packages(loaded: dict) -> dict:
                from airflow.sdk.exceptions import AirflowSkipException

                from elt_platform.runs.extract import gate_packages

                if not loaded["package_ids"]:
                    raise AirflowSkipException("no complete package waiting")
                context = get_current_context()
                results = gate_packages(source.name, extract.dag_id, loaded, run_id=context["run_id"])
                context["outlet_events"][trigger].extra = {
                    "kind": loaded.get("kind"),
                    "package_ids": loaded["package_ids"],
                }
                return results

            quality_gate_packages(load_packages())  # type: ignore[arg-type]  # XComArg, as above

    return extract_dag()


def build_transform_dag(domain: Domain) -> DAG:
    """Build ``transform_<domain>`` from its declaration."""
    sources = [registry().sources[name] for name in domain.sources]
    wake_up = AssetAny(*(trigger_asset(s) for s in sources))

    @dag(
        dag_id=domain.dag_id,
        schedule=AssetOrTimeSchedule(
            timetable=CronTriggerTimetable(domain.sweep, timezone="UTC"), assets=wake_up
        ),
        start_date=domain.start_date,
        catchup=False,
        max_active_runs=1,
        default_args={"owner": domain.owner, "retries": 1, "retry_delay": timedelta(minutes=2)},
        params=TRANSFORM_PARAMS,
        tags=["transform", "dbt", "silver", "gold", domain.name, *domain.sources],
        doc_md=domain.doc,
    )
    def transform_dag():
        @task(task_id="claim_pending")
        def claim_pending() -> dict:
            from airflow.sdk.exceptions import AirflowSkipException

            from elt_platform.runs.transform import claim, has_work

            context = get_current_context()
            work = claim(domain.name, run_id=context["run_id"], requested=_manual_interval(context))
            if not has_work(work):
                raise AirflowSkipException("nothing pending in the transform ledger")
            return work

        @task(task_id="dbt_build_silver", outlets=silver_assets(domain))
        def dbt_build_silver(work: dict) -> dict:
            from elt_platform.runs.transform import build

            return build(domain.name, "silver", work)

        @task(task_id="quality_gate_silver")
        def quality_gate_silver(work: dict, _silver: dict) -> list[str]:
            from elt_platform.runs.transform import gate

            return gate(domain.name, work, run_id=get_current_context()["run_id"])

        @task(task_id="dbt_build_gold", outlets=gold_assets(domain))
        def dbt_build_gold(work: dict, _gate: list[str]) -> dict:
            from elt_platform.runs.transform import build

            return build(domain.name, "gold", work)

        @task(task_id="mark_done")
        def mark_done(work: dict, _gold: dict) -> int:
            from elt_platform.runs.transform import complete

            # The fast path runs every few minutes: the ops export (seconds) would hold up the next
            # run; the full builds and every reverse-ETL report refresh the ops tables.
            export = not work.get("incremental")
            return complete(domain.name, run_id=get_current_context()["run_id"], export=export)

        # TaskFlow: an upstream call's XComArg stands for its return value; Airflow types the value.
        work = claim_pending()
        silver = dbt_build_silver(work)  # type: ignore[arg-type]
        mark_done(work, dbt_build_gold(work, quality_gate_silver(work, silver)))  # type: ignore[arg-type]

    return transform_dag()


REVERSE_ETL_PARAMS = {
    "dry_run": Param(False, type="boolean", description="Plan only: nothing is sent to the CRM."),
}


def build_reverse_etl_dag(destination: Destination) -> DAG:
    """Build ``reverse_etl_<destination>`` from its declaration."""
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    from elt_platform.alerts import platform_notifiers

    outbound = table_asset(destination.outbound_table)

    @dag(
        dag_id=destination.dag_id,
        # When the outbound table changes, and on a short cron for rows due for retry.
        schedule=AssetOrTimeSchedule(
            timetable=CronTriggerTimetable(destination.schedule, timezone="UTC"), assets=outbound
        ),
        start_date=destination.start_date,
        catchup=False,
        max_active_runs=1,
        default_args={"owner": destination.owner, "retries": 2, "retry_delay": timedelta(seconds=30)},
        params=REVERSE_ETL_PARAMS,
        tags=["reverse_etl", destination.name, destination.domain],
        doc_md=destination.doc,
    )
    def reverse_etl_dag():
        @task(task_id="plan")
        def plan() -> dict:
            from elt_platform.reverse_etl.runs import plan_run

            context = get_current_context()
            dry_run = bool((context.get("params") or {}).get("dry_run"))
            return plan_run(destination.name, context["run_id"], dry_run=dry_run)

        @task.branch(task_id="route")
        def route(summary: dict) -> list[str]:
            if summary["dry_run"]:
                return ["report"]
            if summary["needs_approval"]:
                return ["approve", "execute", "report"]
            return ["execute", "report"]

        approve = ApprovalOperator(
            task_id="approve",
            subject=f"{destination.title}: approve the reverse-ETL plan",
            body="{{ ti.xcom_pull(task_ids='plan')['text'] }}",
        )

        @task(task_id="execute", trigger_rule="none_failed_min_one_success")
        def execute() -> dict:
            from elt_platform.reverse_etl.runs import execute_run

            return execute_run(destination.name, get_current_context()["run_id"])

        @task(task_id="report", trigger_rule="all_done")
        def report(summary: dict) -> dict:
            from elt_platform.reverse_etl.runs import report_run

            context = get_current_context()
            counts = context["ti"].xcom_pull(task_ids="execute")
            return report_run(destination.name, context["run_id"], counts, dry_run=summary["dry_run"])

        @task(
            task_id="alert",
            trigger_rule="all_done",
            # The check alerts a breach once, when it opens; these notifiers cover the check itself
            # failing (they skip the breach's own failure). One quick retry, not two slow ones.
            retries=1,
            retry_delay=timedelta(seconds=10),
            on_failure_callback=platform_notifiers(),
        )
        def alert(_report: dict) -> dict:
            from elt_platform.alerts import send_alert
            from elt_platform.reverse_etl.runs import check_error_rate

            context = get_current_context()
            return check_error_rate(destination.name, lambda text: send_alert(text, context))

        # TaskFlow: an upstream call's XComArg stands for its return value; Airflow types the value.
        summary = plan()
        run = execute()
        done = report(summary)  # type: ignore[arg-type]
        route(summary) >> [approve, run, done]  # type: ignore[arg-type]
        approve >> run >> done
        alert(done)  # type: ignore[arg-type]

    return reverse_etl_dag()


def build_reverse_etl_dags() -> list[DAG]:
    """Every reverse-ETL DAG of the registry."""
    return [build_reverse_etl_dag(d) for d in registry().destinations.values()]


def build_extract_dags() -> list[DAG]:
    """Every extract DAG of the registry."""
    return [build_extract_dag(source, extract) for source, extract in registry().extracts()]


def build_transform_dags() -> list[DAG]:
    """Every transform DAG of the registry."""
    return [build_transform_dag(domain) for domain in registry().domains.values()]


__all__ = [
    "build_extract_dag",
    "build_extract_dags",
    "build_reverse_etl_dag",
    "build_reverse_etl_dags",
    "build_transform_dag",
    "build_transform_dags",
    "table_asset",
]

"""Build Alaqan silver and gold with dbt, gated by Great Expectations.

Triggered by the ``bronze.alaqan_visits`` asset; it rebuilds the triggering events' intervals,
merged where they touch (or the ``start_date``/``end_date`` params of a manual run).
``dbt build`` silver (models + unit and data tests) → GX gate on silver → ``dbt build`` gold.
"""

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task

from elt_platform.assets import (
    BRONZE_ALAQAN_VISITS,
    GOLD_ALAQAN_DAILY_ATTENDANCE,
    GOLD_ALAQAN_MONTHLY_SUMMARY,
    SILVER_ALAQAN_VISITS,
)


@dag(
    dag_id="transform_alaqan",
    schedule=[BRONZE_ALAQAN_VISITS],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "data-platform", "retries": 1, "retry_delay": timedelta(minutes=2)},
    params={
        "start_date": Param(None, type=["null", "string"], format="date"),
        "end_date": Param(None, type=["null", "string"], format="date"),
    },
    tags=["transform", "dbt", "silver", "gold", "alaqan"],
    doc_md=__doc__,
)
def transform_alaqan():
    @task
    def resolve_interval() -> dict:
        from elt_platform.transform.runs import interval_for_transform

        return interval_for_transform(get_current_context())

    @task(outlets=[SILVER_ALAQAN_VISITS])
    def dbt_build_silver(interval: dict) -> dict:
        from elt_platform.transform.runs import build

        return build("alaqan", "silver", interval)

    @task
    def quality_gate_silver(interval: dict, _silver: dict) -> list[str]:
        from elt_platform.transform.runs import gate

        return gate("silver_alaqan_visits", interval, get_current_context()["run_id"])

    @task(outlets=[GOLD_ALAQAN_DAILY_ATTENDANCE, GOLD_ALAQAN_MONTHLY_SUMMARY])
    def dbt_build_gold(interval: dict, _gate: list[str]) -> dict:
        from elt_platform.transform.runs import build

        return build("alaqan", "gold", interval)

    interval = resolve_interval()
    silver = dbt_build_silver(interval)
    dbt_build_gold(interval, quality_gate_silver(interval, silver))


transform_alaqan()

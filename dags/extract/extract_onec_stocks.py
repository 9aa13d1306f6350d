"""Fast path: load 1C prices/rests packages into ``bronze.onec_prices`` and ``bronze.onec_stocks`` only.

Every 15 minutes the run loads the complete packages of the exchange area whose XML files are all
``prices*``/``rests*`` files (spec §6.3: stock updates far more often than the catalog). Same loader
as ``extract_onec`` in ``stocks`` mode: the package is atomic, recorded in ``bronze.onec_packages``,
and may touch no other table (a package with other files is refused). The gate emits
``bronze.onec_packages``, which triggers ``transform_onec``.

Manual run: ``{"path": "/abs/path/to/rests_package"}``, or ``python -m elt_platform.cli load-1c PATH
--mode stocks``.
"""

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task

from elt_platform.assets import BRONZE_ONEC_PACKAGES


@dag(
    dag_id="extract_onec_stocks",
    schedule="*/15 * * * *",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,  # deltas must apply in order
    default_args={"owner": "data-platform", "retries": 2, "retry_delay": timedelta(minutes=1)},
    params={"path": Param(None, type=["null", "string"], description="Load this package instead.")},
    tags=["extract", "bronze", "onec", "stocks"],
    doc_md=__doc__,
)
def extract_onec_stocks():
    @task
    def load_packages() -> dict:
        from elt_platform.sources.commerceml.extract import load_pending

        context = get_current_context()
        return load_pending("stocks", run_id=context["run_id"], path=context["params"].get("path"))

    @task(outlets=[BRONZE_ONEC_PACKAGES])
    def quality_gate_bronze(loaded: dict) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from elt_platform.sources.commerceml.extract import gate_packages

        if not loaded["package_ids"]:
            raise AirflowSkipException("no complete stocks package waiting")
        context = get_current_context()
        results = gate_packages(loaded, run_id=context["run_id"])
        context["outlet_events"][BRONZE_ONEC_PACKAGES].extra = {
            "kind": loaded["kind"],
            "package_ids": loaded["package_ids"],
        }
        return results

    quality_gate_bronze(load_packages())


extract_onec_stocks()

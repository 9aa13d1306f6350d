"""Extract 1C exchange packages (catalog, offers, prices, rests, counterparties, documents) into bronze.

Every 30 minutes the run looks for **complete** packages in the exchange area (``incoming/`` of
``ELT_ONEC_EXCHANGE_URI``: a local folder, default ``$ELT_HOME/exchange/onec``, or ``s3://bucket/prefix``
read with the ``onec_exchange`` connection; a folder or zip per exchange session; complete = a
``.complete`` marker, or no file changed for ``ELT_ONEC_SETTLE_SECONDS``, default 120 s) that are not
prices/rests-only (those belong to ``extract_onec_stocks``), and loads them one by one, oldest first.
Each package is atomic: parsed and staged completely, then committed table by table to
``bronze.onec_<entity>`` (its own ``package_id`` partition); a failure rolls every table back and
records the package as ``failed`` in ``bronze.onec_packages``. Loaded packages move to ``archive/``;
one that failed 3 times moves to ``failed/``. The quality gate then checks the loaded slices and emits
``bronze.onec_packages``, which triggers ``transform_onec``.

Manual run: trigger with ``{"path": "/abs/path/to/package_or.zip"}`` to load that package (same code
as ``python -m elt_platform.cli load-1c PATH``). Replays replace the package's slices: nothing is
duplicated.
"""

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task

from elt_platform.assets import BRONZE_ONEC_PACKAGES


@dag(
    dag_id="extract_onec",
    schedule="*/30 * * * *",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,  # deltas must apply in order
    default_args={"owner": "data-platform", "retries": 2, "retry_delay": timedelta(minutes=2)},
    params={"path": Param(None, type=["null", "string"], description="Load this package instead.")},
    tags=["extract", "bronze", "onec"],
    doc_md=__doc__,
)
def extract_onec():
    @task
    def load_packages() -> dict:
        from elt_platform.sources.commerceml.extract import load_pending

        context = get_current_context()
        return load_pending("catalog", run_id=context["run_id"], path=context["params"].get("path"))

    @task(outlets=[BRONZE_ONEC_PACKAGES])
    def quality_gate_bronze(loaded: dict) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from elt_platform.sources.commerceml.extract import gate_packages

        if not loaded["package_ids"]:
            raise AirflowSkipException("no complete catalog package waiting")
        context = get_current_context()
        results = gate_packages(loaded, run_id=context["run_id"])
        context["outlet_events"][BRONZE_ONEC_PACKAGES].extra = {
            "kind": loaded["kind"],
            "package_ids": loaded["package_ids"],
        }
        return results

    quality_gate_bronze(load_packages())


extract_onec()

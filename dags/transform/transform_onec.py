"""Build 1C silver and gold with dbt whenever a 1C package reached bronze.

Triggered by the ``bronze.onec_packages`` asset (emitted by ``extract_onec`` and
``extract_onec_stocks`` after their quality gates). Silver and gold are the *state* of the catalog
derived from every loaded package (latest package per key, full packages deactivate what they leave
out), so each run rebuilds them from bronze whatever package triggered it: ``dbt build`` silver
(packages, current goods/offers/prices/stock, products, categories, customers, with unit and data
tests) → ``dbt build`` gold (catalog, stock by warehouse with daily history, price history).
"""

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from elt_platform.assets import (
    BRONZE_ONEC_PACKAGES,
    GOLD_ONEC_CATALOG,
    GOLD_ONEC_PRICE_HISTORY,
    GOLD_ONEC_STOCK_BY_WAREHOUSE,
    SILVER_ONEC_CATEGORIES,
    SILVER_ONEC_CUSTOMERS,
    SILVER_ONEC_PRODUCTS,
)


@dag(
    dag_id="transform_onec",
    schedule=[BRONZE_ONEC_PACKAGES],
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "data-platform", "retries": 1, "retry_delay": timedelta(minutes=2)},
    tags=["transform", "dbt", "silver", "gold", "onec"],
    doc_md=__doc__,
)
def transform_onec():
    @task(outlets=[SILVER_ONEC_PRODUCTS, SILVER_ONEC_CATEGORIES, SILVER_ONEC_CUSTOMERS])
    def dbt_build_silver() -> dict:
        from elt_platform.transform.layers import build_layer

        return build_layer("onec", "silver", None, None).statuses

    @task(outlets=[GOLD_ONEC_CATALOG, GOLD_ONEC_STOCK_BY_WAREHOUSE, GOLD_ONEC_PRICE_HISTORY])
    def dbt_build_gold(_silver: dict) -> dict:
        from elt_platform.transform.layers import build_layer

        return build_layer("onec", "gold", None, None).statuses

    dbt_build_gold(dbt_build_silver())


transform_onec()

"""The only place Airflow Assets are defined: one per lakehouse table that schedules something.

Extract DAGs emit bronze assets after their quality gate; each event's ``extra`` carries the data
interval (``start``/``end``, ISO dates) it covered, because an asset-triggered run has no interval of
its own. Transform DAGs schedule on bronze assets and emit silver/gold ones.
"""

from airflow.sdk import Asset


def _table(identifier: str) -> Asset:
    namespace, table = identifier.split(".", 1)
    return Asset(name=identifier, uri=f"iceberg://lakehouse/{namespace}/{table}", group="lakehouse")


BRONZE_ALAQAN_VISITS = _table("bronze.alaqan_visits")
SILVER_ALAQAN_VISITS = _table("silver.alaqan_visits")
GOLD_ALAQAN_DAILY_ATTENDANCE = _table("gold.alaqan_daily_attendance")
GOLD_ALAQAN_MONTHLY_SUMMARY = _table("gold.alaqan_monthly_summary")

# 1C (CommerceML): every package load of extract_onec / extract_onec_stocks emits the journal table,
# whose event extra lists the package ids; transform_onec rebuilds silver/gold state from bronze.
BRONZE_ONEC_PACKAGES = _table("bronze.onec_packages")
SILVER_ONEC_PRODUCTS = _table("silver.onec_products")
SILVER_ONEC_CATEGORIES = _table("silver.onec_categories")
SILVER_ONEC_CUSTOMERS = _table("silver.onec_customers")
GOLD_ONEC_CATALOG = _table("gold.onec_catalog")
GOLD_ONEC_STOCK_BY_WAREHOUSE = _table("gold.onec_stock_by_warehouse")
GOLD_ONEC_PRICE_HISTORY = _table("gold.onec_price_history")

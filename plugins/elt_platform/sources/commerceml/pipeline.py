"""Registry entry of 1C (CommerceML exchange packages) and the catalog domain it feeds."""

from datetime import datetime, timedelta

from elt_platform.registry import Domain, Extract, Source

OWNER = "data-platform"
ENTITIES = (
    "packages",
    "groups",
    "properties",
    "property_options",
    "products",
    "property_values",
    "offers",
    "price_types",
    "prices",
    "warehouses",
    "stocks",
    "units",
    "contragents",
    "documents",
    "document_items",
)

_COMMON = (
    "Each package is atomic: parsed and staged completely, then committed table by table to "
    "`bronze.onec_<entity>` (its own `package_id` partition); a failure rolls every table back and "
    "records the package as `failed` in `bronze.onec_packages`. Loaded packages move to `archive/`; one "
    "that failed 3 times moves to `failed/`. The gate checks the loaded slices, records the packages in "
    "the transform ledger and emits `bronze.onec_packages`, which wakes `transform_catalog`. Replays "
    "replace the package's slices: nothing is duplicated."
)

SOURCE = Source(
    name="onec",
    title="1C CommerceML exchange",
    owner=OWNER,
    start_date=datetime(2025, 1, 1),
    connection="onec_exchange",
    endpoint_env="ELT_ONEC_EXCHANGE_URI",
    sandbox="elt_platform.sandbox.launch:onec",
    timezone="Asia/Almaty",
    extracts=(
        Extract(
            dag_id="extract_onec",
            kind="package",
            call="elt_platform.sources.commerceml.extract:load_pending",
            options=(("kind", "catalog"),),
            gate="elt_platform.sources.commerceml.extract:gate_packages",
            schedule="*/30 * * * *",
            max_active_runs=1,
            retry_delay=timedelta(minutes=2),
            doc=(
                "Extract 1C exchange packages (catalog, offers, prices, rests, counterparties, "
                "documents) into bronze.\n\nEvery 30 minutes the run loads the **complete** packages of "
                "the exchange area (`ELT_ONEC_EXCHANGE_URI`: local folder, `s3://…` with the "
                "`onec_exchange` connection or `sftp://…` with `onec_exchange_sftp`) that are not "
                "prices/rests-only, oldest first. " + _COMMON + "\n\nManual run: trigger with "
                '`{"path": "/abs/path/to/package_or.zip"}` (same code as `elt load-1c PATH`).'
            ),
        ),
        Extract(
            dag_id="extract_onec_stocks",
            kind="package",
            call="elt_platform.sources.commerceml.extract:load_pending",
            options=(("kind", "stocks"),),
            gate="elt_platform.sources.commerceml.extract:gate_packages",
            schedule="*/15 * * * *",
            max_active_runs=1,
            retry_delay=timedelta(minutes=1),
            tags=("stocks",),
            doc=(
                "Fast path: load 1C prices/rests packages into `bronze.onec_prices` and "
                "`bronze.onec_stocks` only, every 15 minutes (stock changes far more often than the "
                "catalog). A package with other files is refused. " + _COMMON
            ),
        ),
    ),
    bronze_tables=tuple(f"bronze.onec_{entity}" for entity in ENTITIES),
    trigger_table="bronze.onec_packages",
    domains=("catalog",),
)

DOMAINS = (
    Domain(
        name="catalog",
        sources=("onec",),
        rebuild="state",
        silver_tables=(
            "silver.onec_packages",
            "silver.onec_products",
            "silver.onec_categories",
            "silver.onec_customers",
        ),
        gold_tables=("gold.onec_catalog", "gold.onec_stock_by_warehouse", "gold.onec_price_history"),
        owner=OWNER,
        start_date=datetime(2025, 1, 1),
        doc=(
            "Build the catalog's silver and gold (1C) with dbt whenever packages reached bronze.\n\n"
            "Silver and gold are the *state* of the catalog derived from every loaded package (latest "
            "package per key, full packages deactivate what they leave out), so each run rebuilds them "
            "from bronze once for all pending packages of the transform ledger: `dbt build` silver → "
            "`dbt build` gold → the packages are marked done."
        ),
    ),
)

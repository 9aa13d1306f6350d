"""Registry entry of iDent (clinic MS SQL Server databases) and the clinic domain it feeds."""

from datetime import datetime, timedelta

from elt_platform.registry import Domain, Extract, IncrementalPath, Source

OWNER = "data-platform"
#: Tables of schemas/sources/ident.yaml, snake_cased (a test checks; declarations import nothing).
TABLES = (
    "receptions", "patients", "persons", "staffs", "items", "profession_names", "own_companies", "armchairs",
    "reception_cancel_reasons", "treatment_plans", "treatment_plan_element_relations",
    "treatment_plan_stages", "treatment_plan_elements", "orders", "order_service_relation", "service_items",
    "service_item_prices", "payments_in",
)  # fmt: skip

SOURCE = Source(
    name="ident",
    title="iDent clinic databases",
    owner=OWNER,
    start_date=datetime(2024, 1, 1),
    connection="ident_1",
    endpoint_env="AIRFLOW_CONN_IDENT_1",
    sandbox="elt_platform.sandbox.launch:ident",
    timezone="Asia/Almaty",
    # One slot: the daily run and the micro-batch both advance the Receptions watermark.
    pool="ident",
    extracts=(
        Extract(
            dag_id="extract_ident",
            kind="interval",
            call="elt_platform.sources.ident.extract:extract_interval",
            schedule="0 3 * * *",
            retry_delay=timedelta(minutes=5),
            doc=(
                "Extract every iDent database of `schemas/sources/ident.yaml` into `bronze.ident_*`.\n\n"
                "Daily at 03:00 UTC: Receptions changed since the `RowVersion` watermark, audit-column "
                "tables (`DateTimeChanged`/`DateTimeAdded`) in the interval's local window plus the overlap, "
                "reference tables as a full snapshot, then a key-set reconciliation writing tombstones "
                "(`is_deleted`) for rows deleted at the source. All tables and databases commit together; "
                "watermarks advance only after the commit. Reruns replace the run's `_batch_id` slice."
            ),
        ),
        Extract(
            dag_id="extract_ident_receptions",
            kind="interval",
            call="elt_platform.sources.ident.extract:extract_receptions",
            # Every 30 s (a change reaches the CRMs within 2 minutes, spec): one indexed query per
            # database on RowVersion, and a run that found no change wakes nothing downstream.
            schedule=timedelta(seconds=30),
            max_active_runs=1,
            changes_only=True,
            # Its own table's suite only (all 18 over a day's load take ~45 s at 1M rows).
            suites=("bronze_ident_receptions",),
            retry_delay=timedelta(seconds=30),
            doc=(
                "Micro-batch of `bronze.ident_receptions`: every 30 seconds, receptions whose `RowVersion` "
                "is above the watermark, in every database; the slice is the run (`receptions/<run id>`)."
            ),
        ),
    ),
    bronze_tables=tuple(f"bronze.ident_{table}" for table in TABLES),
    # schemas/quality/bronze_ident_<table>.yaml: keys unique per load, branch, phone, PlanStart window.
    bronze_suites=tuple(f"bronze_ident_{table}" for table in TABLES),
    trigger_table="bronze.ident_receptions",
    domains=("clinic",),
)

DOMAINS = (
    Domain(
        name="clinic",
        sources=("ident",),
        rebuild="state",
        silver_tables=(
            "silver.ident_receptions",
            "silver.ident_patients",
            "silver.ident_staff",
            "silver.ident_treatment_plans",
        ),
        gold_tables=(
            "gold.ident_receptions",
            "gold.ident_reception_funnel",
            "gold.ident_treatment_plans",
            "gold.ident_doctor_load",
        ),
        outbound_tables=("outbound.bitrix24_deals", "outbound.amocrm_deals"),
        owner=OWNER,
        start_date=datetime(2024, 1, 1),
        dbt_settings="elt_platform.sources.ident.dbt:dbt_settings",
        # The micro-batch's fast path: the reception chain merges the changed receptions; a daily load
        # (or a day without a full build) rebuilds everything (dbt/macros/ident_incremental.sql).
        incremental=IncrementalPath(
            check="elt_platform.sources.ident.dbt:full_rebuild_reason",
            silver=("stg_ident__receptions", "int_receptions_enriched"),
            gold=("fct_ident__receptions", "out_bitrix24__deals", "out_amocrm__deals"),
        ),
        doc=(
            "Build the clinic domain (iDent) with dbt: silver keeps the latest version of every reception, "
            "patient, staff member and treatment plan per database (tombstoned keys marked deleted); "
            "gold builds receptions, the reception funnel, treatment plans and doctor load by local day; "
            "outbound builds the CRM deal feeds the reverse-ETL DAGs push.\n\n"
            "After a micro-batch only the reception chain is built, incrementally (silver, "
            "`gold.ident_receptions`, the deal feeds merge the changed receptions); after the daily load, "
            "or when a table of the chain is missing, everything is rebuilt (`dbt --full-refresh`)."
        ),
    ),
)

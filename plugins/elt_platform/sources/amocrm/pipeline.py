"""Registry entry of amoCRM (API v4) and the sales domain it feeds."""

from datetime import datetime, timedelta

from elt_platform.registry import Domain, Extract, Source

OWNER = "data-platform"
#: Load order of spec §2.4 (same as settings.ENTITIES, checked by a test; declarations import nothing).
ENTITIES = ("pipelines", "users", "custom_fields", "companies", "contacts", "leads", "tasks", "events")

SOURCE = Source(
    name="amocrm",
    title="amoCRM",
    owner=OWNER,
    start_date=datetime(2024, 1, 1),
    connection="amocrm_default",
    sandbox="elt_platform.sandbox.launch:amocrm",
    timezone="Asia/Almaty",
    extracts=(
        Extract(
            dag_id="extract_amocrm",
            kind="interval",
            call="elt_platform.sources.amocrm.extract:extract_interval",
            schedule="30 2 * * *",
            retry_delay=timedelta(minutes=5),
            doc=(
                "Extract amoCRM (API v4) into `bronze.amocrm_*`.\n\n"
                "Daily at 02:30 UTC each run loads its data interval: pipelines with statuses, users and "
                "custom-field definitions in full (a snapshot per interval), then companies, contacts, "
                "leads (`with=contacts,companies`) and tasks changed in the interval (`filter[updated_at]`), "
                "and events created in it. 250 records a page, stopping on a page without `_links.next` or "
                "on HTTP 204. Every request draws from the account's shared budget (7 req/s by default); "
                "an HTML ban page opens the account's circuit breaker "
                "(`elt breaker reset amocrm:<host>`, e.g. `amocrm:example.amocrm.ru`). "
                "OAuth tokens rotate through the state store. Reruns and backfills replace the interval's "
                "slices: nothing is duplicated."
            ),
        ),
    ),
    bronze_tables=tuple(f"bronze.amocrm_{entity}" for entity in (*ENTITIES, "quarantine")),
    trigger_table="bronze.amocrm_leads",
    bronze_suites=("bronze_amocrm_leads",),
    domains=("sales",),
)

DOMAINS = (
    Domain(
        name="sales",
        sources=("amocrm",),
        rebuild="state",
        silver_tables=(
            "silver.amocrm_leads_latest",
            "silver.amocrm_contacts_latest",
            "silver.amocrm_companies_latest",
            "silver.amocrm_users",
            "silver.amocrm_leads",
            "silver.amocrm_contacts",
            "silver.amocrm_companies",
            "silver.amocrm_pipeline_statuses",
            "silver.amocrm_tasks",
            "silver.amocrm_events",
        ),
        gold_tables=(
            "gold.amocrm_sales_funnel",
            "gold.amocrm_manager_activity",
            "gold.amocrm_client_analytics",
        ),
        owner=OWNER,
        start_date=datetime(2024, 1, 1),
        dbt_settings="elt_platform.sources.amocrm.dbt:dbt_settings",
        doc=(
            "Build the sales domain (amoCRM) with dbt: silver keeps the latest version of every lead, "
            "contact, company and task (deleted ones marked, never dropped), the flat pipeline/status "
            "list, tasks and events; gold builds the sales funnel, manager activity and client analytics. "
            "Silver/gold are state derived from all of bronze (latest versions, cohorts by created month), "
            "so each run rebuilds them once for every interval pending in the transform ledger."
        ),
    ),
)

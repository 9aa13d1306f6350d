"""Registry entry of Alaqan (access control REST API) and the attendance domain it feeds."""

from datetime import datetime, timedelta

from elt_platform.registry import Domain, Extract, Source

OWNER = "data-platform"

SOURCE = Source(
    name="alaqan",
    title="Alaqan access control",
    owner=OWNER,
    start_date=datetime(2024, 1, 1),
    connection="alaqan_default",
    sandbox="elt_platform.sandbox.launch:alaqan",
    timezone="Asia/Almaty",
    extracts=(
        Extract(
            dag_id="extract_alaqan",
            kind="interval",
            call="elt_platform.sources.alaqan.extract:extract_interval",
            schedule="0 2 * * *",
            retry_delay=timedelta(minutes=5),
            doc=(
                "Extract Alaqan access events into `bronze.alaqan_visits`.\n\n"
                "Daily at 02:00 UTC each run loads its data interval (the previous day) with one "
                "`GET employees/byDate` per day, lands the raw response, replaces that day's bronze slice "
                "and gates it with Great Expectations; on success the interval is recorded in the "
                "transform ledger and the `bronze.alaqan_visits` asset wakes `transform_attendance`.\n\n"
                "History: `airflow backfill create --dag-id extract_alaqan --from-date 2024-01-01 "
                "--to-date <yesterday>` (or `make backfill`). A manual run takes `start_date`/`end_date` "
                "params. Reruns replace the same slices: nothing is duplicated."
            ),
        ),
    ),
    bronze_tables=("bronze.alaqan_visits", "bronze.alaqan_visits_quarantine"),
    trigger_table="bronze.alaqan_visits",
    bronze_suites=("bronze_alaqan_visits",),
    domains=("attendance",),
)

DOMAINS = (
    Domain(
        name="attendance",
        sources=("alaqan",),
        rebuild="interval",
        silver_tables=("silver.alaqan_visits", "silver.alaqan_visits_quarantine", "silver.alaqan_rejected"),
        gold_tables=("gold.alaqan_daily_attendance", "gold.alaqan_monthly_summary"),
        silver_suites=("silver_alaqan_visits",),
        owner=OWNER,
        start_date=datetime(2024, 1, 1),
        dbt_settings="elt_platform.sources.alaqan.dbt:dbt_settings",
        doc=(
            "Build attendance silver and gold (Alaqan) with dbt, gated by Great Expectations.\n\n"
            "Takes every interval the transform ledger holds as pending for `attendance` (recorded by "
            "`extract_alaqan` once its gate passed), merged where they touch; the asset event only wakes "
            "it, and a sweep every 30 minutes picks up anything an event missed. A manual run can name "
            "`start_date`/`end_date`. `dbt build` silver → GX gate on silver → `dbt build` gold → the "
            "intervals are marked done (a failure leaves them pending for the next run)."
        ),
    ),
)

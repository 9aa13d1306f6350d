"""Weekly Iceberg maintenance of every table: compact small files, expire snapshots older than 7 days.

Keeps commits fast (metadata grows with every snapshot) while leaving a week of history for
``python -m elt_platform.cli rollback``. Runs ``spark_jobs.maintain_tables`` on the platform's Spark.
Tables committed every few seconds are also cut to their last 200 snapshots hourly
(``maintenance_snapshots``).
"""

from datetime import datetime, timedelta

from airflow.sdk import dag, task


@dag(
    dag_id="maintenance_iceberg",
    schedule="0 4 * * 0",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "data-platform", "retries": 1, "retry_delay": timedelta(minutes=10)},
    tags=["maintenance", "iceberg"],
    doc_md=__doc__,
)
def maintenance_iceberg():
    @task
    def compact_and_expire() -> dict:
        from elt_platform.iceberg.catalog import lakehouse_spark_session
        from spark_jobs.maintain_tables import run

        lakehouse_spark_session("maintenance")
        namespaces = ["bronze", "silver", "gold", "outbound", "ops"]
        return run(namespaces, older_than_days=7, retain_last=10, compact=True)

    compact_and_expire()


maintenance_iceberg()

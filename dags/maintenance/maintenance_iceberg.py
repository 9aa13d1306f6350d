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
        from elt_platform.iceberg.maintenance import maintain_every_table

        return maintain_every_table()

    compact_and_expire()


maintenance_iceberg()

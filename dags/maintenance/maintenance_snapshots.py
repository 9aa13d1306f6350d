"""Hourly: cut the history of the tables committed every few seconds to their last 200 snapshots.

The freshness path commits `bronze.ident_receptions` every 30-second micro-batch, the clinic's silver,
gold and outbound tables every transform cycle, and the `ops` tables on every reverse-ETL run. Each
commit copies the table's whole snapshot list, so with a week of history (the weekly
`maintenance_iceberg`) such a table would hold ~10,000 snapshots and every commit would take seconds.
A table with more than 200 snapshots keeps its last 200 and everything committed within the hour;
its expired snapshots' files are deleted, and old `metadata.json` files are deleted on commit from then
on. Tables loaded daily never reach 200 in a week: their week of rollback history is untouched. Nothing
to trim: no Spark is started.
"""

from datetime import datetime, timedelta

from airflow.sdk import dag, task


@dag(
    dag_id="maintenance_snapshots",
    schedule="23 * * * *",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "data-platform", "retries": 1, "retry_delay": timedelta(minutes=5)},
    tags=["maintenance", "iceberg"],
    doc_md=__doc__,
)
def maintenance_snapshots():
    @task
    def trim_busy_tables() -> dict:
        from elt_platform.iceberg.maintenance import trim_busy_tables

        return trim_busy_tables()

    trim_busy_tables()


maintenance_snapshots()

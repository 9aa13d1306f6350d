"""Extract Alaqan access events into ``bronze.alaqan_visits``.

Daily at 02:00 UTC each run loads its data interval (the previous day) with one ``GET
employees/byDate`` per day, lands the raw response, replaces that day's bronze slice and gates it with
Great Expectations; on success it emits the ``bronze.alaqan_visits`` asset (interval in the event's
extra), which triggers ``transform_alaqan``.

History (full load from 2024-01-01): ``airflow backfill create --dag-id extract_alaqan
--from-date 2024-01-01 --to-date <yesterday>``. A manual run can also take ``start_date`` /
``end_date`` params. Reruns replace the same slices: nothing is duplicated.
"""

from datetime import datetime

from elt_platform.dag_factory import build_extract_dag

build_extract_dag(
    source="alaqan",
    schedule="0 2 * * *",
    owner="data-platform",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    doc_md=__doc__,
)

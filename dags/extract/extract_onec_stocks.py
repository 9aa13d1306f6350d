"""Fast path: load 1C prices/rests packages into ``bronze.onec_prices`` and ``bronze.onec_stocks`` only.

Every 15 minutes the run loads the complete packages of the exchange area whose XML files are all
``prices*``/``rests*`` files (spec §6.3: stock updates far more often than the catalog). Same loader
as ``extract_onec`` in ``stocks`` mode: the package is atomic, recorded in ``bronze.onec_packages``,
and may touch no other table (a package with other files is refused). The gate emits
``bronze.onec_packages``, which triggers ``transform_onec``.

Manual run: ``airflow dags trigger extract_onec_stocks --conf '{"path": "/abs/path/to/rests_package"}'``,
or ``python -m elt_platform.cli load-1c PATH --mode stocks``.
"""

from datetime import datetime, timedelta

from elt_platform.dag_factory import build_package_dag

build_package_dag(
    dag_id="extract_onec_stocks",
    mode="stocks",
    schedule="*/15 * * * *",
    owner="data-platform",
    start_date=datetime(2025, 1, 1),
    retry_delay=timedelta(minutes=1),
    catchup=False,
    tags=("stocks",),
    doc_md=__doc__,
)

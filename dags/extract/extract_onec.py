"""Extract 1C exchange packages (catalog, offers, prices, rests, counterparties, documents) into bronze.

Every 30 minutes the run looks for **complete** packages in the exchange area (``incoming/`` of
``ELT_ONEC_EXCHANGE_URI``: a local folder, default ``$ELT_HOME/exchange/onec``, ``s3://bucket/prefix``
read with the ``onec_exchange`` connection, or ``sftp://host/path`` with ``onec_exchange_sftp``; a
folder or zip per exchange session; complete = a ``.complete`` marker, or no file changed for
``ELT_ONEC_SETTLE_SECONDS``, default 120 s) that are not prices/rests-only (those belong to
``extract_onec_stocks``), and loads them one by one, oldest first.
Each package is atomic: parsed and staged completely, then committed table by table to
``bronze.onec_<entity>`` (its own ``package_id`` partition); a failure rolls every table back and
records the package as ``failed`` in ``bronze.onec_packages``. Loaded packages move to ``archive/``;
one that failed 3 times moves to ``failed/``. The quality gate then checks the loaded slices and emits
``bronze.onec_packages``, which triggers ``transform_onec``.

Manual run: ``airflow dags trigger extract_onec --conf '{"path": "/abs/path/to/package_or.zip"}'`` loads
that package (same code as ``python -m elt_platform.cli load-1c PATH``). Replays replace the package's
slices: nothing is duplicated.
"""

from datetime import datetime, timedelta

from elt_platform.dag_factory import build_package_dag

build_package_dag(
    dag_id="extract_onec",
    mode="catalog",
    schedule="*/30 * * * *",
    owner="data-platform",
    start_date=datetime(2025, 1, 1),
    retry_delay=timedelta(minutes=2),
    catchup=False,
    doc_md=__doc__,
)

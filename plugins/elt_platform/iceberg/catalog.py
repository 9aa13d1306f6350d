"""The platform's Iceberg catalog as pyiceberg sees it (the same one Spark mounts as ``lakehouse``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from pyiceberg.catalog import Catalog
from pyiceberg.catalog import load_catalog as _load_catalog

from elt_platform.config import PlatformConfig
from spark_jobs.session import CATALOG_NAME

if TYPE_CHECKING:
    from pyiceberg.catalog.sql import SqlCatalog


def load_catalog(config: PlatformConfig | None = None) -> Catalog:
    """Open the lakehouse catalog named by the environment (``ELT_ICEBERG_*``).

    Args:
        config: settings to use instead of the environment.

    Returns:
        A pyiceberg catalog: ``SqlCatalog`` embedded, ``RestCatalog`` in production.
    """
    config = config or PlatformConfig.from_env()
    config.ensure_local_dirs()
    catalog = _load_catalog(CATALOG_NAME, **config.pyiceberg_properties())
    if config.catalog_uri.startswith("sqlite"):
        _use_wal(cast("SqlCatalog", catalog))  # a sqlite:// catalog URI always loads a SqlCatalog
    return catalog


def _use_wal(catalog: SqlCatalog) -> None:
    """Put the embedded SQLite catalog in WAL mode (persistent, idempotent).

    Spark's JDBC catalog keeps a read transaction open on its connection after a query; in SQLite's
    default rollback-journal mode that blocks every later commit from pyiceberg in the same process
    ("database is locked"). In WAL mode readers never block the single writer.
    """
    with catalog.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA journal_mode=WAL")


def lakehouse_spark_session(app_name: str, config: PlatformConfig | None = None):
    """The process's SparkSession on the lakehouse catalog, for every Spark consumer in this library.

    pyiceberg creates the embedded catalog's tables first: Spark is configured not to initialise
    them itself (see ``spark_jobs.session.catalog_conf``), so this order is required, not cosmetic.
    """
    from spark_jobs.session import build_session

    load_catalog(config)
    return build_session(app_name)

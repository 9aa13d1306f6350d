"""Constants of the 1C (CommerceML) source: bronze tables, load modes, exchange-area rules.

Everything an operator may want to change per environment is an environment variable read by the
function that needs it (never at import time); this module only names them and their defaults.
"""

from __future__ import annotations

SOURCE = "onec"
"""Source name: bronze tables are ``bronze.onec_<entity>``, lineage is stamped ``elt.source=onec``."""

BRONZE_ENTITIES: tuple[str, ...] = (
    "groups",
    "properties",
    "property_options",
    "property_values",
    "price_types",
    "warehouses",
    "units",
    "products",
    "offers",
    "prices",
    "stocks",
    "contragents",
    "documents",
    "document_items",
)
"""Parser entities written to their own bronze table (``file_headers`` go to ``bronze.onec_packages``)."""

ENTITIES: tuple[str, ...] = (*BRONZE_ENTITIES, "file_headers")
"""Every entity name the parser can yield, in a stable order (for CLIs and tests)."""

STOCK_ENTITIES: tuple[str, ...] = ("prices", "stocks")
"""The only tables the stocks fast path (``extract_onec_stocks``) writes."""

STOCK_ROLES = frozenset({"prices", "rests"})
"""File roles of a stocks/prices package: every XML file of it must have only these roles."""

PACKAGES_SPEC = "bronze/onec/packages.yaml"
PACKAGE_COLUMN = "package_id"


def entity_spec(entity: str) -> str:
    """Path under ``schemas/`` of an entity's bronze declaration (``bronze/onec/offers.yaml``)."""
    return f"bronze/onec/{entity}.yaml"


MODES = ("catalog", "stocks")
"""Load modes: ``catalog`` writes every entity; ``stocks`` only :data:`STOCK_ENTITIES`."""

AUTO_MODE = "auto"
"""Mode chosen from the package's files once they are read: ``stocks`` when all are prices/rests files."""

BATCH_SIZE = 50_000
"""Records per staged Parquet row group (memory stays bounded by this, per entity)."""

MAX_ATTEMPTS = 3
"""Failed attempts after which the exchange DAGs move a package to ``failed/`` and go on."""

# Exchange area (where 1C drops packages).
EXCHANGE_URI_ENV = "ELT_ONEC_EXCHANGE_URI"
"""Root of the exchange area (``incoming/``, ``archive/``, ``failed/``): a local folder (or ``file://``) or
``s3://bucket/prefix`` or ``sftp://host[:port]/absolute/path``. Unset: :data:`EXCHANGE_DIR_ENV`, else
``$ELT_HOME/exchange/onec``."""

EXCHANGE_DIR_ENV = "ELT_ONEC_EXCHANGE_DIR"
"""Local root of the exchange area, read when :data:`EXCHANGE_URI_ENV` is unset (kept for existing setups)."""

EXCHANGE_CONN_ID = "onec_exchange"
"""Airflow connection (``aws``: login = access key, password = secret key, extra ``endpoint_url``,
``region_name``) used when the exchange area is on S3; absent = the lakehouse's S3 settings."""

EXCHANGE_SFTP_CONN_ID = "onec_exchange_sftp"
"""Airflow connection (``sftp``: login, password or extra ``private_key``/``key_file``, extra ``host_key``/
``known_hosts``, ``no_host_key_check``) required when the exchange area is ``sftp://``."""

SETTLE_SECONDS_ENV = "ELT_ONEC_SETTLE_SECONDS"
SETTLE_SECONDS = 120
"""A package without a marker is complete once none of its files changed for this long."""

MARKER_NAME = ".complete"
"""Marker file inside a package directory (or ``<name>.zip.complete`` beside a zip) = upload finished."""

PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".filepart", ".crdownload", ".uploading")
"""A file with one of these suffixes means the upload is still running (SFTP clients, browsers)."""

QUALITY_SUITES = {
    "catalog": (
        "bronze_onec_packages",
        "bronze_onec_products",
        "bronze_onec_offers",
        "bronze_onec_prices",
        "bronze_onec_stocks",
    ),
    "stocks": ("bronze_onec_packages", "bronze_onec_prices", "bronze_onec_stocks"),
}
"""Great Expectations suites (``schemas/quality/``) gating the package slices a run loaded, per mode."""

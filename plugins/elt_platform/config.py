"""Where the lakehouse lives: one place that turns environment variables into platform settings.

Embedded default (no variables set): everything under ``$ELT_HOME`` (``<repo>/.local``) — a SQLite
Iceberg catalog, a local warehouse, a landing area for raw responses and quality results. Production
sets the variables listed in ``.env.example`` (REST catalog, S3 warehouse and landing).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from spark_jobs.session import CATALOG_NAME, session_conf

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class PlatformConfig:
    """Resolved lakehouse settings (no secrets are kept here)."""

    home: Path
    catalog_type: str
    catalog_uri: str
    warehouse: str
    landing_uri: str
    quality_uri: str
    s3_endpoint: str | None
    profile: str = "embedded"
    s3_region: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> PlatformConfig:
        """Read the ``ELT_*`` variables, falling back to the embedded layout under ``ELT_HOME``."""
        env = dict(os.environ if env is None else env)
        home = Path(env.get("ELT_HOME", REPO_ROOT / ".local")).resolve()
        return cls(
            home=home,
            catalog_type=env.get("ELT_ICEBERG_CATALOG_TYPE", "sql"),
            catalog_uri=env.get("ELT_ICEBERG_CATALOG_URI", f"sqlite:///{home / 'catalog.db'}"),
            warehouse=env.get("ELT_ICEBERG_WAREHOUSE", (home / "warehouse").as_uri()),
            landing_uri=env.get("ELT_LANDING_URI", (home / "landing").as_uri()),
            quality_uri=env.get("ELT_QUALITY_URI", (home / "quality").as_uri()),
            s3_endpoint=env.get("ELT_S3_ENDPOINT") or None,
            profile=(env.get("ELT_PROFILE") or "embedded").strip().lower(),
            s3_region=env.get("AWS_REGION") or None,
        )

    @property
    def display_catalog_uri(self) -> str:
        """The catalog URI for terminals and logs: a server catalog's password is masked (``***``)."""
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(self.catalog_uri)
        if not parts.password:
            return self.catalog_uri
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))

    def pyiceberg_properties(self) -> dict[str, str]:
        """Properties for ``pyiceberg.catalog.load_catalog`` naming the same catalog Spark mounts."""
        uri = self.catalog_uri
        if uri.startswith("sqlite") and "?" not in uri:
            # Parallel tasks commit to one SQLite file: wait up to a minute for the writer lock
            # (pysqlite's default is 5 s) instead of failing the commit.
            uri += "?timeout=60"
        props = {"type": self.catalog_type, "uri": uri, "warehouse": self.warehouse}
        if self.s3_endpoint:
            props.update({"s3.endpoint": self.s3_endpoint, "s3.path-style-access": "true"})
        if self.s3_region:
            # Without it pyarrow asks the endpoint for the bucket's region, which an S3-compatible
            # store (MinIO, S3Proxy) may not answer the way AWS does. Credentials come from the AWS
            # default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), never from these properties.
            props["s3.region"] = self.s3_region
        return props

    def filesystem(self, uri: str) -> tuple[Any, str]:
        """The ``pyarrow.fs`` filesystem and path for a lakehouse ``uri`` (landing, quality results).

        ``s3://`` URIs go to ``ELT_S3_ENDPOINT`` when set (MinIO, S3Proxy) with the region of
        ``AWS_REGION`` and the AWS default credential chain; anything else as ``pyarrow`` resolves it.

        Args:
            uri: ``file://…``, a local path or ``s3://bucket/prefix``.

        Returns:
            (filesystem, path inside it).
        """
        from pyarrow import fs

        if uri.startswith("s3://") and self.s3_endpoint:
            scheme, _, endpoint = self.s3_endpoint.partition("://")
            options: dict[str, Any] = {"endpoint_override": endpoint, "scheme": scheme or "https"}
            if self.s3_region:
                options["region"] = self.s3_region
            return fs.S3FileSystem(**options), uri[len("s3://") :]
        return fs.FileSystem.from_uri(uri)

    def ensure_local_dirs(self) -> None:
        """Create the embedded directories (no-op for remote URIs)."""
        self.home.mkdir(parents=True, exist_ok=True)
        for uri in (self.warehouse, self.landing_uri, self.quality_uri):
            if uri.startswith("file://"):
                Path(uri[len("file://") :]).mkdir(parents=True, exist_ok=True)


def load_env_file(path: Path | None = None) -> Path | None:
    """Load ``.env`` (``ELT_ENV_FILE``, else ``<repo>/.env``) into the environment, if present.

    Variables already set win, as docker compose does: the file is the documented place for settings
    (``.env.example``), so the CLI, ``make run`` and ``make airflow`` see what compose would.

    Returns:
        The file loaded, or None.
    """
    from dotenv import load_dotenv

    path = path or Path(os.environ.get("ELT_ENV_FILE") or REPO_ROOT / ".env")
    if not path.is_file():
        return None
    load_dotenv(path, override=False)
    return path


def port_setting(env: Mapping[str, str], name: str, default: int) -> int:
    """A TCP port from the variable ``name``, else ``default``.

    Raises:
        ValueError: the variable is set to something that is not a port number (one line naming it).
    """
    value = env.get(name) or str(default)
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ValueError(f"{name}={value!r} is not a TCP port")
    return int(value)


def is_time_zone(name: str) -> bool:
    """Whether ``name`` is a zone of the IANA time zone database (``Asia/Almaty``; not ``+05:00``).

    Zone names are quoted into SQL (dbt vars), so every setting holding one is checked with this: nothing
    but a real zone name may pass.
    """
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return False
    return True


def time_zone_setting(
    env: Mapping[str, str], name: str, default: str, *, error: type[ValueError] = ValueError
) -> str:
    """A source's time zone: the variable ``name`` (stripped), else ``default`` (the registry's zone).

    Args:
        env: The environment.
        name: The variable, e.g. ``ELT_ALAQAN_TIMEZONE``.
        default: The zone when the variable is unset or blank.
        error: The source's configuration error, raised for a zone the database does not know.

    Returns:
        An IANA zone name.

    Raises:
        ValueError: ``error``, naming the variable and the value.
    """
    zone = (env.get(name) or "").strip() or default
    if not is_time_zone(zone):
        raise error(f"{name}={zone!r}: not an IANA time zone (e.g. Asia/Almaty)")
    return zone


def dbt_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """Environment variables ``dbt/profiles.yml`` reads, derived from the same settings as Spark.

    Keeping the derivation here means dbt, Spark jobs and pyiceberg cannot disagree on the catalog.
    """
    conf = session_conf(env)
    prefix = f"spark.sql.catalog.{CATALOG_NAME}"
    out = {
        "ELT_SPARK_MASTER": conf["spark.master"],
        "ELT_SPARK_PACKAGES": conf.get("spark.jars.packages", ""),
        "ELT_SPARK_JARS": conf.get("spark.jars", ""),
        "ELT_SPARK_IVY": conf["spark.jars.ivy"],
        "ELT_SPARK_DRIVER_MEMORY": conf["spark.driver.memory"],
        "ELT_SPARK_WAREHOUSE_DIR": conf["spark.sql.warehouse.dir"],
        "ELT_SPARK_DRIVER_OPTS": conf["spark.driver.extraJavaOptions"],
        "ELT_ICEBERG_SPARK_TYPE": conf[f"{prefix}.type"],
        "ELT_ICEBERG_SPARK_URI": conf[f"{prefix}.uri"],
        "ELT_ICEBERG_SPARK_WAREHOUSE": conf[f"{prefix}.warehouse"],
    }
    return out

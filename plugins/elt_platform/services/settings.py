"""What the production-local services are, read only from the variables ``docker-compose.yaml`` reads.

No variable of its own: Postgres listens where ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` points and holds
the databases of that URL, ``ELT_STATE_DB_URL`` and ``ELT_ICEBERG_CATALOG_URI``; the object store
listens at ``ELT_S3_ENDPOINT`` with the key pair ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` and
the bucket ``ELT_S3_BUCKET``; the Spark master at ``ELT_SPARK_MASTER``; the Thrift server where dbt's
``prod`` target connects (``DBT_SPARK_HOST``/``DBT_SPARK_PORT``). Spark's own ``SPARK_WORKER_*`` and
``SPARK_THRIFT_CORES_MAX`` size the cluster, and every service binds ``ELT_BIND_ADDRESS``.

:func:`generate_env` writes such a file with generated secrets (``make run-prod-local`` on a machine
without one); :meth:`ProdLocalSettings.from_env` refuses placeholders and well-known default passwords.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from spark_jobs.session import DEFAULT_PACKAGES, ICEBERG_VERSION

#: Passwords a scanner tries first: none of them may protect a service of this profile.
DEFAULT_PASSWORDS = frozenset(
    {"", "admin", "airflow", "changeme", "minio123", "minioadmin", "password", "postgres", "secret"}
)
#: Variables that hold secrets of this profile (checked by :meth:`ProdLocalSettings.from_env`).
SECRET_VARIABLES = (
    "POSTGRES_PASSWORD",
    "AWS_SECRET_ACCESS_KEY",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "ELT_PII_HASH_KEY",
)
POSTGRES_JDBC = "org.postgresql:postgresql:42.7.8"
#: Spark packages of the profile: Iceberg's runtime, its AWS bundle (S3FileIO) and the Postgres driver
#: (the JDBC catalog).
PACKAGES = (
    DEFAULT_PACKAGES[0],
    f"org.apache.iceberg:iceberg-aws-bundle:{ICEBERG_VERSION}",
    POSTGRES_JDBC,
)


class SettingsError(ValueError):
    """A variable is missing, a placeholder, a default password or inconsistent (one line)."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int


@dataclass(frozen=True)
class PostgresSettings:
    host: str
    port: int
    user: str
    password: str
    databases: tuple[str, ...]


@dataclass(frozen=True)
class ProdLocalSettings:
    """The services of the profile and how each is reached."""

    home: Path
    bind: str
    postgres: PostgresSettings
    s3: Endpoint
    s3_bucket: str
    spark_master: Endpoint
    thrift: Endpoint
    airflow: Endpoint

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ProdLocalSettings:
        """Read and check the profile's variables.

        Raises:
            SettingsError: a required variable is missing, a secret is a placeholder or a default
                password, or two variables disagree (a bucket, a database server).
        """
        env = os.environ if env is None else env
        for name in SECRET_VARIABLES:
            value = env.get(name, "")
            if "<" in value or value.strip().lower() in DEFAULT_PASSWORDS or len(value) < 12:
                raise SettingsError(
                    f"{name} is unset, a placeholder or a default password: set a generated value "
                    "(make run-prod-local writes one to $ELT_HOME/prod.env when no ELT_ENV_FILE is given)"
                )
        metadata = _url(env, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
        if not metadata.scheme.startswith("postgresql"):
            raise SettingsError(
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN must be a postgresql URL in this profile"
            )
        databases = [metadata.path.lstrip("/")]
        for name in ("ELT_STATE_DB_URL", "ELT_ICEBERG_CATALOG_URI"):
            other = _url(env, name)
            if not other.scheme.startswith("postgresql"):
                raise SettingsError(f"{name} must be a postgresql URL in this profile")
            if (other.hostname, other.port) != (metadata.hostname, metadata.port):
                raise SettingsError(
                    f"{name} points at another server than AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
                )
            databases.append(other.path.lstrip("/"))
        user, password = unquote(metadata.username or ""), unquote(metadata.password or "")
        if (user, password) != (env.get("POSTGRES_USER"), env.get("POSTGRES_PASSWORD")):
            raise SettingsError(
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN must log in as POSTGRES_USER/POSTGRES_PASSWORD"
            )
        bucket = _required(env, "ELT_S3_BUCKET")
        for name in ("ELT_ICEBERG_WAREHOUSE", "ELT_LANDING_URI", "ELT_QUALITY_URI"):
            if not _required(env, name).startswith(f"s3://{bucket}/"):
                raise SettingsError(f"{name} must be under s3://{bucket}/ (ELT_S3_BUCKET)")
        s3 = _url(env, "ELT_S3_ENDPOINT")
        master = _url(env, "ELT_SPARK_MASTER")
        if master.scheme != "spark":
            raise SettingsError("ELT_SPARK_MASTER must be spark://host:port in this profile")
        _required(env, "AWS_ACCESS_KEY_ID")
        return cls(
            home=Path(_required(env, "ELT_HOME")).resolve(),
            bind=env.get("ELT_BIND_ADDRESS") or "127.0.0.1",
            postgres=PostgresSettings(
                metadata.hostname or "127.0.0.1", metadata.port or 5432, user, password, tuple(databases)
            ),
            s3=Endpoint(s3.hostname or "127.0.0.1", s3.port or 80),
            s3_bucket=bucket,
            spark_master=Endpoint(master.hostname or "127.0.0.1", master.port or 7077),
            thrift=Endpoint(
                env.get("DBT_SPARK_HOST") or "127.0.0.1", int(env.get("DBT_SPARK_PORT") or 10000)
            ),
            airflow=Endpoint(
                env.get("ELT_AIRFLOW_HOST") or "127.0.0.1", int(env.get("ELT_AIRFLOW_PORT") or 8080)
            ),
        )

    @property
    def directory(self) -> Path:
        """Where the services keep their data and logs (``$ELT_HOME/services``)."""
        return self.home / "services"


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "")
    if not value or "<" in value:
        raise SettingsError(f"{name} is not set (see .env.example)")
    return value


def _url(env: Mapping[str, str], name: str):
    return urlsplit(_required(env, name))


def _free(port: int, host: str = "127.0.0.1") -> int:
    """``port`` if nothing listens there, else a free one (a developer's Postgres may hold 5432)."""
    import socket

    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            sock.bind((host, 0))
        return sock.getsockname()[1]


def generate_env(path: Path, home: Path, *, ports: Mapping[str, int] | None = None) -> Path:
    """Write a production-local ``.env`` with generated secrets (mode 0600), unless ``path`` exists.

    The variables are those of ``.env.example`` (the compose stack's), with values for services on
    127.0.0.1; an existing file is kept, so the secrets match the data already created with them.

    Args:
        path: the file to write.
        home: ``ELT_HOME`` of the profile (separate from the embedded ``.local``).
        ports: override ports (``postgres``, ``s3``, ``spark``, ``thrift``, ``airflow``, ``spark_ui``),
            e.g. free ones in tests; defaults are the usual ports, or a free one when taken.

    Returns:
        ``path``.
    """
    if path.is_file():
        return path
    from cryptography.fernet import Fernet

    wanted = {"postgres": 5432, "s3": 9000, "spark": 7077, "thrift": 10000, "airflow": 8080, "spark_ui": 8090}
    chosen = {name: (ports or {}).get(name) or _free(port) for name, port in wanted.items()}
    token = secrets.token_urlsafe
    pg_user, pg_password = "airflow", secrets.token_hex(16)  # hex: URL-safe inside the SQLAlchemy URLs
    pg = f"postgresql+psycopg://{pg_user}:{pg_password}@127.0.0.1:{chosen['postgres']}"
    values = {
        "ELT_PROFILE": "production",
        "ELT_HOME": str(home),
        "ELT_BIND_ADDRESS": "127.0.0.1",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__API_AUTH__JWT_SECRET": token(32),
        "AIRFLOW__API__SECRET_KEY": token(32),
        "ELT_AIRFLOW_HOST": "127.0.0.1",
        "ELT_AIRFLOW_PORT": str(chosen["airflow"]),
        "POSTGRES_USER": pg_user,
        "POSTGRES_PASSWORD": pg_password,
        "POSTGRES_DB": "airflow",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"{pg}/airflow",
        "ELT_STATE_DB_URL": f"{pg}/elt_state",
        "ELT_ICEBERG_CATALOG_TYPE": "sql",
        "ELT_ICEBERG_CATALOG_URI": f"{pg}/iceberg_catalog",
        "ELT_S3_BUCKET": "lakehouse",
        "ELT_S3_ENDPOINT": f"http://127.0.0.1:{chosen['s3']}",
        "AWS_ACCESS_KEY_ID": f"lakehouse-{secrets.token_hex(4)}",
        "AWS_SECRET_ACCESS_KEY": token(24),
        "AWS_REGION": "us-east-1",
        "ELT_ICEBERG_WAREHOUSE": "s3://lakehouse/warehouse",
        "ELT_LANDING_URI": "s3://lakehouse/landing",
        "ELT_QUALITY_URI": "s3://lakehouse/quality",
        "ELT_PII_HASH_KEY": token(32),
        "ELT_SPARK_MASTER": f"spark://127.0.0.1:{chosen['spark']}",
        "ELT_SPARK_PACKAGES": ",".join(PACKAGES),
        "ELT_SPARK_DRIVER_MEMORY": "1g",
        "ELT_SPARK_SHUFFLE_PARTITIONS": "4",
        "SPARK_MASTER_WEBUI_PORT": str(chosen["spark_ui"]),
        "SPARK_WORKER_WEBUI_PORT": str(_free(chosen["spark_ui"] + 1)),
        "SPARK_WORKER_CORES": "4",
        "SPARK_WORKER_MEMORY": "4g",
        "SPARK_THRIFT_CORES_MAX": "2",
        "DBT_TARGET": "prod",
        "DBT_SPARK_METHOD": "thrift",
        "DBT_SPARK_HOST": "127.0.0.1",
        "DBT_SPARK_PORT": str(chosen["thrift"]),
        "DBT_SPARK_USER": "dbt",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Production-local profile (elt prod-local): generated secrets, services on 127.0.0.1.",
        "# Same variables as .env.example / docker-compose.yaml. Keep it: the data was created with them.",
        *(f"{name}={value}" for name, value in values.items()),
    ]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return path

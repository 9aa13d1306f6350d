"""Build the SparkSession that every Spark consumer of the lakehouse shares.

The same Iceberg catalog is seen by pyiceberg (bronze writers) and by Spark (dbt, jobs, SQL prompt):
embedded it is Iceberg's JDBC catalog on a SQLite file plus a local warehouse directory; in production
an Iceberg REST catalog on S3. Only environment variables decide which (see ``.env.example``); this
module imports nothing but pyspark and the standard library so it runs on any Spark driver.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CATALOG_NAME = "lakehouse"
ICEBERG_VERSION = "1.10.0"
DEFAULT_PACKAGES = (
    f"org.apache.iceberg:iceberg-spark-runtime-4.0_2.13:{ICEBERG_VERSION}",
    "org.xerial:sqlite-jdbc:3.50.3.0",
)
_REPO_ROOT = Path(__file__).resolve().parents[1]


def _home(env: Mapping[str, str] | None = None) -> Path:
    variables = os.environ if env is None else env
    return Path(variables.get("ELT_HOME", _REPO_ROOT / ".local")).resolve()


def jdbc_uri(sqlalchemy_uri: str) -> str:
    """Translate the SQLAlchemy form pyiceberg uses (``sqlite:////abs/catalog.db``) to JDBC form.

    Args:
        sqlalchemy_uri: catalog URI as given in ``ELT_ICEBERG_CATALOG_URI``.

    Returns:
        The ``jdbc:`` URI Iceberg's Java ``JdbcCatalog`` expects.
    """
    if sqlalchemy_uri.startswith("sqlite:///"):
        return "jdbc:sqlite:" + sqlalchemy_uri[len("sqlite:///") :]
    if sqlalchemy_uri.startswith("postgresql"):
        rest = sqlalchemy_uri.split("://", 1)[1].split("@")[-1]
        return "jdbc:postgresql://" + rest
    return sqlalchemy_uri


def jdbc_credentials(sqlalchemy_uri: str) -> dict[str, str]:
    """The user and password inside a server catalog URI, as Iceberg's ``jdbc.user``/``jdbc.password``.

    :func:`jdbc_uri` drops them from the URL (the JDBC driver would not read them there); a SQLite
    file has none.

    Args:
        sqlalchemy_uri: catalog URI as given in ``ELT_ICEBERG_CATALOG_URI``.

    Returns:
        ``{"user": …, "password": …}`` (URL-decoded), or an empty dict.
    """
    from urllib.parse import unquote, urlsplit

    if sqlalchemy_uri.startswith("sqlite"):
        return {}
    parts = urlsplit(sqlalchemy_uri)
    out = {}
    if parts.username:
        out["user"] = unquote(parts.username)
    if parts.password:
        out["password"] = unquote(parts.password)
    return out


def catalog_conf(env: dict[str, str] | None = None) -> dict[str, str]:
    """Spark settings that mount the platform's Iceberg catalog as the default catalog.

    Args:
        env: environment to read (defaults to ``os.environ``).

    Returns:
        ``spark.sql.*`` settings, suitable for ``SparkSession.builder.config`` or dbt's
        ``server_side_parameters``.
    """
    env = dict(os.environ if env is None else env)
    home = _home(env)
    kind = env.get("ELT_ICEBERG_CATALOG_TYPE", "sql")
    uri = env.get("ELT_ICEBERG_CATALOG_URI", f"sqlite:///{home / 'catalog.db'}")
    warehouse = env.get("ELT_ICEBERG_WAREHOUSE", (home / "warehouse").as_uri())
    prefix = f"spark.sql.catalog.{CATALOG_NAME}"
    conf = {
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.warehouse": warehouse,
        "spark.sql.defaultCatalog": CATALOG_NAME,
        # Iceberg honours dynamic mode for INSERT OVERWRITE: only the partitions written are replaced.
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.sql.session.timeZone": "UTC",
        # Bronze is written by pyiceberg, often moments before Spark (dbt) reads it — in the same process
        # embedded, in the long-lived Thrift server in production. Iceberg's CachingCatalog would serve
        # table metadata up to 30 s old: a tombstone or a rerun's slice committed just before a
        # transform would be invisible to it. Always load the current metadata.
        f"{prefix}.cache-enabled": "false",
    }
    if kind == "rest":
        conf[f"{prefix}.type"] = "rest"
        conf[f"{prefix}.uri"] = uri
    else:
        conf[f"{prefix}.type"] = "jdbc"
        conf[f"{prefix}.uri"] = jdbc_uri(uri)
        # Tables shared with pyiceberg's SqlCatalog, which creates the V0 layout.
        conf[f"{prefix}.jdbc.schema-version"] = "V0"
        # pyiceberg creates the catalog tables (elt_platform.iceberg.catalog.load_catalog runs first).
        # Iceberg's own initialisation leaves a metadata ResultSet open, i.e. a read transaction
        # pinned on its pooled SQLite connection: every later Spark commit after a pyiceberg commit
        # would then fail with SQLITE_BUSY_SNAPSHOT.
        conf[f"{prefix}.jdbc.init-catalog-tables"] = "false"
        for name, value in jdbc_credentials(uri).items():
            conf[f"{prefix}.jdbc.{name}"] = value
        if uri.startswith("sqlite"):
            # Parallel tasks (a backfill, two transforms) commit to one SQLite file: wait for the
            # writer lock (sqlite-jdbc's default is 3 s) instead of failing the commit.
            conf[f"{prefix}.jdbc.busy_timeout"] = "60000"
    if env.get("ELT_S3_ENDPOINT"):
        conf[f"{prefix}.io-impl"] = "org.apache.iceberg.aws.s3.S3FileIO"
        conf[f"{prefix}.s3.endpoint"] = env["ELT_S3_ENDPOINT"]
        conf[f"{prefix}.s3.path-style-access"] = "true"
        region = env.get("AWS_REGION")
        if region:
            conf[f"{prefix}.client.region"] = region
    return conf


#: Driver logging: console to stdout (Airflow logs a task's stderr as ERROR), see the file's comments.
LOG4J2_CONFIG = Path(__file__).resolve().with_name("log4j2.properties")


def session_conf(env: dict[str, str] | None = None) -> dict[str, str]:
    """Everything needed to start a driver: catalog settings, packages, local dirs and sizing."""
    env = dict(os.environ if env is None else env)
    home = _home(env)
    conf = catalog_conf(env)
    ivy = Path(env.get("ELT_IVY_HOME", _REPO_ROOT / ".cache" / "ivy")).resolve()
    packages = env.get("ELT_SPARK_PACKAGES") or ",".join(DEFAULT_PACKAGES)
    resolved = resolved_jars(packages, ivy)
    if resolved:
        # Already fetched from Maven Central once: skip Ivy's resolution (seconds and a screenful).
        conf["spark.jars"] = ",".join(str(jar) for jar in resolved)
    else:
        conf["spark.jars.packages"] = packages
    conf.update(
        {
            "spark.master": env.get("ELT_SPARK_MASTER", "local[*]"),
            "spark.jars.ivy": str(ivy),
            "spark.sql.warehouse.dir": str(home / "spark-warehouse"),
            "spark.driver.memory": env.get("ELT_SPARK_DRIVER_MEMORY", "2g"),
            "spark.sql.shuffle.partitions": env.get("ELT_SPARK_SHUFFLE_PARTITIONS", "4"),
            "spark.ui.enabled": env.get("ELT_SPARK_UI", "false"),
            "spark.ui.showConsoleProgress": "false",
            "spark.driver.extraJavaOptions": (
                f"-Dderby.system.home={home / 'derby'} -Dlog4j2.configurationFile={LOG4J2_CONFIG.as_uri()}"
            ),
        }
    )
    return conf


def resolved_jars(packages: str, ivy: Path) -> list[Path] | None:
    """Jars Ivy already retrieved for ``packages`` (``group:artifact:version,…``); None if one is missing."""
    jars = []
    for coordinate in filter(None, (p.strip() for p in packages.split(","))):
        group, artifact, version = coordinate.split(":")
        jar = ivy / "jars" / f"{group}_{artifact}-{version}.jar"
        if not jar.is_file():
            return None
        jars.append(jar)
    return jars


def build_session(app_name: str = "elt-platform", extra: dict[str, str] | None = None):
    """Return the process's SparkSession, creating it with the lakehouse settings on first call.

    One session serves a whole dbt run and every job in the same process: starting one costs
    seconds, so callers must not stop it between steps.
    """
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    for key, value in {**session_conf(), **(extra or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("ELT_SPARK_LOG_LEVEL", "WARN"))
    return spark

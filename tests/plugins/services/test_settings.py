"""The production-local profile's settings: only compose's variables, no default password, loopback binds."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from dotenv import dotenv_values

from elt_platform.services.objectstore import S3ProxyConfig
from elt_platform.services.settings import (
    SECRET_VARIABLES,
    ProdLocalSettings,
    SettingsError,
    generate_env,
)
from elt_platform.services.stack import thrift_properties
from spark_jobs.session import catalog_conf, jdbc_credentials, jdbc_uri

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def generated(tmp_path: Path) -> dict[str, str]:
    path = generate_env(tmp_path / "prod.env", tmp_path / "home")
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def test_generated_file_is_private_and_reused(tmp_path: Path) -> None:
    path = generate_env(tmp_path / "prod.env", tmp_path / "home")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    before = path.read_text()
    assert generate_env(path, tmp_path / "elsewhere") == path
    assert path.read_text() == before  # the data was created with these secrets: never regenerated


def test_generated_variables_are_all_known_to_env_example(generated: dict[str, str]) -> None:
    example = (REPO / ".env.example").read_text()
    unknown = [name for name in generated if f"{name}=" not in example]
    assert unknown == []


def test_generated_settings_resolve_every_service(generated: dict[str, str]) -> None:
    settings = ProdLocalSettings.from_env(generated)
    assert settings.bind == "127.0.0.1"
    assert settings.postgres.databases == ("airflow", "elt_state", "iceberg_catalog")
    assert (settings.postgres.user, settings.postgres.password) == (
        generated["POSTGRES_USER"],
        generated["POSTGRES_PASSWORD"],
    )
    assert settings.s3_bucket == "lakehouse"
    assert f"http://{settings.s3.host}:{settings.s3.port}" == generated["ELT_S3_ENDPOINT"]
    assert (
        f"spark://{settings.spark_master.host}:{settings.spark_master.port}" == generated["ELT_SPARK_MASTER"]
    )
    assert str(settings.thrift.port) == generated["DBT_SPARK_PORT"]


def test_env_example_as_shipped_is_refused() -> None:
    example = {k: v for k, v in dotenv_values(REPO / ".env.example").items() if v is not None}
    with pytest.raises(SettingsError, match="placeholder or a default password"):
        ProdLocalSettings.from_env(example)


@pytest.mark.parametrize("name", SECRET_VARIABLES)
@pytest.mark.parametrize("value", ["", "<postgres-password>", "airflow", "minioadmin", "short"])
def test_a_default_or_missing_secret_is_refused(generated: dict[str, str], name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        ProdLocalSettings.from_env({**generated, name: value})


def test_catalog_on_another_server_is_refused(generated: dict[str, str]) -> None:
    moved = generated["ELT_STATE_DB_URL"].replace("127.0.0.1", "10.0.0.9")
    with pytest.raises(SettingsError, match="ELT_STATE_DB_URL points at another server"):
        ProdLocalSettings.from_env({**generated, "ELT_STATE_DB_URL": moved})


def test_lake_outside_the_bucket_is_refused(generated: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="ELT_LANDING_URI must be under s3://lakehouse/"):
        ProdLocalSettings.from_env({**generated, "ELT_LANDING_URI": "s3://other/landing"})


def test_spark_mounts_the_postgres_catalog_with_its_credentials(generated: dict[str, str]) -> None:
    conf = catalog_conf(generated)
    prefix = "spark.sql.catalog.lakehouse"
    port = generated["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].rsplit(":", 1)[1].split("/")[0]
    assert conf[f"{prefix}.uri"] == f"jdbc:postgresql://127.0.0.1:{port}/iceberg_catalog"
    assert conf[f"{prefix}.jdbc.user"] == generated["POSTGRES_USER"]
    assert conf[f"{prefix}.jdbc.password"] == generated["POSTGRES_PASSWORD"]
    assert conf[f"{prefix}.io-impl"] == "org.apache.iceberg.aws.s3.S3FileIO"
    assert conf[f"{prefix}.client.region"] == "us-east-1"


@pytest.mark.parametrize(
    ("url", "jdbc", "credentials"),
    [
        ("sqlite:////tmp/catalog.db", "jdbc:sqlite:/tmp/catalog.db", {}),
        (
            "postgresql+psycopg://u%40x:p%2Fw@db:5433/cat",
            "jdbc:postgresql://db:5433/cat",
            {"user": "u@x", "password": "p/w"},
        ),
    ],
)
def test_jdbc_form_of_a_catalog_url(url: str, jdbc: str, credentials: dict[str, str]) -> None:
    assert jdbc_uri(url) == jdbc
    assert jdbc_credentials(url) == credentials


def test_thrift_server_binds_loopback_and_shares_one_session(
    generated: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("elt_platform.services.stack.ensure_packages", lambda packages, ivy: [])
    settings = ProdLocalSettings.from_env(generated)
    properties = dict(line.split(" ", 1) for line in thrift_properties(generated, settings).splitlines())
    assert properties["spark.hadoop.hive.server2.thrift.bind.host"] == "127.0.0.1"
    assert properties["spark.hadoop.hive.server2.thrift.port"] == generated["DBT_SPARK_PORT"]
    assert properties["spark.sql.hive.thriftServer.singleSession"] == "true"
    assert properties["spark.elt.iin_hash_key"] == generated["ELT_PII_HASH_KEY"]
    assert properties["spark.master"] == generated["ELT_SPARK_MASTER"]


def test_no_secret_on_the_object_store_command_line(tmp_path: Path) -> None:
    config = S3ProxyConfig("127.0.0.1", 9000, "lakehouse-key", "s3cr3t-value-123", tmp_path)
    path = config.write_properties()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "s3proxy.credential=s3cr3t-value-123" in path.read_text().splitlines()
    assert "s3proxy.endpoint=http://127.0.0.1:9000" in path.read_text().splitlines()
    assert not [arg for arg in config.command() if "s3cr3t" in arg]

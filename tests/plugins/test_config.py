"""Settings: ``.env`` is read by every entry point, with the process environment taking precedence."""

from __future__ import annotations

import os

import pytest

from elt_platform.cli import main
from elt_platform.config import PlatformConfig, load_env_file


def test_env_file_fills_unset_variables_and_never_overrides(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("ELT_TEST_FROM_FILE=file\nELT_TEST_BOTH=file\n")
    monkeypatch.setenv("ELT_TEST_BOTH", "process")
    monkeypatch.delenv("ELT_TEST_FROM_FILE", raising=False)

    assert load_env_file(env_file) == env_file

    assert os.environ["ELT_TEST_FROM_FILE"] == "file"
    assert os.environ["ELT_TEST_BOTH"] == "process"
    monkeypatch.delenv("ELT_TEST_FROM_FILE")


def test_a_missing_env_file_is_not_an_error(tmp_path):
    assert load_env_file(tmp_path / "absent.env") is None


def test_the_cli_reads_the_env_file_named_by_elt_env_file(tmp_path, monkeypatch, capsys, lakehouse_env):
    # A user who fills .env must not silently run on defaults: the CLI's locations follow it.
    home = tmp_path / "from-env-file"
    env_file = tmp_path / "custom.env"
    env_file.write_text(f"ELT_HOME={home}\n")
    monkeypatch.delenv("ELT_HOME")
    monkeypatch.setenv("ELT_ENV_FILE", str(env_file))

    assert main(["counts", "--source", "alaqan"]) == 0

    assert PlatformConfig.from_env().home == home.resolve()
    assert (home / "catalog.db").exists()
    monkeypatch.delenv("ELT_HOME")


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        (
            "postgresql+psycopg://airflow:s3cr3t@127.0.0.1:5432/cat",
            "postgresql+psycopg://airflow:***@127.0.0.1:5432/cat",
        ),
        ("sqlite:////tmp/catalog.db", "sqlite:////tmp/catalog.db"),
        ("http://iceberg-rest:8181", "http://iceberg-rest:8181"),
    ],
)
def test_the_catalog_uri_is_shown_without_its_password(uri: str, shown: str) -> None:
    assert PlatformConfig.from_env({"ELT_ICEBERG_CATALOG_URI": uri}).display_catalog_uri == shown

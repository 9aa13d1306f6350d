"""The 1C exchange area on S3: credentials, and choosing the area from the URI and the connection.

Runs against moto's S3 server on 127.0.0.1 (``s3_server``), reached through ``pyarrow.fs`` exactly as
MinIO is in production; the discovery/load/move behaviour shared with SFTP is in
``test_exchange_remote.py``.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from elt_platform.sources.commerceml.exchange import ExchangeArea
from elt_platform.sources.commerceml.exchange_s3 import S3Credentials, S3ExchangeArea
from elt_platform.sources.commerceml.extract import load_pending, open_exchange

ACCESS_KEY = "AKIAONECTEST"
SECRET_KEY = "onec-secret-9f2c7e"  # must never show up in logs, reprs, summaries or errors


@pytest.mark.parametrize(
    "connection",
    [
        SimpleNamespace(login=ACCESS_KEY, password=SECRET_KEY, extra_dejson={"region_name": "us-east-1"}),
        SimpleNamespace(
            login=None,
            password=None,
            extra=json.dumps({"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY}),
        ),
    ],
    ids=["login-password", "provider-extras"],
)
def test_credentials_come_from_the_connection_and_stay_out_of_reprs(connection: SimpleNamespace) -> None:
    credentials = S3Credentials.from_connection(connection)
    assert (credentials.access_key, credentials.secret_key) == (ACCESS_KEY, SECRET_KEY)
    assert SECRET_KEY not in repr(credentials)


def test_open_exchange_reaches_s3_with_the_connection(s3_server: SimpleNamespace) -> None:
    connection = SimpleNamespace(
        login=ACCESS_KEY,
        password=SECRET_KEY,
        extra_dejson={"endpoint_url": s3_server.endpoint, "region_name": "us-east-1"},
    )
    area = open_exchange(f"s3://{s3_server.bucket}/via-connection/", connection=connection)
    assert isinstance(area, S3ExchangeArea) and area.root == f"{s3_server.bucket}/via-connection"
    assert area.pending("catalog", settle_seconds=0) == []


@pytest.mark.parametrize("form", ["path", "file-uri"])
def test_a_local_uri_keeps_the_local_area(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str) -> None:
    monkeypatch.setenv("ELT_ONEC_EXCHANGE_DIR", str(tmp_path / "ignored"))
    monkeypatch.setenv("ELT_ONEC_EXCHANGE_URI", str(tmp_path) if form == "path" else tmp_path.as_uri())
    assert open_exchange() == ExchangeArea(tmp_path.resolve())


def test_the_local_dir_variable_still_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELT_ONEC_EXCHANGE_DIR", str(tmp_path))
    assert ExchangeArea.from_env() == open_exchange() == ExchangeArea(tmp_path.resolve())


def test_the_dag_entry_point_signs_with_the_onec_exchange_connection(
    s3_server: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The connection as ``.env.example`` declares it, with the placeholders filled in."""
    caplog.set_level(logging.DEBUG)
    example = Path(__file__).resolve().parents[4] / ".env.example"
    line = next(x for x in example.read_text().splitlines() if x.startswith("AIRFLOW_CONN_ONEC_EXCHANGE="))
    connection = json.loads(line.split("=", 1)[1].strip("'"))
    connection |= {"login": ACCESS_KEY, "password": SECRET_KEY}
    connection["extra"]["endpoint_url"] = s3_server.endpoint
    monkeypatch.setenv("AIRFLOW_CONN_ONEC_EXCHANGE", json.dumps(connection))
    monkeypatch.setenv("ELT_ONEC_EXCHANGE_URI", f"s3://{s3_server.bucket}/{uuid.uuid4().hex[:12]}")

    assert load_pending("stocks", run_id="entry", settle_seconds=0)["packages"] == []
    assert "no 'onec_exchange' connection" not in caplog.text
    assert SECRET_KEY not in caplog.text

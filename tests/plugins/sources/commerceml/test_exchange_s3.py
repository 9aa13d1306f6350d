"""The 1C exchange area on S3: discovery, load through the local loader, archive/failed moves.

Runs against a real S3 API: moto's server on 127.0.0.1 (one per session, one prefix per test),
reached through ``pyarrow.fs`` exactly as MinIO is in production. S3 keeps no settable mtimes, so the
quiet period is exercised by moving ``now`` instead of ageing objects.
"""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from pyarrow import fs

from elt_platform.sources.commerceml.exchange import ExchangeArea
from elt_platform.sources.commerceml.exchange_s3 import S3Credentials, S3ExchangeArea
from elt_platform.sources.commerceml.extract import load_pending, open_exchange
from elt_platform.sources.commerceml.loader import PackageLoadError
from elt_platform.sources.commerceml.settings import MAX_ATTEMPTS

BUCKET = "onec-exchange"
ACCESS_KEY = "AKIAONECTEST"
SECRET_KEY = "onec-secret-9f2c7e"  # must never show up in logs, reprs, summaries or errors
SETTLE = 120
XML = b"<?xml version='1.0' encoding='UTF-8'?><x/>"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:<port>`` of a moto S3 server holding :data:`BUCKET`."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    creator = fs.S3FileSystem(
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        endpoint_override=f"{host}:{port}",
        scheme="http",
        region="us-east-1",
        allow_bucket_creation=True,
    )
    creator.create_dir(BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture
def credentials(s3_endpoint: str) -> S3Credentials:
    return S3Credentials(ACCESS_KEY, SECRET_KEY, endpoint_url=s3_endpoint, region="us-east-1")


@pytest.fixture
def s3_area(credentials: S3Credentials, tmp_path: Path) -> S3ExchangeArea:
    """A fresh ``s3://onec-exchange/<random>/`` area; downloads go under ``tmp_path/staging``."""
    uri = f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}/onec"
    return S3ExchangeArea.from_uri(uri, credentials, staging_root=tmp_path / "staging")


def put(area: S3ExchangeArea, relative: str, data: bytes) -> None:
    with area.filesystem.open_output_stream(f"{area.root}/{relative}") as out:
        out.write(data)


def put_package(area: S3ExchangeArea, name: str, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        put(area, f"incoming/{name}/{relative}", data)


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for relative, data in files.items():
            archive.writestr(relative, data)
    return buffer.getvalue()


def keys(area: S3ExchangeArea, folder: str) -> list[str]:
    selector = fs.FileSelector(f"{area.root}/{folder}", recursive=True, allow_not_found=True)
    infos = area.filesystem.get_file_info(selector)
    return sorted(i.path[len(area.root) + 1 :] for i in infos if i.type == fs.FileType.File)


def test_pending_applies_the_completeness_rule_to_objects(s3_area: S3ExchangeArea) -> None:
    area = s3_area
    put_package(area, "settled", {"import.xml": XML})
    put_package(area, "marked", {"import.xml": XML, ".complete": b""})
    put_package(area, "uploading", {"import.xml": XML, "offers.xml.part": XML})
    put_package(area, "no_xml", {"readme.txt": b"no xml"})
    put_package(area, "stock", {"rests.xml": XML, "prices.xml": XML})
    put(area, "incoming/a.zip", zipped({"import.xml": XML}))
    put(area, "incoming/half.zip", zipped({"import.xml": XML})[:40])  # no central directory yet
    put(area, "incoming/m.zip", zipped({"offers.xml": XML}))
    put(area, "incoming/m.zip.complete", b"")
    put(area, "incoming/loose.xml", XML)
    put(area, "incoming/.hidden/import.xml", XML)

    later = time.time() + SETTLE + 5
    settled = {p.name for p in area.pending("catalog", settle_seconds=SETTLE, now=later)}
    fresh = {p.name for p in area.pending("catalog", settle_seconds=SETTLE, now=time.time())}

    assert settled == {"settled", "marked", "a.zip", "m.zip"}
    assert fresh == {"marked", "m.zip"}  # the marker wins over the quiet period
    assert [p.name for p in area.pending("stocks", settle_seconds=SETTLE, now=later)] == ["stock"]


def test_loaded_package_is_archived_and_a_failing_one_moved_to_failed(
    cml: Path, lakehouse_env, s3_area: S3ExchangeArea, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    area = s3_area
    good = cml / "irpsv_umi-cms_cml2.04"
    put_package(
        area,
        "a_catalog",
        {p.relative_to(good).as_posix(): p.read_bytes() for p in good.rglob("*") if p.is_file()},
    )
    time.sleep(1.1)  # S3 mtimes have one-second resolution: b_broken is the newer package
    broken_source = cml / "turumburumstudio_cml3.1"
    broken = {
        p.relative_to(broken_source).as_posix(): p.read_bytes()
        for p in broken_source.rglob("*")
        if p.is_file()
    }
    broken["rests.xml"] = broken["rests.xml"][:5000]
    put_package(area, "b_broken", {**broken, ".complete": b""})

    errors = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        with pytest.raises(PackageLoadError, match=r"rests\.xml: malformed XML") as info:
            load_pending("catalog", run_id=f"run-{attempt}", area=area, settle_seconds=0)
        assert info.value.attempts == attempt
        assert info.value.source == f"{area.uri}/incoming/b_broken"
        errors.append(str(info.value))
        if attempt == 1:  # the good package went first, was loaded from its download and archived
            archived = keys(area, "archive")
            assert archived and all("/a_catalog/" in k for k in archived)
            assert len(archived) == len(list(good.rglob("*.xml")))

    assert keys(area, "incoming") == []
    assert "failed/b_broken/rests.xml" in keys(area, "failed")
    with area.filesystem.open_input_stream(f"{area.failed_dir}/b_broken.error.txt") as handle:
        assert "after 3 attempts" in handle.read().decode("utf-8")
    assert not any((tmp_path / "staging").iterdir())  # downloads are removed
    assert load_pending("catalog", run_id="run-4", area=area, settle_seconds=0)["packages"] == []

    texts = [caplog.text, repr(area), repr(area.filesystem), *errors]
    assert not [t for t in texts if SECRET_KEY in t or ACCESS_KEY in t]


def test_loaded_zip_records_its_s3_uri(
    cml: Path, lakehouse_env, s3_area: S3ExchangeArea, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    source = cml / "argentcrusade_fixtures"
    put(s3_area, "incoming/argent.zip", zipped({p.name: p.read_bytes() for p in source.glob("*.xml")}))

    summary = load_pending("catalog", run_id="zip", area=s3_area, settle_seconds=0)

    (package,) = summary["packages"]
    assert package["source"] == f"{s3_area.uri}/incoming/argent.zip"
    assert package["package_name"] == "argent.zip"
    assert package["counts"]["groups"] == 12
    assert package["archived_to"].startswith(f"{s3_area.uri}/archive/")
    assert keys(s3_area, "incoming") == []
    assert SECRET_KEY not in json.dumps(summary) + caplog.text


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


def test_open_exchange_reaches_s3_with_the_connection(s3_endpoint: str) -> None:
    connection = SimpleNamespace(
        login=ACCESS_KEY,
        password=SECRET_KEY,
        extra_dejson={"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
    )
    area = open_exchange(f"s3://{BUCKET}/via-connection/", connection=connection)
    assert isinstance(area, S3ExchangeArea) and area.root == f"{BUCKET}/via-connection"
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
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The connection as ``.env.example`` declares it, with the placeholders filled in."""
    caplog.set_level(logging.DEBUG)
    example = Path(__file__).resolve().parents[4] / ".env.example"
    line = next(x for x in example.read_text().splitlines() if x.startswith("AIRFLOW_CONN_ONEC_EXCHANGE="))
    connection = json.loads(line.split("=", 1)[1].strip("'"))
    connection |= {"login": ACCESS_KEY, "password": SECRET_KEY}
    connection["extra"]["endpoint_url"] = s3_endpoint
    monkeypatch.setenv("AIRFLOW_CONN_ONEC_EXCHANGE", json.dumps(connection))
    monkeypatch.setenv("ELT_ONEC_EXCHANGE_URI", f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}")

    assert load_pending("stocks", run_id="entry", settle_seconds=0)["packages"] == []
    assert "no 'onec_exchange' connection" not in caplog.text
    assert SECRET_KEY not in caplog.text

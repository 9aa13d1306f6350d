"""The 1C exchange area on a remote store: discovery, load through the local loader, archive/failed moves.

Each test runs once per store against a real server on 127.0.0.1 (``remote`` fixture: moto's S3, an
asyncssh SFTP server). Neither keeps settable mtimes through the API, so the quiet period is exercised
by moving ``now`` instead of ageing files.
"""

from __future__ import annotations

import io
import json
import logging
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from elt_platform.sources.commerceml.exchange_remote import RemoteExchangeArea
from elt_platform.sources.commerceml.extract import load_pending
from elt_platform.sources.commerceml.loader import PackageLoadError
from elt_platform.sources.commerceml.settings import MAX_ATTEMPTS

SETTLE = 120
XML = b"<?xml version='1.0' encoding='UTF-8'?><x/>"


def put(area: RemoteExchangeArea, relative: str, data: bytes) -> None:
    area.files.write_bytes(f"{area.root}/{relative}", data)


def put_package(area: RemoteExchangeArea, name: str, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        put(area, f"incoming/{name}/{relative}", data)


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for relative, data in files.items():
            archive.writestr(relative, data)
    return buffer.getvalue()


def keys(area: RemoteExchangeArea, folder: str) -> list[str]:
    return sorted(f.path[len(area.root) + 1 :] for f in area.files.list_files(f"{area.root}/{folder}"))


def read(area: RemoteExchangeArea, relative: str) -> str:
    with area.files.open_read(f"{area.root}/{relative}") as handle:
        return handle.read().decode("utf-8")


def test_pending_applies_the_completeness_rule(remote: SimpleNamespace) -> None:
    area = remote.area
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
    cml: Path, lakehouse_env, remote: SimpleNamespace, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    area = remote.area
    good = cml / "irpsv_umi-cms_cml2.04"
    put_package(
        area,
        "a_catalog",
        {p.relative_to(good).as_posix(): p.read_bytes() for p in good.rglob("*") if p.is_file()},
    )
    time.sleep(1.1)  # mtimes have one-second resolution: b_broken is the newer package
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
    assert not area.files.exists(f"{area.incoming}/b_broken")  # no empty folder left behind
    assert "failed/b_broken/rests.xml" in keys(area, "failed")
    assert "after 3 attempts" in read(area, "failed/b_broken.error.txt")
    assert not any((tmp_path / "staging").iterdir())  # downloads are removed
    assert load_pending("catalog", run_id="run-4", area=area, settle_seconds=0)["packages"] == []

    texts = [caplog.text, repr(area), repr(area.files), *errors]
    assert not [t for t in texts if remote.secret in t]


def test_loaded_zip_records_its_uri(
    cml: Path, lakehouse_env, remote: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    area = remote.area
    source = cml / "argentcrusade_fixtures"
    put(area, "incoming/argent.zip", zipped({p.name: p.read_bytes() for p in source.glob("*.xml")}))
    put(area, "incoming/argent.zip.complete", b"")

    summary = load_pending("catalog", run_id="zip", area=area, settle_seconds=0)

    (package,) = summary["packages"]
    assert package["source"] == f"{area.uri}/incoming/argent.zip"
    assert package["package_name"] == "argent.zip"
    assert package["counts"]["groups"] == 12
    assert package["archived_to"].startswith(f"{area.uri}/archive/")
    assert keys(area, "incoming") == []
    assert remote.secret not in json.dumps(summary) + caplog.text

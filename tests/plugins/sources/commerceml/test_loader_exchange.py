"""The 1C exchange area: when a package counts as complete, which DAG takes it, what happens after.

Completeness and routing are tested on synthetic folders with controlled mtimes; ``load_pending``
(the DAG tasks' body) runs against a throw-away embedded lakehouse under ``ELT_HOME``.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from elt_platform.sources.commerceml.exchange import ExchangeArea, is_complete, route
from elt_platform.sources.commerceml.extract import load_pending
from elt_platform.sources.commerceml.loader import PackageLoadError
from elt_platform.sources.commerceml.settings import MAX_ATTEMPTS

NOW = 1_700_000_000.0
SETTLE = 120


def make_package(root: Path, name: str, files: dict[str, bytes], *, age: float = 3600) -> Path:
    package = root / name
    for relative, data in files.items():
        path = package / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for path in [package, *package.rglob("*")]:
        os.utime(path, (NOW - age, NOW - age))
    return package


def make_zip(root: Path, name: str, files: dict[str, bytes], *, age: float = 3600) -> Path:
    path = root / name
    with zipfile.ZipFile(path, "w") as archive:
        for relative, data in files.items():
            archive.writestr(relative, data)
    os.utime(path, (NOW - age, NOW - age))
    return path


XML = b"<?xml version='1.0' encoding='UTF-8'?><x/>"


@pytest.mark.parametrize(
    ("files", "age", "complete"),
    [
        ({"import.xml": XML}, 3600, True),
        ({"import.xml": XML}, 30, False),  # still within the quiet period
        ({"import.xml": XML, ".complete": b""}, 30, True),  # the marker wins over the quiet period
        ({"import.xml": XML, "offers.xml.part": XML}, 3600, False),  # an upload in progress
        ({"readme.txt": b"no xml"}, 3600, False),
    ],
    ids=["settled", "fresh", "marker", "partial-upload", "no-xml"],
)
def test_directory_completeness(tmp_path: Path, files: dict[str, bytes], age: float, complete: bool) -> None:
    package = make_package(tmp_path, "pkg", files, age=age)
    assert is_complete(package, settle_seconds=SETTLE, now=NOW) is complete


def test_zip_is_complete_only_once_readable_and_settled(tmp_path: Path) -> None:
    settled = make_zip(tmp_path, "a.zip", {"import.xml": XML})
    fresh = make_zip(tmp_path, "b.zip", {"import.xml": XML}, age=10)
    half_written = tmp_path / "c.zip"
    half_written.write_bytes(settled.read_bytes()[:40])  # no central directory yet
    os.utime(half_written, (NOW - 3600, NOW - 3600))
    marked = make_zip(tmp_path, "d.zip", {"import.xml": XML}, age=10)
    (tmp_path / "d.zip.complete").write_bytes(b"")

    assert [
        is_complete(p, settle_seconds=SETTLE, now=NOW) for p in (settled, fresh, half_written, marked)
    ] == [
        True,
        False,
        False,
        True,
    ]


@pytest.mark.parametrize(
    ("names", "kind"),
    [
        (["rests___1af6.xml", "prices___d66a.xml"], "stocks"),
        (["goods/1/rests.xml", "goods/1/prices.xml", "import_files/a.jpg"], "stocks"),
        (["rests.xml", "offers.xml"], "catalog"),
        (["import.xml", "offers.xml", "prices.xml", "rests.xml"], "catalog"),
        (["data.xml"], "catalog"),
        ([], "catalog"),
    ],
    ids=["ut11-split", "bitrix-folders", "rests-and-offers", "full-exchange", "unknown-name", "empty"],
)
def test_routing_by_file_names(names: list[str], kind: str) -> None:
    assert route(names) == kind


def test_pending_lists_complete_packages_of_a_kind_oldest_first(tmp_path: Path) -> None:
    area = ExchangeArea(tmp_path)
    area.ensure()
    make_package(area.incoming, "newer", {"import.xml": XML}, age=600)
    make_package(area.incoming, "older", {"import.xml": XML}, age=7200)
    make_package(area.incoming, "stock", {"rests.xml": XML}, age=600)
    make_package(area.incoming, "uploading", {"import.xml": XML}, age=5)
    (area.incoming / "loose.xml").write_bytes(XML)

    assert [p.name for p in area.pending("catalog", settle_seconds=SETTLE, now=NOW)] == ["older", "newer"]
    assert [p.name for p in area.pending("stocks", settle_seconds=SETTLE, now=NOW)] == ["stock"]


@pytest.fixture
def lakehouse(lakehouse_env, tmp_path: Path) -> ExchangeArea:
    """An exchange area beside the empty lakehouse of ``tests/conftest.py``."""
    area = ExchangeArea(tmp_path / "exchange")
    area.ensure()
    return area


def fixture_files(source: Path) -> dict[str, bytes]:
    return {p.relative_to(source).as_posix(): p.read_bytes() for p in source.rglob("*") if p.is_file()}


def test_loaded_packages_are_archived_and_a_failing_one_quarantined_after_max_attempts(
    cml: Path, lakehouse: ExchangeArea
) -> None:
    area = lakehouse
    make_package(area.incoming, "a_catalog", fixture_files(cml / "irpsv_umi-cms_cml2.04"), age=7200)
    broken = fixture_files(cml / "turumburumstudio_cml3.1")
    broken["rests.xml"] = broken["rests.xml"][:5000]
    make_package(area.incoming, "b_broken", broken, age=3600)

    for attempt in range(1, MAX_ATTEMPTS + 1):
        with pytest.raises(PackageLoadError, match=r"rests\.xml: malformed XML") as info:
            load_pending("catalog", run_id=f"run-{attempt}", area=area, settle_seconds=SETTLE)
        assert info.value.attempts == attempt
        if attempt == 1:  # the good package went first and was archived
            assert [p.name for p in area.archive_dir.glob("*/*")] == ["a_catalog"]

    assert not any(area.incoming.iterdir())
    assert (area.failed_dir / "b_broken").is_dir()
    assert "after 3 attempts" in (area.failed_dir / "b_broken.error.txt").read_text(encoding="utf-8")
    assert load_pending("catalog", run_id="run-4", area=area, settle_seconds=SETTLE)["packages"] == []


def test_a_manual_path_outside_the_area_is_loaded_and_left_in_place(
    cml: Path, lakehouse: ExchangeArea
) -> None:
    source = cml / "argentcrusade_fixtures"
    summary = load_pending("catalog", run_id="manual", path=str(source), area=lakehouse)
    assert [p["package_name"] for p in summary["packages"]] == ["argentcrusade_fixtures"]
    assert summary["packages"][0]["counts"]["groups"] == 12
    assert "archived_to" not in summary["packages"][0] and source.is_dir()

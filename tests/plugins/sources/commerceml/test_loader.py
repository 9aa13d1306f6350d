"""1C package loader against a throw-away pyiceberg SQL catalog (no Spark, no Airflow).

Tests take the ``catalog`` fixture of ``tests/conftest.py`` (an empty embedded lakehouse per test).
Expected counts come from :func:`count_entities` — the parser's own stream, itself checked against an
ElementTree count in ``test_package.py`` — so these tests pin what the loader adds: every parsed
record reaches its table exactly once per package, a failing package changes no table (snapshot ids
compared before/after), a replay converges, the stocks fast path touches only its two tables.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import EqualTo

from elt_platform.bronze import transaction as transaction_module
from elt_platform.sources.commerceml.loader import (
    PackageLoadError,
    journal_row,
    load_package,
    package_kind,
)
from elt_platform.sources.commerceml.package import build_manifest, count_entities
from elt_platform.sources.commerceml.settings import BRONZE_ENTITIES, STOCK_ENTITIES

BITRIX = "irpsv_bitrix-module-6_cml3.1"
TABLES = ("packages", *BRONZE_ENTITIES)


def copy_package(source: Path, target: Path, only: tuple[str, ...] | None = None) -> Path:
    """Copy a fixture package byte by byte (the shared fixtures are read-only; modes are not copied)."""
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source).as_posix()
        if path.is_file() and (only is None or relative in only):
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(path.read_bytes())
    return target


def load(path: Path, catalog: SqlCatalog, tmp_path: Path, **kwargs):
    return load_package(path, run_id="test-run", catalog=catalog, staging_root=tmp_path / "staging", **kwargs)


def rows(catalog: SqlCatalog, entity: str, package_id: str | None = None) -> list[dict]:
    table = catalog.load_table(f"bronze.onec_{entity}")
    if table.current_snapshot() is None:
        return []
    scan = table.scan(row_filter=EqualTo("package_id", package_id)) if package_id else table.scan()
    return scan.to_arrow().to_pylist()


def snapshot_ids(catalog: SqlCatalog) -> dict[str, int | None]:
    out = {}
    for name in TABLES:
        try:
            snapshot = catalog.load_table(f"bronze.onec_{name}").current_snapshot()
        except NoSuchTableError:
            out[name] = "absent"
            continue
        out[name] = snapshot.snapshot_id if snapshot else None
    return out


@pytest.fixture(scope="module")
def bitrix(cml: Path, tmp_path_factory: pytest.TempPathFactory):
    """The Bitrix 3.1 export loaded once into a fresh catalog (read-only for the tests using it)."""
    tmp = tmp_path_factory.mktemp("bitrix")
    catalog = SqlCatalog("test", uri=f"sqlite:///{tmp / 'c.db'}", warehouse=(tmp / "warehouse").as_uri())
    return catalog, load(cml / BITRIX, catalog, tmp)


def test_every_parsed_record_reaches_its_table_with_lineage(cml: Path, bitrix) -> None:
    catalog, result = bitrix
    expected = count_entities(cml / BITRIX)

    assert result.status == "loaded" and result.package_id == build_manifest(cml / BITRIX).package_id
    for entity in BRONZE_ENTITIES:
        written = rows(catalog, entity)
        assert len(written) == expected[entity] == result.counts[entity], entity
        assert {r["package_id"] for r in written} <= {result.package_id}
        assert all(r["source_file"] and r["_loaded_at"] and r["_run_id"] == "test-run" for r in written)
        assert {(r["_batch_id"], r["_source_uri"]) for r in written} <= {
            (result.package_id, str(cml / BITRIX))
        }
    offers = rows(catalog, "offers")
    assert sorted(r["record_no"] for r in offers) == list(range(1, len(offers) + 1))
    stock = next(r for r in rows(catalog, "stocks") if r["warehouse_id"])
    assert stock["source_file"] == "goods/1/rests.xml" and stock["source_line"] > 1
    requisites = [json.loads(r["requisites"]) for r in rows(catalog, "products")]
    assert all(isinstance(r, dict) for r in requisites)  # complex fields are JSON strings
    summary = catalog.load_table("bronze.onec_offers").current_snapshot().summary
    assert summary["elt.onec_package_id"] == result.package_id and summary["elt.source"] == "onec"


def test_journal_records_files_checksums_counts_and_status(cml: Path, bitrix) -> None:
    catalog, result = bitrix
    manifest = build_manifest(cml / BITRIX)

    row = journal_row(result.package_id, catalog.load_table("bronze.onec_packages"))
    assert row["status"] == "loaded" and row["error"] is None and row["attempts"] == 1
    assert (row["schema_version"], row["contains_only_changes"], row["is_full"]) == ("3.1", True, False)
    files = json.loads(row["files"])
    assert [(f["name"], f["size"], f["sha256"]) for f in files] == [
        (f.name, f.size, f.sha256) for f in manifest.files
    ]
    assert files[0]["record_counts"]["file_headers"] == 1
    assert json.loads(row["entity_counts"]) == result.counts
    assert row["total_bytes"] == sum(f.size for f in manifest.files)
    assert row["generated_at"].isoformat() == "2017-08-24T13:51:03"  # the latest file
    assert json.loads(row["table_snapshots"])["bronze.onec_stocks"] == snapshot_ids(catalog)["stocks"]


def test_replaying_a_package_leaves_counts_unchanged(cml: Path, catalog: SqlCatalog, tmp_path: Path) -> None:
    package = copy_package(cml / "carono_cml2.07", tmp_path / "carono")
    first = load(package, catalog, tmp_path)
    before = {entity: len(rows(catalog, entity)) for entity in BRONZE_ENTITIES}

    second = load(package, catalog, tmp_path)

    assert second.package_id == first.package_id and second.counts == first.counts
    assert {entity: len(rows(catalog, entity)) for entity in BRONZE_ENTITIES} == before
    journal = rows(catalog, "packages")
    assert len(journal) == 1 and journal[0]["attempts"] == 2 and journal[0]["status"] == "loaded"


def test_a_corrupt_file_fails_the_package_and_changes_no_table(
    cml: Path, catalog: SqlCatalog, tmp_path: Path
) -> None:
    load(cml / "carono_cml2.07", catalog, tmp_path)  # bronze already holds an earlier package
    package = copy_package(cml / BITRIX, tmp_path / "broken")
    rests = package / "goods" / "1" / "rests.xml"
    data = rests.read_bytes()
    rests.write_bytes(data[: data.index("<Остаток>".encode(), len(data) // 2) + 40])
    before = snapshot_ids(catalog)
    del before["packages"]

    with pytest.raises(PackageLoadError, match=r"goods/1/rests\.xml: malformed XML at line \d+") as info:
        load(package, catalog, tmp_path)

    after = snapshot_ids(catalog)
    assert {k: v for k, v in after.items() if k != "packages"} == before
    assert "after <КоммерческаяИнформация/ПакетПредложений/Предложения/Предложение" in str(info.value)
    row = journal_row(info.value.package_id, catalog.load_table("bronze.onec_packages"))
    assert row["status"] == "failed" and "rests.xml: malformed XML at line" in row["error"]
    assert not rows(catalog, "offers", info.value.package_id)


def test_a_commit_failing_midway_rolls_back_every_committed_table(
    cml: Path, catalog: SqlCatalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    earlier = load(cml / "irpsv_umi-cms_cml2.04", catalog, tmp_path)  # some tables have history, some not
    before = snapshot_ids(catalog)
    real = transaction_module.replace_slice  # the one function every entity commit goes through

    def failing(table, data, *args, **kwargs):
        if table.name()[-1] == "onec_prices":
            raise OSError("disk full while writing prices")
        return real(table, data, *args, **kwargs)

    monkeypatch.setattr(transaction_module, "replace_slice", failing)
    with pytest.raises(PackageLoadError, match="disk full") as info:
        load(cml / BITRIX, catalog, tmp_path)

    after = snapshot_ids(catalog)
    for entity in BRONZE_ENTITIES:
        if before[entity] is not None:  # had history: exactly the pre-package snapshot again
            assert after[entity] == before[entity], entity
        assert not rows(catalog, entity, info.value.package_id), entity
    assert len(rows(catalog, "offers")) == earlier.counts["offers"]
    assert (
        journal_row(info.value.package_id, catalog.load_table("bronze.onec_packages"))["status"] == "failed"
    )

    monkeypatch.setattr(transaction_module, "replace_slice", real)
    retried = load(cml / BITRIX, catalog, tmp_path)  # a failed package can be retried
    assert retried.attempts == 2 and len(rows(catalog, "offers", retried.package_id)) == 86


def test_rule_breaking_records_are_loaded_flagged_with_the_reason(
    cml: Path, catalog: SqlCatalog, tmp_path: Path
) -> None:
    package = copy_package(cml / BITRIX, tmp_path / "rests-only", only=("goods/1/rests.xml",))
    result = load(package, catalog, tmp_path, mode="stocks")  # no catalog yet: nothing is known

    stocks = rows(catalog, "stocks")
    assert len(stocks) == count_entities(package)["stocks"] == 1032
    assert {r["_issues"] for r in stocks} == {"unknown_offer;unknown_warehouse"}
    assert result.issues["stocks"] == {"unknown_offer": 1032, "unknown_warehouse": 1032}

    load(cml / BITRIX, catalog, tmp_path)  # the catalog declares offers and warehouses
    replay = load(package, catalog, tmp_path, mode="stocks")
    assert replay.issues == {} and {r["_issues"] for r in rows(catalog, "stocks", replay.package_id)} == {
        None
    }


def test_stocks_mode_writes_only_prices_and_stocks(cml: Path, catalog: SqlCatalog, tmp_path: Path) -> None:
    package = copy_package(cml / BITRIX, tmp_path / "fast", only=("goods/1/rests.xml", "goods/1/prices.xml"))
    assert package_kind(build_manifest(package)) == "stocks"

    result = load(package, catalog, tmp_path, mode="stocks")

    assert set(result.counts) == set(STOCK_ENTITIES)
    assert (result.counts["prices"], result.counts["stocks"]) == (86, 1032)
    assert set(result.snapshots) == {"bronze.onec_prices", "bronze.onec_stocks"}
    assert snapshot_ids(catalog)["offers"] == "absent"


def test_stocks_mode_refuses_a_catalog_package(cml: Path, catalog: SqlCatalog, tmp_path: Path) -> None:
    with pytest.raises(PackageLoadError, match=r"not a stocks package: files with roles \[.*goods"):
        load(cml / BITRIX, catalog, tmp_path, mode="stocks")
    assert rows(catalog, "stocks") == []


def test_a_failed_replay_leaves_a_loaded_package_loaded(
    cml: Path, catalog: SqlCatalog, tmp_path: Path
) -> None:
    first = load(cml / "irpsv_umi-cms_cml2.04", catalog, tmp_path)
    before = snapshot_ids(catalog)

    with pytest.raises(PackageLoadError, match="not a stocks package"):
        load(cml / "irpsv_umi-cms_cml2.04", catalog, tmp_path, mode="stocks")

    row = journal_row(first.package_id, catalog.load_table("bronze.onec_packages"))
    assert (row["status"], row["attempts"]) == ("loaded", 2) and "not a stocks package" in row["error"]
    assert json.loads(row["table_snapshots"]) == first.snapshots
    assert {k: v for k, v in snapshot_ids(catalog).items() if k != "packages"} == {
        k: v for k, v in before.items() if k != "packages"
    }


def _cml(body: str, *, delta: str | None) -> bytes:
    flag = "" if delta is None else f' СодержитТолькоИзменения="{delta}"'
    body = body.replace("<ПакетПредложений>", f"<ПакетПредложений{flag}>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<КоммерческаяИнформация ВерсияСхемы="2.05" '
        f'ДатаФормирования="2016-01-01T10:00:00">{body}</КоммерческаяИнформация>'
    ).encode()


OFFERS_ONLY = (
    "<Классификатор><Ид>cl</Ид><Группы><Группа><Ид>g1</Ид><Наименование>Обувь</Наименование></Группа>"
    "</Группы></Классификатор>"
    "<ПакетПредложений><Ид>pk#</Ид><ТипыЦен><ТипЦены><Ид>t1</Ид><Наименование>Розница</Наименование>"
    "</ТипЦены></ТипыЦен><Предложения>"
    "<Предложение><Ид>p1</Ид><Наименование>Кеды</Наименование><Группы><Ид>g1</Ид></Группы></Предложение>"
    "<Предложение><Ид>p1#c1</Ид><Наименование>Кеды (41)</Наименование><Цены><Цена><ИдТипаЦены>t1</ИдТипаЦены>"
    "<ЦенаЗаЕдиницу>3500</ЦенаЗаЕдиницу></Цена></Цены><Количество>2</Количество></Предложение>"
    "<Предложение><Ид>p9#c1</Ид><Наименование>Сирота</Наименование></Предложение>"
    "</Предложения></ПакетПредложений>"
)


@pytest.mark.parametrize(
    ("delta", "is_full"),
    [("true", False), ("false", True), (None, True)],
    ids=["declared-delta", "declared-full", "no-attribute-is-full"],
)
def test_a_package_is_full_unless_it_declares_only_changes(
    catalog: SqlCatalog, tmp_path: Path, delta: str | None, is_full: bool
) -> None:
    package = tmp_path / "package"
    package.mkdir()
    (package / "offers.xml").write_bytes(_cml(OFFERS_ONLY, delta=delta))
    result = load(package, catalog, tmp_path)
    row = journal_row(result.package_id, catalog.load_table("bronze.onec_packages"))
    expected_flag = None if delta is None else delta == "true"
    assert (row["is_full"], row["contains_only_changes"]) == (is_full, expected_flag)
    assert (result.is_full, result.contains_only_changes) == (is_full, expected_flag)


def test_an_offers_only_export_keeps_groups_and_is_its_own_product_master(
    catalog: SqlCatalog, tmp_path: Path
) -> None:
    package = tmp_path / "package"
    package.mkdir()
    (package / "offers.xml").write_bytes(_cml(OFFERS_ONLY, delta=None))
    result = load(package, catalog, tmp_path)
    offers = {r["id"]: r for r in rows(catalog, "offers", result.package_id)}
    assert {i: json.loads(r["group_ids"]) for i, r in offers.items()} == {
        "p1": ["g1"],
        "p1#c1": [],
        "p9#c1": [],
    }
    # p1 names its groups: it describes product p1, so its characteristic offer has a product;
    # p9#c1 has neither goods nor a describing offer.
    assert {i: r["_issues"] for i, r in offers.items()} == {
        "p1": None,
        "p1#c1": None,
        "p9#c1": "product_not_found",
    }
    assert [r["_issues"] for r in rows(catalog, "prices", result.package_id)] == [None]

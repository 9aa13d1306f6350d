"""End to end for 1C: exchange area → extract DAGs (``dag.test()``) → bronze → dbt silver/gold.

Packages are built from the real fixtures (``../shared/fixtures/commerceml``) in a temporary exchange
area; every expected number is computed here from the XML with ``xml.etree.ElementTree`` (not the
parser under test). The story, in 1C's exchange order:

1. ``full1`` — the carono 2.07 export (full: ``СодержитТолькоИзменения="false"``), via ``extract_onec``;
2. ``full2`` — the same export a day later without offer X (full again: X must be deactivated);
3. ``delta3`` — its offers file a day later again, without X and Y, flagged as a delta (Y stays active);
4. ``bitrix`` — the Bitrix 3.1 export (12 warehouses, per-warehouse rests), via ``extract_onec``;
5. ``rests5`` — a stocks-only package (one quantity changed, a later date), via ``extract_onec_stocks``;
6. ``prices6`` — a prices-only package (one price changed, later again), via ``load-1c`` (the CLI);
0. ``ut103`` — an УТ 10.3-style offers-only export written here (no ``Каталог``, no delta attribute:
   full), dated before all others: the plain-id parent offers carry the groups and the unit
   (attributes only, as in 2.07), their ``uuid#uuid`` children are the SKUs;
then a replay of ``full1`` (counts unchanged), a package with a truncated file (no table changes), and
one ``transform_catalog`` run. One Spark session (dbt) for the whole module.
"""

from __future__ import annotations

import json
import os
import re
import time
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.spark]

FIXTURES = (Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "commerceml").resolve()
CARONO, BITRIX = FIXTURES / "carono_cml2.07", FIXTURES / "irpsv_bitrix-module-6_cml3.1"
X = "bd72d910-55bc-11d9-848a-00112f43529a#e5a4c316-a659-11dd-acee-0015e9b8c48d"  # left out of full2
Y = "bd72d913-55bc-11d9-848a-00112f43529a#90c5544a-d3a8-11e4-9423-e0cb4ed5eed4"  # left out of delta3
RESTS_DATE, PRICES_DATE = "2017-09-01T10:00:00", "2017-09-02T10:00:00"
UT103 = """<?xml version="1.0" encoding="UTF-8"?>
<КоммерческаяИнформация ВерсияСхемы="2.05" ДатаФормирования="2016-01-01T10:00:00">
<Классификатор><Ид>ut-cl</Ид><Наименование>Классификатор (Номенклатура)</Наименование><Группы>
 <Группа><Ид>ut-g1</Ид><Наименование>Обувь</Наименование><Группы>
  <Группа><Ид>ut-g2</Ид><Наименование>Кеды</Наименование></Группа></Группы></Группа>
 <Группа><Ид>ut-g3</Ид><Наименование>Аксессуары</Наименование></Группа>
</Группы></Классификатор>
<ПакетПредложений><Ид>ut-pk#</Ид><Наименование>Пакет предложений</Наименование>
<ИдКлассификатора>ut-cl</ИдКлассификатора>
<ТипыЦен><ТипЦены><Ид>ut-t1</Ид><Наименование>Розничная</Наименование><Валюта>руб</Валюта></ТипЦены></ТипыЦен>
<Предложения>
 <Предложение><Ид>ut-p1</Ид><Наименование>Кеды Converse</Наименование>
  <БазоваяЕдиница Код="715" НаименованиеПолное="Пара (2 шт.)"><Пересчет><Единица>715</Единица>
  <Коэффициент>1</Коэффициент></Пересчет></БазоваяЕдиница><Группы><Ид>ut-g2</Ид></Группы></Предложение>
 <Предложение><Ид>ut-p1#ut-c41</Ид><Наименование>Кеды Converse (41)</Наименование>
  <ХарактеристикиТовара><ХарактеристикаТовара><Наименование>Размер</Наименование><Значение>41</Значение>
  </ХарактеристикаТовара></ХарактеристикиТовара>
  <Цены><Цена><ИдТипаЦены>ut-t1</ИдТипаЦены><ЦенаЗаЕдиницу>3500</ЦенаЗаЕдиницу></Цена></Цены>
  <Количество>2</Количество></Предложение>
 <Предложение><Ид>ut-p1#ut-c42</Ид><Наименование>Кеды Converse (42)</Наименование>
  <Цены><Цена><ИдТипаЦены>ut-t1</ИдТипаЦены><ЦенаЗаЕдиницу>3600</ЦенаЗаЕдиницу></Цена></Цены>
  <Количество>0</Количество></Предложение>
 <Предложение><Ид>ut-p2</Ид><Наименование>Шнурки</Наименование>
  <БазоваяЕдиница Код="796" НаименованиеПолное="Штука" МеждународноеСокращение="PCE"/>
  <Группы><Ид>ut-g3</Ид></Группы>
  <Цены><Цена><ИдТипаЦены>ut-t1</ИдТипаЦены><ЦенаЗаЕдиницу>150</ЦенаЗаЕдиницу></Цена></Цены>
  <Количество>10</Количество></Предложение>
</Предложения></ПакетПредложений>
</КоммерческаяИнформация>
"""
NEW_QUANTITY, NEW_PRICE = "7", "1234.5"
BRONZE = (
    "groups",
    "price_types",
    "warehouses",
    "products",
    "offers",
    "prices",
    "stocks",
    "contragents",
    "documents",
    "document_items",
)


# -- independent reading of the XML -----------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _children(el: ET.Element) -> dict[str, ET.Element]:
    return {_local(c.tag): c for c in el}


def et_counts(package: Path) -> dict[str, int]:
    """Records per bronze table, counted on a full ElementTree parse of every XML file."""
    counts = dict.fromkeys(BRONZE, 0)
    for path in sorted(package.rglob("*.xml")):
        root = ET.parse(path).getroot()
        parent_of = {child: parent for parent in root.iter() for child in parent}
        for el in root.iter():
            name, up = _local(el.tag), []
            node = el
            while node in parent_of:
                node = parent_of[node]
                up.append(_local(node.tag))
            parent, grand = (up + [None, None])[:2]
            kids = [_local(c.tag) for c in el]
            if name == "Группа" and parent == "Группы":
                counts["groups"] += 1
            elif name == "ТипЦены" and parent == "ТипыЦен":
                counts["price_types"] += 1
            elif name == "Склад" and parent == "Склады" and "Документ" not in up:
                counts["warehouses"] += 1
            elif name == "Склад" and parent == "Предложение":
                counts["stocks"] += 1
            elif name == "Остаток" and parent == "Остатки":
                counts["stocks"] += max(1, kids.count("Склад"))
            elif name == "Количество" and parent == "Предложение":
                counts["stocks"] += 1
            elif name == "Товар" and parent == "Товары":
                counts["products" if grand == "Каталог" else "document_items"] += 1
            elif name == "Предложение" and set(kids) - {
                "Ид",
                "ИдХарактеристики",
                "Цены",
                "Остатки",
                "Склад",
                "Количество",
            }:
                counts["offers"] += 1
            elif name == "Цена" and parent == "Цены" and grand == "Предложение":
                counts["prices"] += 1
            elif name == "Контрагент" and parent == "Контрагенты":
                counts["contragents"] += 1
            elif name == "Документ" and parent in (None, "КоммерческаяИнформация", "Контейнер"):
                counts["documents"] += 1
    return counts


def offers_xml(path: Path) -> dict[str, ET.Element]:
    root = ET.parse(path).getroot()
    return {_children(o)["Ид"].text: o for o in root.iter() if _local(o.tag) == "Предложение"}


def _text(el: ET.Element | None) -> str | None:
    return (el.text or "").strip() or None if el is not None else None


def group_paths(packages: list[Path]) -> dict[str, str]:
    """Group id → names from the top group down, joined by " / " (every Группы tree of the files)."""
    paths: dict[str, str] = {}

    def walk(groups: ET.Element, prefix: list[str]) -> None:
        for group in groups:
            kids = _children(group)
            names = [*prefix, _text(kids.get("Наименование")) or ""]
            paths[_text(kids["Ид"])] = " / ".join(names)
            if "Группы" in kids:
                walk(kids["Группы"], names)

    for package in packages:
        for path in sorted(package.rglob("*.xml")):
            root = ET.parse(path).getroot()
            parent_of = {child: parent for parent in root.iter() for child in parent}
            for el in root.iter():
                if _local(el.tag) == "Группы" and _local(parent_of.get(el, root).tag) == "Классификатор":
                    walk(el, [])
    return paths


def unit_classifier(packages: list[Path]) -> dict[str, str]:
    """ЕдиницаИзмерения Ид and Код → НаименованиеКраткое (an Ид match wins)."""
    by_code, by_id = {}, {}
    for package in packages:
        for path in sorted(package.rglob("*.xml")):
            for el in ET.parse(path).getroot().iter():
                if _local(el.tag) == "ЕдиницаИзмерения":
                    kids = _children(el)
                    short = _text(kids.get("НаименованиеКраткое"))
                    for index, key in ((by_code, _text(kids.get("Код"))), (by_id, _text(kids.get("Ид")))):
                        if key is not None:
                            index[key] = short
    return by_code | by_id


def first_child(name: str, *elements: ET.Element | None) -> ET.Element | None:
    """The first of ``elements`` that has a child ``name`` → that child (elements are not truth-tested)."""
    for el in elements:
        child = _children(el).get(name) if el is not None else None
        if child is not None:
            return child
    return None


def display_unit(unit: ET.Element | None, classifier: dict[str, str]) -> str | None:
    """The README's rule: classifier short name by code (attribute or text), text, full name, code."""
    if unit is None:
        return None
    text, code = _text(unit), (unit.get("Код") or "").strip() or None
    return (
        classifier.get(code)
        or classifier.get(text)
        or text
        or unit.get("НаименованиеПолное")
        or unit.get("МеждународноеСокращение")
        or code
    )


def total_quantity(offer: ET.Element) -> Decimal:
    return Decimal(_children(offer)["Количество"].text)


def single_price(offer: ET.Element) -> Decimal:
    prices = [p for p in offer.iter() if _local(p.tag) == "ЦенаЗаЕдиницу"]
    assert len(prices) == 1
    return Decimal(prices[0].text)


def warehouse_rests(offer: ET.Element) -> dict[str, Decimal]:
    out = {}
    for store in offer.iter():
        if _local(store.tag) == "Склад" and "Ид" in _children(store):
            out[_children(store)["Ид"].text] = Decimal(_children(store)["Количество"].text)
    return out


# -- building packages --------------------------------------------------------------------------------


def _copy(source: Path, target: Path, only: tuple[str, ...] | None = None) -> Path:
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source).as_posix()
        if path.is_file() and (only is None or relative in only):
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            (target / relative).write_bytes(path.read_bytes())
    return target


def _edit(path: Path, *edits) -> None:
    text = path.read_bytes().decode("utf-8-sig")
    for edit in edits:
        text = edit(text)
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))


def _drop_offer(offer_id: str):
    def edit(text: str) -> str:
        block = re.compile(r"\s*<Предложение>\s*<Ид>" + re.escape(offer_id) + r"</Ид>.*?</Предложение>", re.S)
        out, n = block.subn("", text)
        assert n == 1, offer_id
        return out

    return edit


def _set_date(moment: str):
    return lambda text: re.sub(r'ДатаФормирования="[^"]*"', f'ДатаФормирования="{moment}"', text, count=1)


def _first_value_in_offer(offer_id: str, tag: str, value: str):
    def edit(text: str) -> str:
        start = text.index(f"<Ид>{offer_id}</Ид>")
        at = text.index(f"<{tag}>", start)
        end = text.index(f"</{tag}>", at)
        return text[: at + len(tag) + 2] + value + text[end:]

    return edit


def _age(path: Path, seconds: float) -> None:
    moment = time.time() - seconds
    for item in [path, *path.rglob("*")]:
        os.utime(item, (moment, moment))


# -- the run ------------------------------------------------------------------------------------------


def _bronze_counts(package_id: str) -> dict[str, int]:
    from pyiceberg.expressions import EqualTo

    from elt_platform.iceberg.catalog import load_catalog

    catalog = load_catalog()
    return {
        entity: catalog.load_table(f"bronze.onec_{entity}")
        .scan(row_filter=EqualTo("package_id", package_id))
        .count()
        for entity in BRONZE
    }


def _snapshot_ids() -> dict[str, int | None]:
    from elt_platform.iceberg.catalog import load_catalog
    from elt_platform.sources.commerceml.settings import BRONZE_ENTITIES

    catalog = load_catalog()
    out = {}
    for entity in BRONZE_ENTITIES:
        snapshot = catalog.load_table(f"bronze.onec_{entity}").current_snapshot()
        out[entity] = snapshot.snapshot_id if snapshot else None
    return out


def _rows(sql: str) -> list[dict]:
    from spark_jobs.session import build_session

    return [row.asDict(recursive=True) for row in build_session("test").sql(sql).collect()]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    from elt_platform.cli import main as cli
    from elt_platform.local_run import run_dag
    from elt_platform.sources.commerceml.exchange import ExchangeArea
    from elt_platform.sources.commerceml.loader import PackageLoadError, load_package
    from elt_platform.sources.commerceml.package import build_manifest

    work = tmp_path_factory.mktemp("onec")
    area = ExchangeArea(work / "exchange")
    area.ensure()
    built = work / "built"
    full1 = _copy(CARONO, area.incoming / "full1")
    bitrix = _copy(BITRIX, area.incoming / "bitrix")
    _age(full1, 600)
    _age(bitrix, 300)
    full2 = _copy(CARONO, built / "full2")
    _edit(full2 / "offers.xml", _drop_offer(X), _set_date("2017-07-14T10:00:00"))
    delta3 = _copy(CARONO, built / "delta3", only=("offers.xml",))
    _edit(
        delta3 / "offers.xml",
        _drop_offer(X),
        _drop_offer(Y),
        _set_date("2017-07-15T10:00:00"),
        lambda t: t.replace('СодержитТолькоИзменения="false"', 'СодержитТолькоИзменения="true"'),
    )
    offer = next(iter(offers_xml(BITRIX / "goods" / "1" / "rests.xml")))  # the bitrix SKU we follow
    rests5 = _copy(BITRIX, built / "rests5", only=("goods/1/rests.xml",))  # kept: the DAG archives its copy
    _edit(
        rests5 / "goods" / "1" / "rests.xml",
        _set_date(RESTS_DATE),
        _first_value_in_offer(offer, "Количество", NEW_QUANTITY),
    )
    _age(_copy(rests5, area.incoming / "rests5"), 300)
    prices6 = _copy(BITRIX, built / "prices6", only=("goods/1/prices.xml",))
    priced = next(iter(offers_xml(prices6 / "goods" / "1" / "prices.xml")))
    _edit(
        prices6 / "goods" / "1" / "prices.xml",
        _set_date(PRICES_DATE),
        _first_value_in_offer(priced, "ЦенаЗаЕдиницу", NEW_PRICE),
    )
    ut103 = built / "ut103"
    ut103.mkdir(parents=True)
    (ut103 / "offers.xml").write_text(UT103, encoding="utf-8")
    broken = _copy(BITRIX, built / "broken")
    _edit(broken / "goods" / "1" / "rests.xml", lambda t: t[: len(t) // 2])

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ELT_ONEC_EXCHANGE_DIR", str(area.root))
        mp.setenv("ELT_ONEC_SETTLE_SECONDS", "60")
        packages = {"full1": full1, "full2": full2, "delta3": delta3, "bitrix": bitrix}
        packages.update(rests5=rests5, prices6=prices6, ut103=ut103)
        ids = {name: build_manifest(path).package_id for name, path in packages.items()}
        run_dag("extract_onec")  # full1 then bitrix (oldest first); rests5 is left to the stocks DAG
        load_package(full2, run_id="e2e")
        load_package(ut103, run_id="e2e")  # loaded late, but 1C dated it first
        load_package(delta3, run_id="e2e")
        run_dag("extract_onec_stocks")
        assert cli(["load-1c", str(prices6)]) == 0  # auto mode: a prices-only package → stocks
        counts_before_replay = _bronze_counts(ids["full1"])
        replay = load_package(next(area.archive_dir.glob("*/full1")), run_id="e2e-replay")
        counts_after_replay = _bronze_counts(ids["full1"])
        snapshots_before_broken = _snapshot_ids()
        with pytest.raises(PackageLoadError) as failure:
            load_package(broken, run_id="e2e")
        snapshots_after_broken = _snapshot_ids()
        run_dag("transform_catalog")
        yield {
            "area": area,
            "ids": ids,
            "offer": offer,
            "priced": priced,
            "counts_before_replay": counts_before_replay,
            "counts_after_replay": counts_after_replay,
            "replay": replay,
            "snapshots": (snapshots_before_broken, snapshots_after_broken),
            "failure": failure.value,
            "prices6": prices6,
            "rests5": rests5,
            "ut103": ut103,
        }


# -- bronze -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("package", "source"), [("full1", CARONO), ("bitrix", BITRIX)])
def test_bronze_counts_equal_an_elementtree_count(run, package, source):
    assert _bronze_counts(run["ids"][package]) == et_counts(source)


def test_extract_dags_archived_what_they_loaded(run):
    archived = {p.name for p in run["area"].archive_dir.glob("*/*")}
    assert archived == {"full1", "bitrix", "rests5"}
    assert not any(run["area"].incoming.iterdir())


def test_every_package_is_journaled_with_mode_and_delta_flag(run):
    journal = {r["package_id"]: r for r in _rows("select * from bronze.onec_packages")}
    ids = run["ids"]
    assert {journal[ids[p]]["status"] for p in ids} == {"loaded"}
    assert [journal[ids[p]]["is_full"] for p in ("full1", "full2", "delta3", "bitrix", "ut103")] == [
        True,
        True,
        False,
        False,
        True,  # no СодержитТолькоИзменения at all: a full export
    ]
    assert journal[ids["ut103"]]["contains_only_changes"] is None
    assert journal[ids["rests5"]]["load_mode"] == journal[ids["prices6"]]["load_mode"] == "stocks"
    assert json.loads(journal[ids["rests5"]]["entity_counts"]) == {
        "prices": 0,
        "stocks": et_counts(run["rests5"])["stocks"],
    }


def test_replaying_a_package_leaves_counts_unchanged(run):
    assert run["counts_after_replay"] == run["counts_before_replay"]
    assert run["replay"].attempts == 2


def test_a_package_with_a_corrupt_file_changes_no_table(run):
    before, after = run["snapshots"]
    assert after == before
    assert "goods/1/rests.xml: malformed XML at line" in str(run["failure"])
    journal = _rows(
        f"select status, error from bronze.onec_packages where package_id = '{run['failure'].package_id}'"
    )
    assert journal[0]["status"] == "failed" and "rests.xml" in journal[0]["error"]


# -- silver -------------------------------------------------------------------------------------------


def test_full_package_deactivates_a_missing_sku_and_a_delta_does_not(run):
    products = {r["sku_id"]: r for r in _rows("select * from silver.onec_products")}
    assert products[X]["is_stale"] and not products[X]["is_active"]
    assert not products[Y]["is_stale"] and products[Y]["is_active"]
    carono = offers_xml(CARONO / "offers.xml")
    assert {sku for sku in carono if products[sku]["is_active"]} == set(carono) - {X}


def test_skus_are_assembled_from_goods_and_offers(run):
    carono = offers_xml(CARONO / "offers.xml")
    rows = {r["sku_id"]: r for r in _rows("select * from silver.onec_products")}
    for sku, offer in carono.items():
        row = rows[sku]
        assert row["name"] == _children(offer)["Наименование"].text  # the offer's name wins
        assert row["has_goods_record"] and row["goods_name"] and row["goods_name"] != row["name"]
        assert row["category_path"]


def test_categories_and_customers(run):
    categories = _rows("select * from silver.onec_categories")
    groups = sum(et_counts(p)["groups"] for p in (CARONO, BITRIX, run["ut103"]))
    assert len({r["category_id"] for r in categories}) == len(categories) <= groups
    customers = _rows("select * from silver.onec_customers where customer_type = 'legal'")
    assert customers and all(r["inn"] for r in customers if r["kpp"])


# -- gold ---------------------------------------------------------------------------------------------


def test_catalog_prices_and_stock_match_the_xml(run):
    catalog = {r["sku_id"]: r for r in _rows("select * from gold.onec_catalog")}
    for sku, offer in offers_xml(CARONO / "offers.xml").items():
        if sku == X:
            assert not catalog[sku]["is_active"] and catalog[sku]["total_stock"] == 0  # stale stock is none
            continue
        assert catalog[sku]["total_stock"] == total_quantity(offer)
        assert catalog[sku]["base_price"] == single_price(offer)  # one price type: the base price

    offer = run["offer"]
    rests = warehouse_rests(offers_xml(run["rests5"] / "goods" / "1" / "rests.xml")[offer])
    assert catalog[offer]["total_stock"] == sum(rests.values())
    assert catalog[offer]["warehouses_in_stock"] == sum(1 for q in rests.values() if q > 0) >= 1


def test_stock_by_warehouse_current_and_history(run):
    offer = run["offer"]
    rests = warehouse_rests(offers_xml(run["rests5"] / "goods" / "1" / "rests.xml")[offer])
    original = warehouse_rests(offers_xml(BITRIX / "goods" / "1" / "rests.xml")[offer])
    rows = _rows(f"select * from gold.onec_stock_by_warehouse where sku_id = '{offer}'")
    current = {r["warehouse_id"]: r["quantity"] for r in rows if r["is_current"]}
    assert current == rests
    history = {r["warehouse_id"]: r["quantity"] for r in rows if str(r["snapshot_date"]) == "2017-08-24"}
    assert history == original and history != current
    assert {str(r["valid_until"]) for r in rows if str(r["snapshot_date"]) == "2017-08-24"} == {"2017-09-01"}


def test_price_history_records_the_change(run):
    priced = run["priced"]
    old = single_price(offers_xml(BITRIX / "goods" / "1" / "prices.xml")[priced])
    rows = sorted(
        _rows(f"select * from gold.onec_price_history where sku_id = '{priced}'"),
        key=lambda r: r["valid_from"],
    )
    assert [r["price"] for r in rows] == [old, Decimal(NEW_PRICE)]
    assert rows[0]["valid_to"] == rows[1]["valid_from"] and not rows[0]["is_current"]
    assert rows[1]["is_current"] and rows[1]["previous_price"] == old
    catalog = _rows(f"select prices from gold.onec_catalog where sku_id = '{priced}'")[0]
    assert list(catalog["prices"].values()) == [Decimal(NEW_PRICE)]


def test_an_offers_only_export_lists_only_sellable_skus_with_their_category(run):
    offers = offers_xml(run["ut103"] / "offers.xml")
    with_characteristics = {i.split("#")[0] for i in offers if i.partition("#")[2]}
    sellable = {i for i in offers if i.partition("#")[2] or i not in with_characteristics}
    paths = group_paths([run["ut103"]])
    classifier = unit_classifier([CARONO, BITRIX, run["ut103"]])  # codes are global: bitrix names 796
    catalog = {r["sku_id"]: r for r in _rows("select * from gold.onec_catalog where sku_id like 'ut-%'")}
    assert set(catalog) == sellable and not with_characteristics & set(catalog)
    for sku in sellable:
        product = offers.get(sku.split("#")[0])  # the parent offer describes the product
        groups = first_child("Группы", offers[sku], product)
        assert catalog[sku]["category_path"] == paths[_text(groups[0])] != "(no category)"
        unit = first_child("БазоваяЕдиница", offers[sku], product)
        assert catalog[sku]["unit"] == display_unit(unit, classifier) is not None


def test_units_given_as_attributes_or_codes_are_resolved(run):
    classifier = unit_classifier([CARONO, BITRIX])
    catalog = {r["sku_id"]: r for r in _rows("select sku_id, unit from gold.onec_catalog")}
    for sku, offer in offers_xml(CARONO / "offers.xml").items():  # 2.07: attributes only
        assert catalog[sku]["unit"] == display_unit(_children(offer)["БазоваяЕдиница"], classifier)
        assert catalog[sku]["unit"]
    goods = {
        _text(_children(g)["Ид"]): g
        for g in ET.parse(BITRIX / "goods" / "1" / "import.xml").getroot().iter()
        if _local(g.tag) == "Товар"
    }
    offer = run["offer"]  # 3.1: the goods' БазоваяЕдиница text is the code of a classifier unit
    unit = _children(goods[offer.split("#")[0]])["БазоваяЕдиница"]
    assert catalog[offer]["unit"] == display_unit(unit, classifier) != _text(unit)


def test_dbt_unit_tests_pass(run):
    """The catalog's dbt unit tests (YAML beside the models), over the bronze tables the run created."""
    from elt_platform.transform.dbt import run_dbt

    summary = run_dbt(["test", "--select", "tag:onec", "tag:catalog", "--resource-type", "unit_test"])
    assert summary.statuses == {"pass": 5}, summary

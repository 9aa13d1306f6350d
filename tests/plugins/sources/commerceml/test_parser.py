"""CommerceML parser: format variants, id rules, prices and stocks, flags, errors and hardening.

Real exports come from ``../shared/fixtures/commerceml``; variants the fixtures lack (element-form
delta flag, ``Статус="Удален"``, hostile files) are written to ``tmp_path``.
"""

from collections import Counter
from pathlib import Path

import pytest

from elt_platform.sources.commerceml.parser import (
    CommerceMLContentError,
    CommerceMLSyntaxError,
    CommerceMLUnsafeXMLError,
    PropertyDictionary,
    iter_entity,
    parse_file,
    read_header,
    split_offer_id,
)

NS2 = "urn:1C.ru:commerceml_2"
NS3 = "urn:1C.ru:commerceml_3"


def records(path: Path, **kwargs) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for entity, record in parse_file(path, **kwargs):
        out.setdefault(entity, []).append(record)
    return out


def header(path: Path) -> dict:
    return records(path)["file_headers"][0]


def write_cml(tmp_path: Path, body: str, *, root_attrs: str = "", name: str = "file.xml") -> Path:
    path = tmp_path / name
    path.write_text(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<КоммерческаяИнформация ВерсияСхемы="2.08"{root_attrs}>'
        f"{body}</КоммерческаяИнформация>",
        encoding="utf-8",
    )
    return path


# -- encodings, namespaces, fragments --------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "root", "namespace", "encoding", "version"),
    [
        ("carono_cml2.07/orders.xml", "КоммерческаяИнформация", None, "windows-1251", "2.03"),
        ("carono_cml2.07/import.xml", "КоммерческаяИнформация", NS2, "UTF-8", "2.07"),
        ("irpsv_off-doc-1c_cml2.04/import.xml", "КоммерческаяИнформация", None, "UTF-8", "2.04"),
        (
            "gillbeits_cml2.09_split/rests___1af6e7b8-a026-4690-9752-1c9d64cb914d.xml",
            "КоммерческаяИнформация",
            NS2,
            "UTF-8",
            "2.09",
        ),
        ("irpsv_bitrix-module-6_cml3.1/import.xml", "КоммерческаяИнформация", NS3, "UTF-8", "3.1"),
        ("carono_cml2.07/classifier.xml", "Классификатор", None, "UTF-8", None),
    ],
)
def test_header_reports_root_namespace_encoding_and_version(
    cml: Path, relative: str, root: str, namespace: str | None, encoding: str, version: str | None
) -> None:
    got = header(cml / relative)
    assert (got["root"], got["namespace"], got["encoding"], got["schema_version"]) == (
        root,
        namespace,
        encoding,
        version,
    )
    sniffed = read_header(cml / relative)
    assert (sniffed["root"], sniffed["schema_version"]) == (root, version)


def test_windows_1251_text_is_decoded(cml: Path) -> None:
    got = records(cml / "carono_cml2.07" / "orders.xml")
    assert got["contragents"][0]["name"] == "Петр Петров"
    assert got["contragents"][0]["id"] == "1#admin#Петров Петр"  # order contragent ids are not split
    assert got["document_items"][1]["name"] == "Комбайн MOULINEX A77 4C"


def test_bare_classifier_fragment_parses_like_the_full_import(cml: Path) -> None:
    fragment = records(cml / "carono_cml2.07" / "classifier.xml")
    full = records(cml / "carono_cml2.07" / "import.xml")

    def shape(rows: list[dict]) -> list[tuple]:
        return [(r.get("id"), r.get("parent_id"), r.get("depth"), r.get("value_id")) for r in rows]

    for entity in ("groups", "properties", "property_options"):
        assert shape(fragment[entity]) == shape(full[entity])
    assert fragment["file_headers"][0]["classifier_id"] == "07cfe53d-5145-4c4e-a81c-899be39cc5bd"


OFFER_BODY = (
    "<{p}ПакетПредложений СодержитТолькоИзменения='false'><{p}Ид>pkg#</{p}Ид><{p}Предложения>"
    "<{p}Предложение><{p}Ид>p1#c1</{p}Ид><{p}Наименование>Стул (красный)</{p}Наименование>"
    "<{p}Цены><{p}Цена><{p}ИдТипаЦены>t1</{p}ИдТипаЦены><{p}ЦенаЗаЕдиницу>10</{p}ЦенаЗаЕдиницу></{p}Цена></{p}Цены>"
    "<{p}Количество>3</{p}Количество></{p}Предложение>"
    "</{p}Предложения></{p}ПакетПредложений>"
)


@pytest.mark.parametrize(
    ("xmlns", "prefix", "encoding", "bom"),
    [
        ("", "", "UTF-8", False),
        (f' xmlns="{NS2}"', "", "UTF-8", True),
        (f' xmlns="{NS3}"', "", "UTF-8", True),
        (f' xmlns:cml="{NS3}"', "cml:", "UTF-8", False),
        ("", "", "windows-1251", False),
    ],
    ids=["no-namespace", "commerceml_2-bom", "commerceml_3-bom", "prefixed", "windows-1251"],
)
def test_namespace_and_encoding_variants_give_the_same_records(
    tmp_path: Path, xmlns: str, prefix: str, encoding: str, bom: bool
) -> None:
    root = f"{prefix}КоммерческаяИнформация"
    text = (
        f'<?xml version="1.0" encoding="{encoding}"?>\n<{root}{xmlns} ВерсияСхемы="2.07">'
        f"{OFFER_BODY.format(p=prefix)}</{root}>"
    )
    path = tmp_path / "offers.xml"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding))
    got = records(path)
    assert [(o["id"], o["name"]) for o in got["offers"]] == [("p1#c1", "Стул (красный)")]
    assert [(p["offer_id"], p["price"]) for p in got["prices"]] == [("p1#c1", "10")]
    assert [(s["shape"], s["quantity"]) for s in got["stocks"]] == [("offer_total", "3")]
    assert got["file_headers"][0]["contains_only_changes"] is False


# -- ids -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a1b2", ("a1b2", None)),
        ("a1b2#", ("a1b2", None)),
        ("a1b2#c3d4", ("a1b2", "c3d4")),
        ("38#catalog_exchange#", ("38", "catalog_exchange#")),
        (None, (None, None)),
    ],
)
def test_split_offer_id(raw: str | None, expected: tuple[str | None, str | None]) -> None:
    assert split_offer_id(raw) == expected


def test_offers_keep_the_id_and_split_product_and_characteristic(cml: Path) -> None:
    offers = {o["id"]: o for o in iter_entity(cml / "turumburumstudio_cml3.1" / "offers.xml", "offers")}
    variant = offers["c04853b6-720b-11d9-ac6c-0080482454f7#fe320fb1-7c0d-11d9-b797-505054503030"]
    assert (variant["product_id"], variant["characteristic_id"]) == (
        "c04853b6-720b-11d9-ac6c-0080482454f7",
        "fe320fb1-7c0d-11d9-b797-505054503030",
    )
    plain = offers["c04853c8-720b-11d9-ac6c-0080482454f7"]
    assert (plain["product_id"], plain["characteristic_id"]) == ("c04853c8-720b-11d9-ac6c-0080482454f7", None)


def test_products_exported_as_uuid_hash_uuid_get_parent_and_characteristic(cml: Path) -> None:
    products = list(iter_entity(cml / "irpsv_off-doc-1c_cml2.04" / "import.xml", "products"))
    assert len({p["parent_id"] for p in products}) == 2
    first = products[0]
    assert first["id"] == f"{first['parent_id']}#{first['characteristic_id']}"
    assert first["characteristics"] == [{"id": None, "name": "Цвет", "value": "Белый"}]
    assert first["unit"] == "шт" and first["unit_code"] == "796"
    assert first["requisites"]["ВидНоменклатуры"] == "Товар"


def test_document_items_split_offer_ids(cml: Path) -> None:
    got = records(cml / "irpsv_bitrix-module-6_cml3.1" / "documents" / "2" / "documents.xml")
    item = got["document_items"][0]
    assert item["item_id"] == f"{item['product_id']}#{item['characteristic_id']}"
    assert (item["price"], item["quantity"], item["sum"], item["unit_code"]) == ("1320", "1", "1320", "796")
    documents = {d["id"]: d for d in got["documents"]}
    for agent in got["contragents"]:
        assert agent["id"] in documents[agent["document_id"]]["contragent_ids"]


# -- prices and stocks -----------------------------------------------------------------------------


def test_several_price_types_per_offer(cml: Path) -> None:
    got = records(cml / "irpsv_umi-cms_cml2.04" / "offers.xml")
    price_types = {t["id"] for t in got["price_types"]}
    per_offer = Counter(p["offer_id"] for p in got["prices"])
    assert len(price_types) == 5
    assert set(per_offer.values()) == {5}
    for offer_id in per_offer:
        assert {p["price_type_id"] for p in got["prices"] if p["offer_id"] == offer_id} == price_types


def test_price_comes_from_price_per_unit_not_presentation(cml: Path) -> None:
    prices = list(iter_entity(cml / "turumburumstudio_cml3.1" / "prices.xml", "prices"))
    # The first offer repeats a price type: "420 грн" and "430 грн" presentations, 420 both times.
    first_offer = [p for p in prices if p["offer_id"] == "5f05b691-34bc-11de-9e69-00804829546f"]
    assert [p["price"] for p in first_offer] == ["420", "420"]
    assert {p["price"] for p in prices} == {"420", "1200", "50"}
    assert all("грн" not in str(v) for p in prices for v in p.values())
    assert {p["currency"] for p in prices} == {"UAH"}


def test_attribute_stock_shape_and_offer_total(cml: Path) -> None:
    got = records(cml / "carono_cml2.07" / "offers.xml")
    offer_id = "bd72d910-55bc-11d9-848a-00112f43529a#90c55447-d3a8-11e4-9423-e0cb4ed5eed4"
    stocks = [
        (s["shape"], s["warehouse_id"], s["quantity"]) for s in got["stocks"] if s["offer_id"] == offer_id
    ]
    assert stocks == [
        ("attribute", "b6112590-41ba-11dd-ac9d-0015e9b8c48d", "20"),
        ("offer_total", None, "20"),
    ]
    offer = next(o for o in got["offers"] if o["id"] == offer_id)
    assert offer["quantity"] == "20" and offer["sku"] == "Б-130001"
    assert [c["name"] for c in offer["characteristics"]] == ["Размер", "Тип кожи", "Цвет"]


def test_element_stock_shape_one_row_per_warehouse(cml: Path) -> None:
    got = records(cml / "turumburumstudio_cml3.1" / "rests.xml")
    per_offer = Counter(s["offer_id"] for s in got["stocks"])
    assert len(per_offer) == 12 and set(per_offer.values()) == {14}
    assert {s["shape"] for s in got["stocks"]} == {"element"}
    assert all(s["warehouse_id"] for s in got["stocks"])
    assert "offers" not in got  # a rests-only file describes no offer


def test_element_total_without_warehouse(tmp_path: Path) -> None:
    path = write_cml(
        tmp_path,
        "<ПакетПредложений><Предложения><Предложение><Ид>p1</Ид><Остатки>"
        "<Остаток><Количество>7</Количество></Остаток>"
        "<Остаток><Склад><Ид>w1</Ид><Количество>4</Количество></Склад></Остаток>"
        "</Остатки></Предложение></Предложения></ПакетПредложений>",
    )
    stocks = [(s["shape"], s["warehouse_id"], s["quantity"]) for s in records(path)["stocks"]]
    assert stocks == [("element_total", None, "7"), ("element", "w1", "4")]


# -- flags -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("product", "deleted"),
    [
        ("<Товар><Ид>a</Ид><ПометкаУдаления>true</ПометкаУдаления></Товар>", True),
        ("<Товар><Ид>a</Ид><ПометкаУдаления>Да</ПометкаУдаления></Товар>", True),
        ("<Товар><Ид>a</Ид><ПометкаУдаления>false</ПометкаУдаления></Товар>", False),
        ('<Товар Статус="Удален"><Ид>a</Ид></Товар>', True),
        ('<Товар Статус="удален"><Ид>a</Ид></Товар>', True),
        ("<Товар><Ид>a</Ид><Статус>Удален</Статус></Товар>", True),
        ("<Товар><Ид>a</Ид><Статус>Новый</Статус></Товар>", False),
        ("<Товар><Ид>a</Ид></Товар>", False),
    ],
)
def test_deletion_flags(tmp_path: Path, product: str, deleted: bool) -> None:
    path = write_cml(tmp_path, f"<Каталог><Ид>c</Ид><Товары>{product}</Товары></Каталог>")
    assert [p["deleted"] for p in records(path)["products"]] == [deleted]


def test_deletion_marks_in_a_real_export(cml: Path) -> None:
    path = cml / "gillbeits_cml2.09_split" / "import___b815e2db-7a65-4265-9241-5f0c4f0565a7.xml"
    text = path.read_text(encoding="utf-8-sig")
    marked = text.count("<ПометкаУдаления>true</ПометкаУдаления>")
    properties = list(iter_entity(path, "properties"))
    assert marked > 0
    assert sum(p["deleted"] for p in properties) == marked  # all of this file's marks are on properties


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ('<Каталог СодержитТолькоИзменения="true"><Ид>c</Ид></Каталог>', True),
        ('<Каталог СодержитТолькоИзменения="false"><Ид>c</Ид></Каталог>', False),
        ("<Каталог><СодержитТолькоИзменения>true</СодержитТолькоИзменения><Ид>c</Ид></Каталог>", True),
        (
            "<ПакетПредложений><СодержитТолькоИзменения>false</СодержитТолькоИзменения></ПакетПредложений>",
            False,
        ),
        ("<Каталог><Ид>c</Ид></Каталог>", None),
        (
            "<Каталог><СодержитТолькоИзменения>true</СодержитТолькоИзменения><Товары>"
            + "<Товар><Ид>p</Ид></Товар>" * 2000
            + "</Товары></Каталог>",
            True,
        ),
    ],
    ids=[
        "attribute-true",
        "attribute-false",
        "element-true",
        "element-false",
        "absent",
        "element-far-from-end",
    ],
)
def test_delta_flag_as_attribute_or_element(tmp_path: Path, section: str, expected: bool | None) -> None:
    path = write_cml(tmp_path, section)
    got = header(path)
    assert got["contains_only_changes"] is expected
    assert got["sections"][0]["contains_only_changes"] is expected
    assert read_header(path)["contains_only_changes"] is expected


# -- reference data ---------------------------------------------------------------------------------


def test_group_hierarchy_paths(cml: Path) -> None:
    groups = list(iter_entity(cml / "argentcrusade_fixtures" / "group-example.xml", "groups"))
    by_id = {g["id"]: g for g in groups}
    deepest = max(groups, key=lambda g: g["depth"])
    assert deepest["depth"] == 3
    assert deepest["path"] == "Аксессуары для смартфонов / Чехлы / Чехлы / Антигравитационные чехлы"
    for group in groups:
        assert group["path_ids"][-1] == group["id"]
        assert (group["parent_id"] is None) == (group["depth"] == 0)
        if group["parent_id"]:
            assert by_id[group["parent_id"]]["depth"] == group["depth"] - 1


def test_classifier_dictionaries(cml: Path) -> None:
    got = records(cml / "irpsv_bitrix-module-6_cml3.1" / "import.xml")
    assert len(got["price_types"]) == 8 and all(t["currency"] for t in got["price_types"])
    assert len(got["warehouses"]) == 12
    assert got["units"] == [
        {
            "id": "796",  # written as "796 " by 1C
            "code": "796",
            "name": "шт",
            "full_name": "штука",
            "international_abbreviation": None,
            "deleted": False,
            "version": "AAAAAQAAABM=",
            "source_file": str(cml / "irpsv_bitrix-module-6_cml3.1" / "import.xml"),
            "sourceline": 191,
        }
    ]


def test_property_values_resolve_through_the_dictionary(cml: Path) -> None:
    got = records(cml / "carono_cml2.07" / "import.xml")
    values = {(v["product_id"], v["property_id"]): v for v in got["property_values"]}
    maker = values[("bd72d910-55bc-11d9-848a-00112f43529a", "bb14a4b8-6b17-11e0-9819-e0cb4ed5eed4")]
    assert (maker["value"], maker["value_id"], maker["property_name"]) == (
        "Обувной комбинат",
        "444bbea3-6b18-11e0-9819-e0cb4ed5eed4",
        "Производитель",
    )
    supplier = values[("bd72d910-55bc-11d9-848a-00112f43529a", "444bbea0-6b18-11e0-9819-e0cb4ed5eed4")]
    assert (supplier["value"], supplier["value_id"]) == ("ООО Рога и копыта", None)  # a Строка property
    assert got["products"][0]["brand"] == "Обувной комбинат"


def test_dictionary_from_another_file_is_used_when_shared(cml: Path) -> None:
    goods = cml / "irpsv_bitrix-module-6_cml3.1" / "goods" / "1" / "offers.xml"
    alone = list(iter_entity(goods, "property_values"))
    assert not any(v["value_id"] for v in alone)
    shared = PropertyDictionary()
    list(
        parse_file(
            cml / "irpsv_bitrix-module-6_cml3.1" / "properties" / "1" / "offers.xml", dictionary=shared
        )
    )
    together = list(iter_entity(goods, "property_values", dictionary=shared))
    assert sum(1 for v in together if v["value_id"]) > len(together) // 2


def test_contragent_fields(cml: Path) -> None:
    agents = {
        a["id"]: a
        for a in iter_entity(cml / "argentcrusade_fixtures" / "contractors-example.xml", "contragents")
    }
    shop = agents["021e0e3f-e329-11db-95d9-505054503030"]
    assert (shop["name"], shop["official_name"], shop["role"], shop["inn"]) == (
        "ТД Уют",
        'ТОО "ТД Уют"',
        "Покупатель",
        "181620360057",
    )
    assert shop["email"] == "Uyt@komp.kz" and shop["phone"] == "+7 (3272) 25-39-39"
    assert shop["registration_address"].startswith("005897")
    assert shop["bank_accounts"][0]["bik"] == "190701310"
    assert shop["kpp"] is None  # <КПП/>


# -- errors and hardening ---------------------------------------------------------------------------


def test_truncated_file_names_file_line_and_element(cml: Path, tmp_path: Path) -> None:
    source = (cml / "turumburumstudio_cml3.1" / "rests.xml").read_bytes()
    cut = source[: source.index("<Остаток>".encode(), len(source) // 2) + 40]
    path = tmp_path / "rests_truncated.xml"
    path.write_bytes(cut)
    with pytest.raises(CommerceMLSyntaxError) as info:
        list(parse_file(path))
    error = info.value
    assert error.source_file == str(path)
    assert error.line == cut.count(b"\n") + 1
    assert str(path) in str(error) and f"line {error.line}" in str(error)
    assert error.element and error.element.startswith("КоммерческаяИнформация/ПакетПредложений/Предложения")


@pytest.mark.parametrize(
    ("body", "line", "element", "message"),
    [
        (
            "\n<Каталог>\n<Товары>\n<Товар><Ид>a</Ид></Товары>\n</Каталог>\n",
            5,
            "КоммерческаяИнформация",  # no record finished yet: the root is named, libxml2 names the tag
            "inside <КоммерческаяИнформация>: Opening and ending tag mismatch: Товар",
        ),
        ("\n<Каталог>\n<Ид>a</Ид", 4, "КоммерческаяИнформация", "inside <КоммерческаяИнформация>"),
        (
            "\n<Каталог><Товары><Товар><Ид>a</Ид></Товар>\n<Товар><Ид>b&c</Ид></Товар>",
            4,
            "КоммерческаяИнформация/Каталог/Товары/Товар",
            "after <КоммерческаяИнформация/Каталог/Товары/Товар",
        ),
    ],
    ids=["mismatched-tag", "broken-header", "bad-entity-reference"],
)
def test_malformed_file_error_names_file_line_and_element(
    tmp_path: Path, body: str, line: int, element: str, message: str
) -> None:
    path = write_cml(tmp_path, body, name="goods.xml")
    text = path.read_text(encoding="utf-8").removesuffix("</КоммерческаяИнформация>")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CommerceMLSyntaxError, match=rf"goods\.xml: malformed XML at line {line}\b") as info:
        list(parse_file(path))
    assert info.value.line == line
    assert info.value.element.startswith(element)
    assert message in str(info.value)


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<КоммерческаяИнформация><Каталог><Товары><Товар><Ид>&lol9;</Ид></Товар></Товары></Каталог></КоммерческаяИнформация>
"""
XXE = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE КоммерческаяИнформация [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<КоммерческаяИнформация><Каталог><Товары><Товар><Ид>&xxe;</Ид></Товар></Товары></Каталог></КоммерческаяИнформация>
"""
EXTERNAL_DTD = """<?xml version="1.0"?><!-- a comment first -->
<!DOCTYPE КоммерческаяИнформация SYSTEM "http://127.0.0.1:9/evil.dtd">
<КоммерческаяИнформация/>
"""


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        (BILLION_LAUGHS, "utf-8"),
        (XXE, "utf-8"),
        (EXTERNAL_DTD, "utf-8"),
        (XXE.replace("UTF-8", "UTF-16"), "utf-16"),
    ],
    ids=["billion-laughs", "xxe-file", "external-dtd", "xxe-utf16"],
)
def test_doctype_and_entities_are_refused(tmp_path: Path, text: str, encoding: str) -> None:
    path = tmp_path / "evil.xml"
    path.write_bytes(text.encode(encoding))
    with pytest.raises(CommerceMLUnsafeXMLError, match="refused") as info:
        list(parse_file(path))
    assert "root:" not in str(info.value)  # nothing from /etc/passwd
    with pytest.raises(CommerceMLUnsafeXMLError):
        read_header(path)


def test_overlong_prolog_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "long.xml"
    path.write_text("<?xml version='1.0'?>" + "<!--" + "x" * 70_000 + "-->" + "<КоммерческаяИнформация/>")
    with pytest.raises(CommerceMLUnsafeXMLError, match="no root element"):
        list(parse_file(path))


def test_stream_input_and_source_name(cml: Path) -> None:
    path = cml / "turumburumstudio_cml3.1" / "prices.xml"
    with path.open("rb") as stream:
        got = [r for e, r in parse_file(stream, source_file="prices.xml") if e == "prices"]
    assert len(got) == 4 and {r["source_file"] for r in got} == {"prices.xml"}
    assert got[0]["sourceline"] == 12


def test_unknown_entity_is_rejected(cml: Path) -> None:
    with pytest.raises(ValueError, match="unknown CommerceML entity"):
        list(iter_entity(cml / "turumburumstudio_cml3.1" / "prices.xml", "orders"))


# -- offers-only exports, units ---------------------------------------------------------------------

# An УТ 10.3-style offers-only export: a classifier with nested groups, then ПакетПредложений whose
# plain-id offers describe the products (Группы, unit) and whose uuid#uuid offers are the SKUs.
OFFERS_ONLY_BODY = (
    "<Классификатор><Ид>cl</Ид><Группы>"
    "<Группа><Ид>g1</Ид><Наименование>Обувь</Наименование><Группы>"
    "<Группа><Ид>g2</Ид><Наименование>Кеды</Наименование></Группа></Группы></Группа>"
    "</Группы></Классификатор>"
    "<ПакетПредложений><Ид>pk#</Ид><ИдКлассификатора>cl</ИдКлассификатора><Предложения>"
    "<Предложение><Ид>p1</Ид><Наименование>Кеды</Наименование><Группы><Ид>g2</Ид></Группы>"
    '<БазоваяЕдиница Код="715" НаименованиеПолное="Пара (2 шт.)"><Пересчет><Единица>715</Единица>'
    "<Коэффициент>1</Коэффициент></Пересчет></БазоваяЕдиница></Предложение>"
    "<Предложение><Ид>p1#c1</Ид><Наименование>Кеды (41)</Наименование>"
    "<Количество>2</Количество></Предложение>"
    "<Предложение><Ид>p2</Ид><Наименование>Шнурки</Наименование><Группы><Ид>g1</Ид></Группы>"
    '<БазоваяЕдиница Код="796" НаименованиеПолное="Штука" МеждународноеСокращение="PCE">шт</БазоваяЕдиница>'
    "</Предложение>"
    "</Предложения></ПакетПредложений>"
)


def test_offers_carry_their_groups_and_every_unit_attribute(tmp_path: Path) -> None:
    offers = {o["id"]: o for o in records(write_cml(tmp_path, OFFERS_ONLY_BODY))["offers"]}
    assert {i: o["group_ids"] for i, o in offers.items()} == {"p1": ["g2"], "p1#c1": [], "p2": ["g1"]}
    units = {
        i: (o["unit"], o["unit_code"], o["unit_name"], o["unit_abbreviation"]) for i, o in offers.items()
    }
    assert units == {
        "p1": (None, "715", "Пара (2 шт.)", None),  # 2.07: attributes only, a Пересчет child, no text
        "p1#c1": (None, None, None, None),
        "p2": ("шт", "796", "Штука", "PCE"),  # 2.04: text short name + attributes
    }


def test_units_given_only_as_attributes_in_a_real_2_07_export(cml: Path) -> None:
    import xml.etree.ElementTree as ET

    for name, entity in (("import.xml", "products"), ("offers.xml", "offers")):
        path = cml / "carono_cml2.07" / name
        expected = [
            (u.get("Код"), u.get("НаименованиеПолное"), u.get("МеждународноеСокращение"))
            for u in ET.parse(path).getroot().iter(f"{{{NS2}}}БазоваяЕдиница")
        ]
        got = [(r["unit_code"], r["unit_name"], r["unit_abbreviation"]) for r in records(path)[entity]]
        assert got == expected and all(code and full for code, full, _ in got)


# -- refused by content -------------------------------------------------------------------------------

NOT_COMMERCEML = {
    "html-page": (
        b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
        "an HTML page",
    ),
    "xhtml-root": (b"<?xml version='1.0'?><html><body><h1>Error</h1></body></html>", "root element <html>"),
    "foreign-xml": (b"<?xml version='1.0'?><error code='500'>timeout</error>", "root element <error>"),
    "json": (b'{"error": "session expired"}', 'not XML: it starts with \'{"error"'),
    "pdf": (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj", "not XML: it starts with '%PDF-1.4"),
    "empty": (b"", "an empty file"),
    "bom-only": (b"\xef\xbb\xbf\n", "an empty file"),
}


@pytest.mark.parametrize(("data", "reason"), NOT_COMMERCEML.values(), ids=NOT_COMMERCEML.keys())
def test_a_file_that_is_not_commerceml_is_refused_by_content(
    tmp_path: Path, data: bytes, reason: str
) -> None:
    path = tmp_path / "import.xml"
    path.write_bytes(data)
    for read in (lambda: list(parse_file(path)), lambda: read_header(path)):
        with pytest.raises(CommerceMLContentError) as info:
            read()
        assert str(info.value).startswith(f"{path}: not a CommerceML document: ")
        assert reason in str(info.value) and "\n" not in str(info.value)

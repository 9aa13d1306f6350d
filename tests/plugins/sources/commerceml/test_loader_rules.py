"""Pure parts of the 1C loader: number reading, SKU keys, rule checks, record → Arrow row mapping."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from elt_platform.bronze.arrow import records_to_arrow
from elt_platform.iceberg.tables import load_spec
from elt_platform.sources.commerceml.package import parse_package
from elt_platform.sources.commerceml.rules import References, check, parse_number, sku_key
from elt_platform.sources.commerceml.settings import BRONZE_ENTITIES, entity_spec
from elt_platform.sources.commerceml.staging import RECORD_KEYS

# Columns the stager fills itself, not from a parser field.
STAGER_COLUMNS = {"package_id", "record_no", "_issues"}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1719", Decimal("1719")),
        ("4293.00", Decimal("4293.00")),
        ("12,5", Decimal("12.5")),
        ("1 200", Decimal("1200")),
        ("1\u00a0200,50", Decimal("1200.50")),
        ("-3", Decimal("-3")),
        (" 7 ", Decimal("7")),
        ("1 200 грн за шт", None),
        ("", None),
        (None, None),
        ("1.2.3", None),
    ],
)
def test_parse_number_reads_numbers_as_1c_writes_them(text: str | None, value: Decimal | None) -> None:
    assert parse_number(text) == value


@pytest.mark.parametrize(
    ("product", "characteristic", "key"),
    [("p", None, "p"), ("p", "c", "p#c"), (None, "c", None), ("p", "", "p")],
)
def test_sku_key(product: str | None, characteristic: str | None, key: str | None) -> None:
    assert sku_key(product, characteristic) == key


def _refs() -> References:
    refs = References()
    refs.learn("groups", {"id": "g1"})
    refs.learn("price_types", {"id": "retail"})
    refs.learn("warehouses", {"id": "w1"})
    refs.learn("properties", {"id": "color"})
    refs.learn("products", {"id": "p1", "parent_id": "p1", "characteristic_id": None})
    refs.learn("products", {"id": "p2#c", "parent_id": "p2", "characteristic_id": "c"})  # a 2.04 export
    refs.learn("offers", {"id": "p1#c1", "product_id": "p1", "characteristic_id": "c1"})
    return refs


@pytest.mark.parametrize(
    ("entity", "record", "issues"),
    [
        ("products", {"id": "p3", "group_ids": ["g1"]}, []),
        ("products", {"id": None, "group_ids": ["g9"]}, ["missing_id", "unknown_group"]),
        ("offers", {"id": "p1#c2", "product_id": "p1", "characteristic_id": "c2"}, []),
        ("offers", {"id": "p2#c", "product_id": "p2", "characteristic_id": "c"}, []),
        ("offers", {"id": "p9#c", "product_id": "p9", "characteristic_id": "c"}, ["product_not_found"]),
        (
            "prices",
            {
                "offer_id": "p1#c1",
                "product_id": "p1",
                "characteristic_id": "c1",
                "price_type_id": "retail",
                "price": "10,5",
            },
            [],
        ),
        (
            "prices",
            {
                "offer_id": "p1#",
                "product_id": "p1",
                "characteristic_id": None,
                "price_type_id": "x",
                "price": "-1",
            },
            ["unknown_price_type", "negative_price"],
        ),
        (
            "prices",
            {
                "offer_id": "q",
                "product_id": "q",
                "characteristic_id": None,
                "price_type_id": "retail",
                "price": "1 200 грн",
            },
            ["unknown_offer", "bad_price"],
        ),
        (
            "stocks",
            {
                "offer_id": "p1#c1",
                "product_id": "p1",
                "characteristic_id": "c1",
                "warehouse_id": "w9",
                "quantity": "3",
            },
            ["unknown_warehouse"],
        ),
        (
            "stocks",
            {
                "offer_id": "p2#c",
                "product_id": "p2",
                "characteristic_id": "c",
                "warehouse_id": None,
                "quantity": "-2",
            },
            ["negative_quantity"],
        ),
        (
            "stocks",
            {"offer_id": None, "warehouse_id": "w1", "quantity": None},
            ["missing_offer_id", "bad_quantity"],
        ),
        ("property_values", {"property_id": "size"}, ["unknown_property"]),
        ("document_items", {"document_id": "d"}, []),
    ],
    ids=[
        "product-ok",
        "product-no-id-unknown-group",
        "offer-of-known-product",
        "offer-of-2.04-product",
        "offer-without-product",
        "price-ok",
        "price-unknown-type-negative",
        "price-unknown-offer-presentation",
        "stock-unknown-warehouse",
        "stock-negative-total",
        "stock-no-offer-no-quantity",
        "property-value-unknown-property",
        "document-item",
    ],
)
def test_rule_checks(entity: str, record: dict, issues: list[str]) -> None:
    assert check(entity, record, _refs()) == issues


def test_every_parsed_field_has_a_bronze_column(fixture_set: Path) -> None:
    fields = {
        entity: {
            RECORD_KEYS.get(n, n) for n in load_spec(entity_spec(entity)).arrow_schema(lineage=False).names
        }
        - STAGER_COLUMNS
        for entity in BRONZE_ENTITIES
    }
    lost = {
        (entity, field)
        for entity, record in parse_package(fixture_set)
        if entity in fields
        for field in set(record) - fields[entity]
    }
    assert lost == set()


def test_complex_fields_become_json_strings_and_constants_fill_columns(cml: Path) -> None:
    spec = load_spec(entity_spec("contragents"))
    records = [r for e, r in parse_package(cml / "carono_cml2.07") if e == "contragents"]
    for n, record in enumerate(records, start=1):
        record.update(record_no=n, _issues=None)

    table = records_to_arrow(records, spec, {"package_id": "pkg"}, keys=RECORD_KEYS)

    assert table.schema == spec.arrow_schema(lineage=False)
    row = table.to_pylist()[0]
    assert row["package_id"] == "pkg" and row["source_line"] == records[0]["sourceline"]
    assert json.loads(row["contacts"]) == records[0]["contacts"]
    assert isinstance(json.loads(row["addresses"]), list)

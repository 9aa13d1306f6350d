"""Business rules a CommerceML record can break while still parsing: reason codes for ``_issues``.

A record that breaks a rule is **loaded flagged**, never dropped: the loader writes the codes
(``;``-joined) into the row's ``_issues`` column and counts them per package in
``bronze.onec_packages.issue_counts``; silver decides what a flag means for its model.

References resolve against what the package itself declared earlier in its parse order (reference
files, then goods, offers, prices, rests) plus everything bronze already holds from earlier packages,
so a stocks-only package may reference warehouses and offers loaded by yesterday's catalog.

=====================  =====================================================================
code                   meaning
=====================  =====================================================================
``missing_id``         a record that must have an ``Ид`` has none (groups, properties,
                       price types, warehouses, units, goods, offers, contragents, documents)
``missing_offer_id``   a price/stock row without the offer ``Ид``
``unknown_group``      goods (or an offer) name a group absent from every package
``product_not_found``  an offer whose product (``uuid`` before ``#``) is in no goods record and
                       in no offer that describes the product itself (a plain-``uuid`` offer
                       naming its ``Группы``: the product master of an offers-only export)
``unknown_offer``      a price/stock for an offer (or product) that no package described
``unknown_price_type`` a price whose ``ИдТипаЦены`` is in no price type list
``unknown_warehouse``  a stock row whose warehouse is in no warehouse list
``unknown_property``   a property value whose property is in no property list
``bad_price``          ``ЦенаЗаЕдиницу`` missing or not a number
``negative_price``     a price below zero
``bad_quantity``       a stock quantity missing or not a number
``negative_quantity``  stock below zero (1C allows it; flagged for review)
=====================  =====================================================================

Pure module: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
# Thousands separators 1C writes: plain, no-break and narrow no-break spaces, apostrophes.
_GROUPING = str.maketrans("", "", " \u00a0\u202f\u2009'")


def parse_number(text: str | None) -> Decimal | None:
    """Read a number as 1C writes it (``"1719"``, ``"12,5"``, ``"1 200.00"``).

    The same normalisation is applied in silver by the ``onec_number`` dbt macro.

    Args:
        text: The value as written, or None.

    Returns:
        The value, or None when ``text`` is empty or not a number.
    """
    if text is None:
        return None
    cleaned = text.strip().translate(_GROUPING).replace(",", ".")
    if not _NUMBER.match(cleaned):
        return None
    try:
        return Decimal(cleaned)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid literals
        return None


def sku_key(product_id: str | None, characteristic_id: str | None) -> str | None:
    """Canonical SKU id: ``product#characteristic``, or ``product`` when there is no characteristic.

    ``uuid`` and ``uuid#`` name the same offer in different files of one export; this key (the dbt
    macro ``onec_sku_id`` builds the same) makes prices, stocks, offers and goods join.

    Args:
        product_id: Part of the ``Ид`` before ``#``.
        characteristic_id: Part after ``#`` (or ``ИдХарактеристики``).

    Returns:
        The key, or None without a product id.
    """
    if product_id is None:
        return None
    return f"{product_id}#{characteristic_id}" if characteristic_id else product_id


@dataclass
class References:
    """Ids known so far: those bronze holds from earlier packages plus the package's own, as parsed.

    Attributes:
        groups, properties, price_types, warehouses: Reference ids.
        products: Canonical keys of goods records (:func:`sku_key` of ``parent_id``/``characteristic_id``).
        product_parents: ``parent_id`` of goods records (a plain product id).
        offers: Canonical keys of offers.
        offer_products: Product ids described by an offer itself: a plain-``uuid`` offer naming
            its groups, as an offers-only export (УТ 10.3, no ``Каталог``) sends its products.
    """

    groups: set[str] = field(default_factory=set)
    properties: set[str] = field(default_factory=set)
    price_types: set[str] = field(default_factory=set)
    warehouses: set[str] = field(default_factory=set)
    products: set[str] = field(default_factory=set)
    product_parents: set[str] = field(default_factory=set)
    offers: set[str] = field(default_factory=set)
    offer_products: set[str] = field(default_factory=set)

    def learn(self, entity: str, record: dict[str, Any]) -> None:
        """Remember the ids a record declares (call before checking later records)."""
        target = _DECLARES.get(entity)
        if target is not None:
            value = record.get("id")
            if value is not None:
                getattr(self, target).add(value)
        elif entity == "products":
            key = sku_key(record.get("parent_id"), record.get("characteristic_id"))
            if key is not None:
                self.products.add(key)
            if record.get("parent_id") is not None:
                self.product_parents.add(record["parent_id"])
        elif entity == "offers":
            key = sku_key(record.get("product_id"), record.get("characteristic_id"))
            if key is not None:
                self.offers.add(key)
                if record.get("characteristic_id") is None and record.get("group_ids"):
                    self.offer_products.add(record["product_id"])

    def learn_all(self, entity: str, records: Iterable[dict[str, Any]]) -> None:
        """:meth:`learn` over many records (e.g. id columns read back from bronze)."""
        for record in records:
            self.learn(entity, record)

    def knows_item(self, product_id: str | None, characteristic_id: str | None) -> bool:
        """True if a price/stock target is a known offer, goods record or plain product."""
        key = sku_key(product_id, characteristic_id)
        if key is None:
            return False
        if key in self.offers or key in self.products:
            return True
        return characteristic_id is None and product_id in self.product_parents


_DECLARES = {
    "groups": "groups",
    "properties": "properties",
    "price_types": "price_types",
    "warehouses": "warehouses",
}
_NEEDS_ID = frozenset(
    {
        "groups",
        "properties",
        "price_types",
        "warehouses",
        "units",
        "products",
        "offers",
        "contragents",
        "documents",
    }
)


def _amount(text: str | None, bad: str, negative: str) -> list[str]:
    value = parse_number(text)
    if value is None:
        return [bad]
    return [negative] if value < 0 else []


def check(entity: str, record: dict[str, Any], refs: References) -> list[str]:
    """Reason codes for the rules ``record`` breaks, given the references known at this point.

    Args:
        entity: Parser entity name (``offers``, ``prices``…).
        record: The parser's record.
        refs: Ids known so far (bronze + this package up to this record).

    Returns:
        Codes in a stable order; empty for a clean record.
    """
    issues: list[str] = []
    if entity in _NEEDS_ID and record.get("id") is None:
        issues.append("missing_id")
    if entity in ("products", "offers") and any(g not in refs.groups for g in record.get("group_ids") or ()):
        issues.append("unknown_group")
    if entity == "offers":
        product_id = record.get("product_id")
        key = sku_key(product_id, record.get("characteristic_id"))
        if (
            product_id is not None
            and product_id not in refs.product_parents
            and key not in refs.products
            and product_id not in refs.offer_products
        ):
            issues.append("product_not_found")
    elif entity in ("prices", "stocks"):
        if record.get("offer_id") is None:
            issues.append("missing_offer_id")
        elif not refs.knows_item(record.get("product_id"), record.get("characteristic_id")):
            issues.append("unknown_offer")
        if entity == "prices":
            if record.get("price_type_id") not in refs.price_types:
                issues.append("unknown_price_type")
            issues.extend(_amount(record.get("price"), "bad_price", "negative_price"))
        else:
            warehouse = record.get("warehouse_id")
            if warehouse is not None and warehouse not in refs.warehouses:
                issues.append("unknown_warehouse")
            issues.extend(_amount(record.get("quantity"), "bad_quantity", "negative_quantity"))
    elif entity == "property_values":
        if record.get("property_id") not in refs.properties:
            issues.append("unknown_property")
    return issues


__all__ = ["References", "check", "parse_number", "sku_key"]

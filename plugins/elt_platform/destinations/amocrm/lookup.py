"""Where a plan finds the leads and contacts a row may already have: one search per key, or the lists.

The spec's search hierarchy asks three questions of the account about a new reception: which open leads
hold its reception id, which hold its patient number, which contacts hold its phone. amoCRM answers each
with a ``query`` search — one request per key at the account's 7 requests/s (a first sync of 2,423
receptions spent 278 s planning) — or the candidates can be read once through the list endpoints, 250 a
page: the leads of the open stages of the sync's pipelines, and the account's contacts. The indexes here
hold what the lists returned, keyed as the sync compares: the reception id as a number, the patient number
as text, each phone in E.164. They keep only the keys the plan asks about, so a large account's contacts
cost pages, not memory.

A search is fuzzy and returns a superset of the exact match; an index returns the exact candidates; the
sync applies the same exact checks (branch, empty reception id, the phone's E.164 form) to either answer,
so both paths make the same plan, reviews included.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from elt_platform.destinations.amocrm.mapping import flatten
from elt_platform.reverse_etl.phones import e164


def number_key(value: Any) -> float | None:
    """A numeric field's value as the sync compares it (``9003``, ``"9003"`` and ``9003.0`` are one)."""
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def contact_phones(contact: dict[str, Any]) -> set[str]:
    """The E.164 forms of a contact's PHONE values (values that are no KZ/RU number left out)."""
    return {
        phone
        for item in contact.get("custom_fields_values") or []
        if item.get("field_code") == "PHONE"
        for value in item.get("values") or []
        if (phone := e164(str(value.get("value") or ""))) is not None
    }


@dataclass
class LeadIndex:
    """Listed leads by reception id and by patient number (only the keys asked for)."""

    by_reception: dict[float, list[dict[str, Any]]] = field(default_factory=dict)
    by_number: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        leads: Iterable[dict[str, Any]],
        *,
        reception_field: int,
        number_field: int | None,
        receptions: set[float],
        numbers: set[str],
    ) -> LeadIndex:
        """Index ``leads`` (as listed) by the ``cf:<id>`` values of the two fields.

        Args:
            leads: The leads the list returned.
            reception_field: The "ID Приёма" field's id.
            number_field: The patient-number field's id (None: not mapped).
            receptions: The reception ids the plan asks about.
            numbers: The patient numbers the plan asks about.
        """
        index = cls()
        for lead in leads:
            flat = flatten(lead)
            reception = number_key(flat.get(f"cf:{reception_field}"))
            if reception in receptions:
                index.by_reception.setdefault(reception, []).append(lead)
            number = str(flat.get(f"cf:{number_field}") or "") if number_field is not None else ""
            if number in numbers:
                index.by_number.setdefault(number, []).append(lead)
        return index

    def find(self, field: str, value: str) -> list[dict[str, Any]]:
        """The leads holding ``value`` in ``field`` (``reception_id`` or ``patient_number``)."""
        if field == "reception_id":
            key = number_key(value)
            return self.by_reception.get(key, []) if key is not None else []
        return self.by_number.get(value, [])


@dataclass
class ContactIndex:
    """Listed contacts by each of their phones in E.164 (only the phones asked for)."""

    by_phone: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def build(cls, contacts: Iterable[dict[str, Any]], phones: set[str]) -> ContactIndex:
        """Index ``contacts`` (as listed) by the E.164 phones in ``phones``; a contact once per phone."""
        index = cls()
        for contact in contacts:
            for phone in contact_phones(contact) & phones:
                index.by_phone.setdefault(phone, []).append(contact)
        return index

"""Batch commands for the CRM writes and reads the sync sends: add, update, get and list of contacts, leads
and deals, and references to an earlier command's result.

Each function only builds a :data:`~elt_platform.destinations.bitrix24.batch.Command` (``(method, params)``)
for :meth:`~elt_platform.destinations.bitrix24.client.Bitrix24Client.batch`; no decision is taken here.

Multi-fields (``PHONE``, ``EMAIL``) are lists of ``{"VALUE", "VALUE_TYPE"}``, and on update Bitrix24 reads
them as edits, not as the new list: an item without ``ID`` is *added*, an item with ``ID`` changes that
item, an item with ``ID`` and an empty ``VALUE`` deletes it. Sending a contact's phone again without its
``ID`` duplicates the phone.
"""

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from elt_platform.destinations.bitrix24.batch import Command

Entity = Literal["contact", "lead", "deal"]
ENTITIES: tuple[Entity, ...] = ("contact", "lead", "deal")


def _method(entity: Entity, verb: str) -> str:
    if entity not in ENTITIES:
        raise ValueError(f"unknown CRM entity {entity!r}: one of {', '.join(ENTITIES)}")
    return f"crm.{entity}.{verb}"


def add(entity: Entity, fields: Mapping[str, Any], *, params: Mapping[str, Any] | None = None) -> Command:
    """``crm.<entity>.add``: creates a record; the command's result is the new id (an integer).

    Args:
        entity: ``contact``, ``lead`` or ``deal``.
        fields: Field values (``TITLE``, ``PHONE``, ``UF_CRM_…``; a deal's ``CONTACT_ID`` may be a
            :func:`ref` to a contact added earlier in the same batch).
        params: The method's ``params`` (e.g. ``{"REGISTER_SONET_EVENT": "N"}``).

    Raises:
        ValueError: Unknown entity.
    """
    body: dict[str, Any] = {"fields": dict(fields)}
    if params:
        body["params"] = dict(params)
    return _method(entity, "add"), body


def update(
    entity: Entity,
    record_id: int | str,
    fields: Mapping[str, Any],
    *,
    params: Mapping[str, Any] | None = None,
) -> Command:
    """``crm.<entity>.update``: changes the given fields of one record; the result is ``true``.

    Args:
        entity: ``contact``, ``lead`` or ``deal``.
        record_id: The record's ``ID`` (or a :func:`ref`).
        fields: Only the fields to change (multi-fields: see the module docstring).
        params: The method's ``params``.

    Raises:
        ValueError: Unknown entity.
    """
    body: dict[str, Any] = {"id": record_id, "fields": dict(fields)}
    if params:
        body["params"] = dict(params)
    return _method(entity, "update"), body


def get(entity: Entity, record_id: int | str) -> Command:
    """``crm.<entity>.get``: one record with every field (ids and money as strings, as Bitrix24 sends them).

    Raises:
        ValueError: Unknown entity.
    """
    return _method(entity, "get"), {"id": record_id}


def list_page(
    entity: Entity,
    *,
    filter: Mapping[str, Any] | None = None,  # noqa: A002 - Bitrix24's parameter name
    select: Sequence[str] | None = None,
    order: Mapping[str, str] | None = None,
    start: int = 0,
) -> Command:
    """``crm.<entity>.list``: one page (50 records from ``start``); ``total``/``next`` come with the result.

    Raises:
        ValueError: Unknown entity.
    """
    body: dict[str, Any] = {"start": start}
    if filter:
        body["filter"] = dict(filter)
    if select:
        body["select"] = list(select)
    if order:
        body["order"] = dict(order)
    return _method(entity, "list"), body


def ref(key: str, *path: str | int) -> str:
    """A reference to an earlier command's result in the same batch: ``$result[<key>][<path>]…``.

    Bitrix24 substitutes it before running the command (an ``add`` returns the bare id, so ``ref("contact")``
    is the new contact's id; ``ref("deals", 0, "ID")`` the first id of a list). The client keeps referencing
    commands in the same call.
    """
    return f"$result[{key}]" + "".join(f"[{part}]" for part in path)

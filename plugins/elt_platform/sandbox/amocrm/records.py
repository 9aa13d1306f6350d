"""What a script looks like at time ``t``: API records (as the list endpoints show them), events, and the
typed ground truth of a lead (:class:`LeadState`) that end-to-end tests compute expectations from.

Pure functions of a script, a time and the link root; the dataset decides which entities are visible
and which related ids to embed. Field order and presence follow the documentation examples in
``shared/fixtures/amocrm/ogi4i_amocrm-client/``.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from elt_platform.sandbox.amocrm.account import (
    ACCOUNT_ID,
    COMPANY_BIN_FIELD,
    COMPANY_INDUSTRY_FIELD,
    CONTACT_EMAIL_FIELD,
    CONTACT_PHONE_FIELD,
    CUSTOM_FIELDS,
    EMAIL_ENUMS,
    LEAD_BIN_FIELD,
    LEAD_SOURCE_FIELD,
    LOSS_REASON_BY_ID,
    LOST,
    PHONE_ENUMS,
    TAG_BY_ID,
    WON,
)
from elt_platform.sandbox.amocrm.scripts import (
    COMPANY,
    CONTACT,
    ID_BASE,
    LEAD,
    TASK,
    CompanyScript,
    ContactScript,
    LeadScript,
    TaskScript,
    as_of,
    unit,
)

#: One event before rendering: (created_at, id, kind, number, type, created_by, value_before, value_after).
Event = tuple[int, str, int, int, str, int, list[dict[str, Any]], list[dict[str, Any]]]

_ENTITY_TYPE = {LEAD: "lead", CONTACT: "contact", COMPANY: "company"}
_ENTITY_PATH = {LEAD: "leads", CONTACT: "contacts", COMPANY: "companies"}
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One entry of a lead's stage history: the lead is in ``status_id`` from ``at`` on."""

    at: int
    pipeline_id: int
    status_id: int


@dataclass(frozen=True, slots=True)
class LeadState:
    """A lead as of one moment, in plain values (ids are API ids, times Unix seconds).

    Attributes:
        id: Lead id.
        name: Name.
        pipeline_id: Pipeline.
        status_id: Current status (142 won, 143 lost).
        price: Current price.
        responsible_user_id: Current responsible user.
        created_by: Creator (0 for leads that came in unsorted).
        created_at: Creation time.
        updated_at: Last change at or before the moment.
        closed_at: When it was won or lost, None while open.
        loss_reason_id: Loss reason of a lost lead (None if not given or not lost).
        contact_ids: Linked contacts, main first.
        company_ids: Linked company (zero or one).
        tags: Tag names.
        source: Источник (field 502) value, or None.
        bin: БИН (field 501) value as typed, or None.
        is_deleted: Deleted (in the trash) at the moment.
        deleted_at: Time of the deletion in force, None if not deleted.
        status_history: Every status it has been in, from creation, up to the moment.
    """

    id: int
    name: str
    pipeline_id: int
    status_id: int
    price: int
    responsible_user_id: int
    created_by: int
    created_at: int
    updated_at: int
    closed_at: int | None
    loss_reason_id: int | None
    contact_ids: tuple[int, ...]
    company_ids: tuple[int, ...]
    tags: tuple[str, ...]
    source: str | None
    bin: str | None
    is_deleted: bool
    deleted_at: int | None
    status_history: tuple[StatusChange, ...]

    @property
    def is_won(self) -> bool:
        """In the won status (142)."""
        return self.status_id == WON

    @property
    def is_lost(self) -> bool:
        """In the lost status (143)."""
        return self.status_id == LOST


def is_deleted_at(deleted_at: int, restored_at: int, t: int) -> bool:
    """Whether an entity with that deletion/restore (0 = never) is in the trash at ``t``."""
    return bool(deleted_at) and deleted_at <= t and not (restored_at and restored_at <= t)


def updated_at(changes: tuple[int, ...], t: int) -> int:
    """The last change at or before ``t`` (the creation time at least)."""
    last = changes[0]
    for at in changes:
        if at > t:
            break
        last = at
    return last


def _link(root: str, path: str) -> dict[str, Any]:
    return {"self": {"href": f"{root}/api/v4/{path}"}}


def _ref(root: str, kind: int, number: int, **extra: Any) -> dict[str, Any]:
    entity_id = ID_BASE[kind] + number
    return {"id": entity_id, **extra, "_links": _link(root, f"{_ENTITY_PATH[kind]}/{entity_id}")}


def _closed_at(statuses: tuple[tuple[int, int], ...], t: int) -> int | None:
    closed = None
    for at, status in statuses:
        if at > t:
            break
        closed = at if status in (WON, LOST) else None
    return closed


#: Custom-field definitions by id (names, codes and types declared once, in ``account.CUSTOM_FIELDS``).
_FIELD_BY_ID = {field["id"]: field for fields in CUSTOM_FIELDS.values() for field in fields}


def _text(value: str | None) -> list[dict[str, Any]]:
    return [] if value is None else [{"value": value}]


def _select(choice: tuple[int, str] | None) -> list[dict[str, Any]]:
    return [] if choice is None else [{"value": choice[1], "enum_id": choice[0]}]


def _multitext(values: tuple[tuple[str, str], ...], enums: dict[str, int]) -> list[dict[str, Any]]:
    return [{"value": value, "enum_id": enums[enum], "enum_code": enum} for value, enum in values]


def custom_fields_values(
    values_by_field: Mapping[int, list[dict[str, Any]]],
    definitions: Mapping[int, Mapping[str, Any]] = _FIELD_BY_ID,
) -> list[dict[str, Any]] | None:
    """``custom_fields_values`` of a record: the fields that have values, None when none has (as the API).

    Args:
        values_by_field: Field id → its values, in the order the record lists them.
        definitions: Field definitions by id (default: the account's generated fields).

    Returns:
        The API list, or None.
    """
    fields = [
        {
            "field_id": field_id,
            "field_name": definitions[field_id]["name"],
            "field_code": definitions[field_id]["code"],
            "field_type": definitions[field_id]["type"],
            "values": values,
        }
        for field_id, values in values_by_field.items()
        if values
    ]
    return fields or None


def _loss_reason(reason: int, root: str) -> list[dict[str, Any]]:
    return [
        {
            "id": reason,
            "name": LOSS_REASON_BY_ID.get(reason, ""),
            "sort": 100_000,
            "created_at": 1_672_531_200,
            "updated_at": 1_672_531_200,
            "_links": _link(root, f"leads/loss_reasons/{reason}"),
        }
    ]


def written_record(
    kind: int,
    record: Mapping[str, Any],
    root: str,
    *,
    tags: tuple[tuple[int, str], ...],
    companies: tuple[int, ...],
    contacts: tuple[int, ...] | None = None,
    leads: list[int] | None = None,
    loss_reason: bool = False,
) -> dict[str, Any]:
    """A written lead or contact (see :mod:`~elt_platform.sandbox.amocrm.writes`) as the list shows it.

    Args:
        kind: ``LEAD`` or ``CONTACT``.
        record: Its fields, without ``_links`` and ``_embedded``.
        root: Scheme and host of the links.
        tags: ``(id, name)`` of its tags.
        companies: Linked company ids (always embedded).
        contacts: Leads: linked contact ids, main first, embedded when given (``with=contacts``).
        leads: Contacts: numbers of the visible leads linking it, embedded when given (``with=leads``).
        loss_reason: Leads: embed the loss reason (``with=loss_reason``) when it has one.

    Returns:
        The API object, shaped as the generated records are.
    """
    embedded: dict[str, Any] = {"tags": [{"id": tag_id, "name": name} for tag_id, name in tags]}
    embedded["companies"] = [_ref(root, COMPANY, company - ID_BASE[COMPANY]) for company in companies]
    if contacts is not None:
        embedded["contacts"] = [
            _ref(root, CONTACT, contact - ID_BASE[CONTACT], is_main=k == 0)
            for k, contact in enumerate(contacts)
        ]
    if leads is not None:
        embedded["leads"] = [_ref(root, LEAD, number) for number in leads]
    if loss_reason and record.get("loss_reason_id"):
        embedded["loss_reason"] = _loss_reason(record["loss_reason_id"], root)
    path = _ENTITY_PATH[kind]
    return {**record, "_links": _link(root, f"{path}/{record['id']}"), "_embedded": embedded}


def lead_record(
    script: LeadScript, t: int, root: str, *, contacts: bool, loss_reason: bool = False
) -> dict[str, Any]:
    """A lead as ``GET /api/v4/leads`` shows it at ``t``.

    Args:
        script: The lead's script.
        t: The moment (the dataset's clock).
        root: Scheme and host of the links.
        contacts: Embed ``_embedded.contacts`` (``with=contacts``); companies and tags always are.
        loss_reason: Embed ``_embedded.loss_reason`` (``with=loss_reason``).

    Returns:
        The API object.
    """
    lead_id = ID_BASE[LEAD] + script.number
    status = as_of(script.statuses, t)
    last = updated_at(script.changes, t)
    responsible = as_of(script.responsibles, t)
    reason = script.loss_reason_id if status == LOST else None
    embedded: dict[str, Any] = {"tags": [{"id": tag, "name": TAG_BY_ID[tag]} for tag in script.tags]}
    embedded["companies"] = [_ref(root, COMPANY, script.company)] if script.company else []
    if contacts:
        embedded["contacts"] = [
            _ref(root, CONTACT, number, is_main=k == 0) for k, number in enumerate(script.contacts)
        ]
    if loss_reason and reason is not None:
        embedded["loss_reason"] = _loss_reason(reason, root)
    return {
        "id": lead_id,
        "name": script.name,
        "price": as_of(script.prices, t),
        "responsible_user_id": responsible,
        "group_id": 0,
        "status_id": status,
        "pipeline_id": script.pipeline_id,
        "loss_reason_id": reason,
        "source_id": None,
        "created_by": script.created_by,
        "updated_by": script.created_by if last == script.created_at else responsible,
        "created_at": script.created_at,
        "updated_at": last,
        "closed_at": _closed_at(script.statuses, t),
        "closest_task_at": None,
        "is_deleted": False,
        "custom_fields_values": custom_fields_values(
            {LEAD_BIN_FIELD: _text(script.bin), LEAD_SOURCE_FIELD: _select(script.source)}
        ),
        "score": None,
        "account_id": ACCOUNT_ID,
        "labor_cost": None,
        "is_price_modified_by_robot": False,
        "_links": _link(root, f"leads/{lead_id}"),
        "_embedded": embedded,
    }


def contact_record(script: ContactScript, t: int, root: str, *, leads: list[int] | None) -> dict[str, Any]:
    """A contact as ``GET /api/v4/contacts`` shows it at ``t``.

    Args:
        script: The contact's script.
        t: The moment.
        root: Scheme and host of the links.
        leads: Numbers of the visible leads linking it, embedded as ``_embedded.leads`` (``with=leads``);
            None when not asked.

    Returns:
        The API object.
    """
    contact_id = ID_BASE[CONTACT] + script.number
    phones, emails = as_of(script.fields, t)
    last = updated_at(script.changes, t)
    embedded: dict[str, Any] = {
        "tags": [],
        "companies": [_ref(root, COMPANY, script.company)] if script.company else [],
    }
    if leads is not None:
        embedded["leads"] = [_ref(root, LEAD, number) for number in leads]
    return {
        "id": contact_id,
        "name": script.name,
        "first_name": script.first_name,
        "last_name": script.last_name,
        "responsible_user_id": script.responsible_user_id,
        "group_id": 0,
        "created_by": script.created_by,
        "updated_by": script.created_by if last == script.created_at else script.responsible_user_id,
        "created_at": script.created_at,
        "updated_at": last,
        "closest_task_at": None,
        "custom_fields_values": custom_fields_values(
            {
                CONTACT_PHONE_FIELD: _multitext(phones, PHONE_ENUMS),
                CONTACT_EMAIL_FIELD: _multitext(emails, EMAIL_ENUMS),
            }
        ),
        "account_id": ACCOUNT_ID,
        "_links": _link(root, f"contacts/{contact_id}"),
        "_embedded": embedded,
    }


def company_record(
    script: CompanyScript, t: int, root: str, *, contacts: list[int] | None, leads: list[int] | None
) -> dict[str, Any]:
    """A company as ``GET /api/v4/companies`` shows it at ``t``; ``contacts``/``leads`` as for contacts."""
    company_id = ID_BASE[COMPANY] + script.number
    embedded: dict[str, Any] = {"tags": []}
    if contacts is not None:
        embedded["contacts"] = [_ref(root, CONTACT, number) for number in contacts]
    if leads is not None:
        embedded["leads"] = [_ref(root, LEAD, number) for number in leads]
    return {
        "id": company_id,
        "name": as_of(script.names, t),
        "responsible_user_id": script.responsible_user_id,
        "group_id": 0,
        "created_by": script.created_by,
        "updated_by": script.responsible_user_id,
        "created_at": script.created_at,
        "updated_at": updated_at(script.changes, t),
        "closest_task_at": None,
        "custom_fields_values": custom_fields_values(
            {COMPANY_BIN_FIELD: _text(script.bin), COMPANY_INDUSTRY_FIELD: _select(script.industry)}
        ),
        "account_id": ACCOUNT_ID,
        "_links": _link(root, f"companies/{company_id}"),
        "_embedded": embedded,
    }


def task_record(script: TaskScript, t: int, root: str) -> dict[str, Any]:
    """A task as ``GET /api/v4/tasks`` shows it at ``t`` (``result`` only once completed)."""
    task_id = ID_BASE[TASK] + script.number
    completed = task_is_completed(script, t)
    entity_kind = {"leads": LEAD, "contacts": CONTACT, "companies": COMPANY}[script.entity_type]
    record: dict[str, Any] = {
        "id": task_id,
        "created_by": script.created_by,
        "updated_by": script.responsible_user_id if completed else script.created_by,
        "created_at": script.created_at,
        "updated_at": updated_at(script.changes, t),
        "responsible_user_id": script.responsible_user_id,
        "group_id": 0,
        "entity_id": ID_BASE[entity_kind] + script.entity,
        "entity_type": script.entity_type,
        "duration": 0 if script.task_type_id == 1 else 3_600,
        "is_completed": completed,
        "task_type_id": script.task_type_id,
        "text": script.text,
    }
    if completed:  # as in the documentation examples: a result only on completed tasks
        record["result"] = {"text": script.result_text} if script.result_text else {}
    record["complete_till"] = script.complete_till
    record["account_id"] = ACCOUNT_ID
    record["_links"] = _link(root, f"tasks/{task_id}")
    return record


def task_is_completed(script: TaskScript, t: int) -> bool:
    """Whether the task is completed at ``t``."""
    return bool(script.completed_at) and script.completed_at <= t


# --- events ------------------------------------------------------------------------------------------


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(_CROCKFORD[digit])
    return "".join(reversed(chars))


def event_id(at: int, kind: int, number: int, ordinal: int) -> str:
    """A ULID-looking event id (26 lowercase Crockford characters): time first, unique per event."""
    noise = int(unit(0, kind, number, 1_000 + ordinal) * (1 << 20))
    return (
        _base32(at * 1000, 10)
        + _base32(kind, 1)
        + _base32(number, 9)
        + _base32(ordinal, 2)
        + _base32(noise, 4)
    )


def _lifecycle(kind: int, script: LeadScript | ContactScript | CompanyScript, remover: int) -> list:
    name = _ENTITY_TYPE[kind]
    events: list[tuple[int, str, int, list, list]] = [
        (script.created_at, f"{name}_added", script.created_by, [], [])
    ]
    if script.deleted_at:
        events.append((script.deleted_at, f"{name}_deleted", remover, [], []))
    if script.restored_at:
        events.append((script.restored_at, f"{name}_restored", remover, [], []))
    return events


def lead_events(script: LeadScript) -> list[Event]:
    """Every event of the lead's life (also the future ones; the dataset cuts at its clock)."""
    responsibles = script.responsibles
    raw = _lifecycle(LEAD, script, as_of(responsibles, script.deleted_at or script.created_at))
    pipeline = script.pipeline_id
    # (history, event type, the event's value for one history value): one event per change, in this order.
    changes: tuple[tuple[tuple[tuple[int, int], ...], str, Callable[[int], dict[str, Any]]], ...] = (
        (
            script.statuses,
            "lead_status_changed",
            lambda s: {"lead_status": {"id": s, "pipeline_id": pipeline}},
        ),
        (script.prices, "sale_field_changed", lambda price: {"sale": {"price": price}}),
        (responsibles, "entity_responsible_changed", lambda user: {"responsible_user": {"id": user}}),
    )
    for history, event_type, value in changes:
        for (_, before), (at, after) in pairwise(history):
            # A hand-over is made by the user handing over; other changes by whoever is responsible then.
            by = before if history is responsibles else as_of(responsibles, at)
            raw.append((at, event_type, by, [value(before)], [value(after)]))
    return _numbered(LEAD, script.number, raw)


def entity_events(kind: int, script: ContactScript | CompanyScript) -> list[Event]:
    """Added / deleted / restored events of a contact (``kind`` CONTACT) or a company (COMPANY)."""
    return _numbered(kind, script.number, _lifecycle(kind, script, script.responsible_user_id))


def _numbered(kind: int, number: int, raw: list) -> list[Event]:
    return [
        (at, event_id(at, kind, number, ordinal), kind, number, etype, by, before, after)
        for ordinal, (at, etype, by, before, after) in enumerate(raw)
    ]


def event_record(event: Event, root: str) -> dict[str, Any]:
    """An event as ``GET /api/v4/events`` shows it."""
    at, eid, kind, number, etype, by, before, after = event
    return {
        "id": eid,
        "type": etype,
        "entity_id": ID_BASE[kind] + number,
        "entity_type": _ENTITY_TYPE[kind],
        "created_by": by,
        "created_at": at,
        "value_after": after,
        "value_before": before,
        "account_id": ACCOUNT_ID,
        "_links": _link(root, f"events/{eid}"),
        "_embedded": {"entity": _ref(root, kind, number)},
    }


def lead_state(script: LeadScript, t: int) -> LeadState:
    """The ground truth of a lead at ``t`` (``t`` at or after its creation)."""
    history = tuple(StatusChange(at, script.pipeline_id, status) for at, status in script.statuses if at <= t)
    status = history[-1].status_id
    deleted = is_deleted_at(script.deleted_at, script.restored_at, t)
    return LeadState(
        id=ID_BASE[LEAD] + script.number,
        name=script.name,
        pipeline_id=script.pipeline_id,
        status_id=status,
        price=as_of(script.prices, t),
        responsible_user_id=as_of(script.responsibles, t),
        created_by=script.created_by,
        created_at=script.created_at,
        updated_at=updated_at(script.changes, t),
        closed_at=_closed_at(script.statuses, t),
        loss_reason_id=script.loss_reason_id if status == LOST else None,
        contact_ids=tuple(ID_BASE[CONTACT] + n for n in script.contacts),
        company_ids=(ID_BASE[COMPANY] + script.company,) if script.company else (),
        tags=tuple(TAG_BY_ID[tag] for tag in script.tags),
        source=script.source[1] if script.source else None,
        bin=script.bin,
        is_deleted=deleted,
        deleted_at=script.deleted_at if deleted else None,
        status_history=history,
    )

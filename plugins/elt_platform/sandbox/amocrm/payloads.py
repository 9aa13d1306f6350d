"""Write bodies of the amoCRM sandbox: validated as the real API does, then turned into plain changes.

amoCRM validates a whole request before writing anything: one invalid entity and the answer is a
400 ``application/problem+json`` listing, per entity (its ``request_id``), errors of the shape
``{"code", "path", "detail"}`` with Symfony validator messages, and nothing is written
(amocrm/amocrm-api-php#115, #21, #480)::

    {"validation-errors": [{"request_id": "0", "errors": [{"code": "NotSupportedChoice",
      "path": "custom_fields_values.0.field_id",
      "detail": "The value you selected is not a valid choice."}]}],
     "title": "Bad Request", "type": "https://httpstatus.es/400", "status": 400,
     "detail": "Request validation failed"}

Codes seen in real bodies: ``NotSupportedChoice`` (unknown field, enum, pipeline, status or user). The
sandbox also uses Symfony's ``InvalidType``, ``NotBlank`` and ``Count`` with their standard messages
for wrong types, a missing ``id`` on update and batches over the limit, and ``NotFound`` for an update
of an id the account does not have (the real code for that case is not documented: inferred).

Custom-field values by field type (:data:`VALUE_READERS`): text-like fields take a string (numbers
are written as text), ``numeric`` a number or numeric string (kept as a string, as amoCRM answers it),
dates Unix seconds, ``checkbox`` a boolean, ``select``/``radiobutton``/``multiselect`` an ``enum_id``
or an enum's ``value``, ``multitext`` (PHONE, EMAIL) a string with an ``enum_code`` (WORK, MOB, …) or
``enum_id``, WORK when neither. ``"values": null`` clears a field; fields left out are untouched.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from elt_platform.sandbox.amocrm.account import LOST, UNSORTED_TYPE, WON, Pipeline

#: Batch limits: entities per request of the add/update lists, and of ``leads/complex``.
MAX_BATCH = 250
MAX_COMPLEX_BATCH = 50
#: ``leads/complex``: linked contacts (and companies) per lead.
MAX_COMPLEX_LINKS = 1

#: (code, detail) of each validation error the sandbox gives.
NOT_SUPPORTED = ("NotSupportedChoice", "The value you selected is not a valid choice.")
NOT_BLANK = ("NotBlank", "This value should not be blank.")
NOT_FOUND = ("NotFound", "Entity not found.")
_TYPE_NAMES = ("int", "string", "bool", "array", "object", "numeric")
INVALID = {name: ("InvalidType", f"This value should be of type {name}.") for name in _TYPE_NAMES}


def too_many(limit: int) -> tuple[str, str]:
    """The ``Count`` error of a collection longer than ``limit``."""
    noun = "element" if limit == 1 else "elements"
    return "Count", f"This collection should contain {limit} {noun} or less."


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


class Rejected(Exception):
    """A request that fails validation: answer 400 with :attr:`validation_errors`, write nothing."""

    def __init__(self, validation_errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(validation_errors)} invalid entities")
        self.validation_errors = validation_errors


@dataclass(frozen=True)
class AccountRules:
    """What validation needs to know about the account at the moment of a write.

    Attributes:
        pipelines: Pipelines by id.
        main_pipeline: Where a lead goes without ``pipeline_id``/``status_id`` (its first open stage).
        fields: Custom-field definitions by entity (``leads``, ``contacts``, ``companies``), then id.
        users: Ids of the account's users.
        tags: Existing tag names by id.
        current: ``current(entity, api_id)`` is the visible record (as the list shows it) or None.
    """

    pipelines: Mapping[int, Pipeline]
    main_pipeline: Pipeline
    fields: Mapping[str, Mapping[int, Mapping[str, Any]]]
    users: frozenset[int]
    tags: Mapping[int, str]
    current: Callable[[str, int], Mapping[str, Any] | None]

    def field(self, entity: str, item: Mapping[str, Any]) -> tuple[str, Mapping[str, Any] | None]:
        """The definition an item of ``custom_fields_values`` names (by ``field_id``, else ``field_code``).

        Returns:
            The key that named it (for the error path) and the definition, or None if unknown.
        """
        definitions = self.fields.get(entity, {})
        if "field_id" in item or "field_code" not in item:
            field_id = item.get("field_id")
            return "field_id", definitions.get(field_id) if _is_int(field_id) else None
        code = item.get("field_code")
        return "field_code", next((d for d in definitions.values() if code and d.get("code") == code), None)

    def status_owner(self, status_id: int) -> Pipeline | None:
        """The pipeline holding an ordinary status (ids are unique except the shared 142/143)."""
        return next((p for p in self.pipelines.values() if any(s.id == status_id for s in p.statuses)), None)


@dataclass
class Change:
    """One entity of a write request, validated.

    Attributes:
        request_id: The entity's ``request_id`` (its index in the array when the client sent none).
        target: API id of the entity to update (None: create).
        values: Plain fields to set (``name``, ``price``, ``pipeline_id``, ``status_id``,
            ``responsible_user_id``, ``loss_reason_id``, ``first_name``, ``last_name``).
        custom_fields: Field id → normalised values; ``[]`` clears the field.
        tags: Tag ids (int) or new names (str) replacing the tags; None leaves them.
        contacts: Contact ids to link, main first (creates only); None: none given.
        companies: Company ids to link (creates only); None: none given.
        contact: ``leads/complex`` only: a new contact to create and link (None: none or by id).
    """

    request_id: str
    target: int | None = None
    values: dict[str, Any] = field(default_factory=dict)
    custom_fields: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    tags: list[int | str] | None = None
    contacts: list[int] | None = None
    companies: list[int] | None = None
    contact: "Change | None" = None


class _Errors:
    """The errors of one entity, paths prefixed (an embedded contact's errors are its lead's)."""

    def __init__(self, prefix: str = "", items: list[dict[str, str]] | None = None) -> None:
        self.prefix = prefix
        self.items = items if items is not None else []

    def add(self, path: str, error: tuple[str, str]) -> None:
        self.items.append({"code": error[0], "path": self.prefix + path, "detail": error[1]})

    def nested(self, prefix: str) -> "_Errors":
        return _Errors(self.prefix + prefix, self.items)


# --- custom-field values ------------------------------------------------------------------------------


def _text(value: Any, raw: Mapping[str, Any], definition: Mapping[str, Any]) -> dict[str, Any] | str:
    if isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool)):
        return {"value": str(value)}
    return "string"


def _numeric(value: Any, raw: Mapping[str, Any], definition: Mapping[str, Any]) -> dict[str, Any] | str:
    if isinstance(value, bool):
        return "numeric"
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return "numeric"
        return {"value": value.strip()}
    if isinstance(value, int | float):
        return {"value": str(int(value) if float(value).is_integer() else value)}
    return "numeric"


def _date(value: Any, raw: Mapping[str, Any], definition: Mapping[str, Any]) -> dict[str, Any] | str:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return {"value": value} if _is_int(value) else "int"


def _checkbox(value: Any, raw: Mapping[str, Any], definition: Mapping[str, Any]) -> dict[str, Any] | str:
    return {"value": value} if isinstance(value, bool) else "bool"


def _choice(value: Any, raw: Mapping[str, Any], definition: Mapping[str, Any]) -> dict[str, Any] | None:
    enums = definition.get("enums") or []
    wanted = raw.get("enum_id")
    enum = next(
        (e for e in enums if (e["id"] == wanted if wanted is not None else e["value"] == value)), None
    )
    return None if enum is None else {"value": enum["value"], "enum_id": enum["id"]}


def _multitext(
    value: Any, raw: Mapping[str, Any], definition: Mapping[str, Any]
) -> dict[str, Any] | str | None:
    if not isinstance(value, str):
        return "string"
    enums = definition.get("enums") or []
    code, enum_id = raw.get("enum_code"), raw.get("enum_id")
    if code is None and enum_id is None:
        code = enums[0]["value"] if enums else None
    enum = next((e for e in enums if e["id"] == enum_id or (code is not None and e["value"] == code)), None)
    return None if enum is None else {"value": value, "enum_id": enum["id"], "enum_code": enum["value"]}


#: Field type → reader of one item of ``values``: the stored value, a type name (InvalidType), or None
#: (NotSupportedChoice: no such enum).
VALUE_READERS: dict[
    str, Callable[[Any, Mapping[str, Any], Mapping[str, Any]], dict[str, Any] | str | None]
] = {
    **dict.fromkeys(("text", "textarea", "url", "streetaddress"), _text),
    "numeric": _numeric,
    **dict.fromkeys(("date", "date_time", "birthday"), _date),
    "checkbox": _checkbox,
    **dict.fromkeys(("select", "radiobutton", "multiselect"), _choice),
    "multitext": _multitext,
}


def _field_values(
    definition: Mapping[str, Any], values: list[Any], path: str, errors: _Errors
) -> list[dict[str, Any]]:
    read = VALUE_READERS.get(definition["type"], _text)
    kept = []
    for j, raw in enumerate(values):
        if not isinstance(raw, dict):
            errors.add(f"{path}.{j}", INVALID["object"])
            continue
        stored = read(raw.get("value"), raw, definition)
        if stored is None:
            named = next((key for key in ("enum_id", "enum_code") if key in raw), "value")
            errors.add(f"{path}.{j}.{named}", NOT_SUPPORTED)
        elif isinstance(stored, str):
            errors.add(f"{path}.{j}.value", INVALID[stored])
        else:
            kept.append(stored)
    return kept


def _custom_fields(
    raw: Any, entity: str, rules: AccountRules, errors: _Errors
) -> dict[int, list[dict[str, Any]]]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        errors.add("custom_fields_values", INVALID["array"])
        return {}
    found: dict[int, list[dict[str, Any]]] = {}
    for i, item in enumerate(raw):
        path = f"custom_fields_values.{i}"
        if not isinstance(item, dict):
            errors.add(path, INVALID["object"])
            continue
        key, definition = rules.field(entity, item)
        if definition is None:
            errors.add(f"{path}.{key}", NOT_SUPPORTED)
            continue
        values = item.get("values")
        if values is None:
            found[definition["id"]] = []
        elif not isinstance(values, list):
            errors.add(f"{path}.values", INVALID["array"])
        else:
            found[definition["id"]] = _field_values(definition, values, f"{path}.values", errors)
    return found


# --- plain fields, placement, links ---------------------------------------------------------------------

#: Plain fields of each entity and the JSON type each must have.
PLAIN_FIELDS: dict[str, dict[str, str]] = {
    "leads": {"name": "string", "price": "int", "responsible_user_id": "int", "loss_reason_id": "int"},
    "contacts": {
        "name": "string",
        "first_name": "string",
        "last_name": "string",
        "responsible_user_id": "int",
    },
}
_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {"string": lambda v: isinstance(v, str), "int": _is_int}


def _plain(item: Mapping[str, Any], entity: str, rules: AccountRules, errors: _Errors) -> dict[str, Any]:
    values = {}
    for name, kind in PLAIN_FIELDS[entity].items():
        if item.get(name) is None:
            continue
        if not _TYPE_CHECKS[kind](item[name]):
            errors.add(name, INVALID[kind])
        elif name == "responsible_user_id" and item[name] not in rules.users:
            errors.add(name, NOT_SUPPORTED)
        else:
            values[name] = item[name]
    return values


def _placement(
    item: Mapping[str, Any], rules: AccountRules, current: Mapping[str, Any] | None, errors: _Errors
) -> dict[str, int]:
    """``pipeline_id``/``status_id`` to set: validated, defaulted as amoCRM does, {} when untouched."""
    pipeline_raw, status_raw = item.get("pipeline_id"), item.get("status_id")
    if pipeline_raw is None and status_raw is None:
        if current is not None:
            return {}
        main = rules.main_pipeline
        return {"pipeline_id": main.id, "status_id": main.open_statuses[0].id}
    pipeline = None
    if pipeline_raw is not None:
        pipeline = rules.pipelines.get(pipeline_raw) if _is_int(pipeline_raw) else None
        if pipeline is None:
            errors.add("pipeline_id", NOT_SUPPORTED if _is_int(pipeline_raw) else INVALID["int"])
            return {}
    if status_raw is None:
        assert pipeline is not None
        if current is not None and current.get("pipeline_id") == pipeline.id:
            return {}
        return {"pipeline_id": pipeline.id, "status_id": pipeline.open_statuses[0].id}
    if not _is_int(status_raw):
        errors.add("status_id", INVALID["int"])
        return {}
    if pipeline is None:
        if status_raw in (WON, LOST):
            # 142/143 exist in every pipeline: without pipeline_id they mean the lead's own (or the main one).
            own = rules.pipelines.get(current["pipeline_id"]) if current is not None else None
            pipeline = own or rules.main_pipeline
        else:
            pipeline = rules.status_owner(status_raw)
    status = next((s for s in pipeline.statuses if s.id == status_raw), None) if pipeline else None
    # Leads enter "Неразобранное" only through the unsorted API, never by status_id.
    if pipeline is None or status is None or status.type == UNSORTED_TYPE:
        errors.add("status_id", NOT_SUPPORTED)
        return {}
    return {"pipeline_id": pipeline.id, "status_id": status.id}


def _links(raw: Any, entity: str, path: str, rules: AccountRules, errors: _Errors) -> list[int] | None:
    """Ids of existing entities linked by ``_embedded.<entity>``, main (``is_main``) first."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        errors.add(path, INVALID["array"])
        return None
    ids: list[int] = []
    for k, link in enumerate(raw):
        link_id = link.get("id") if isinstance(link, dict) else None
        if not _is_int(link_id) or rules.current(entity, link_id) is None:
            errors.add(f"{path}.{k}.id", NOT_SUPPORTED)
        elif link.get("is_main"):
            ids.insert(0, link_id)
        else:
            ids.append(link_id)
    return ids


def _tags(raw: Any, rules: AccountRules, errors: _Errors) -> list[int | str] | None:
    if raw is None:
        return []  # "tags": null detaches every tag
    if not isinstance(raw, list):
        errors.add("_embedded.tags", INVALID["array"])
        return None
    tags: list[int | str] = []
    for k, tag in enumerate(raw):
        tag_id = tag.get("id") if isinstance(tag, dict) else None
        name = tag.get("name") if isinstance(tag, dict) else None
        if _is_int(tag_id) and tag_id in rules.tags:
            tags.append(tag_id)
        elif tag_id is None and isinstance(name, str) and name.strip():
            tags.append(name.strip())
        else:
            errors.add(f"_embedded.tags.{k}", NOT_SUPPORTED)
    return tags


def _embedded(item: Mapping[str, Any], errors: _Errors) -> Mapping[str, Any]:
    embedded = item.get("_embedded")
    if embedded is None:
        return {}
    if not isinstance(embedded, dict):
        errors.add("_embedded", INVALID["object"])
        return {}
    return embedded


def _target(
    item: Mapping[str, Any], entity: str, rules: AccountRules, errors: _Errors
) -> tuple[int | None, Mapping[str, Any] | None]:
    target = item.get("id")
    if target is None:
        errors.add("id", NOT_BLANK)
        return None, None
    if not _is_int(target):
        errors.add("id", INVALID["int"])
        return None, None
    current = rules.current(entity, target)
    if current is None:
        errors.add("id", NOT_FOUND)
    return target, current


# --- entities -----------------------------------------------------------------------------------------


def _request_id(item: Any, index: int) -> str:
    given = item.get("request_id") if isinstance(item, dict) else None
    return str(given) if given is not None else str(index)


def lead_change(
    item: Any, index: int, rules: AccountRules, *, update: bool = False, errors: _Errors | None = None
) -> tuple[Change, list[dict[str, str]]]:
    """Validate one lead of a ``POST``/``PATCH /api/v4/leads`` body.

    Args:
        item: The entity as sent.
        index: Its position in the array (its ``request_id`` when it has none).
        rules: The account.
        update: A PATCH: ``id`` is required and names an existing lead.
        errors: Where to collect errors (``leads/complex`` shares one collector per lead).

    Returns:
        The change and the entity's errors (empty when valid).
    """
    errors = errors if errors is not None else _Errors()
    change = Change(_request_id(item, index))
    if not isinstance(item, dict):
        errors.add("", INVALID["object"])
        return change, errors.items
    current = None
    if update:
        change.target, current = _target(item, "leads", rules, errors)
    change.values = {**_plain(item, "leads", rules, errors), **_placement(item, rules, current, errors)}
    change.custom_fields = _custom_fields(item.get("custom_fields_values"), "leads", rules, errors)
    embedded = _embedded(item, errors)
    if "tags" in embedded:
        change.tags = _tags(embedded["tags"], rules, errors)
    if not update:
        change.contacts = _links(embedded.get("contacts"), "contacts", "_embedded.contacts", rules, errors)
        change.companies = _links(
            embedded.get("companies"), "companies", "_embedded.companies", rules, errors
        )
    return change, errors.items


def contact_change(
    item: Any, index: int, rules: AccountRules, *, update: bool = False, errors: _Errors | None = None
) -> tuple[Change, list[dict[str, str]]]:
    """Validate one contact of a ``POST``/``PATCH /api/v4/contacts`` body (see :func:`lead_change`)."""
    errors = errors if errors is not None else _Errors()
    change = Change(_request_id(item, index))
    if not isinstance(item, dict):
        errors.add("", INVALID["object"])
        return change, errors.items
    if update:
        change.target, _ = _target(item, "contacts", rules, errors)
    change.values = _plain(item, "contacts", rules, errors)
    change.custom_fields = _custom_fields(item.get("custom_fields_values"), "contacts", rules, errors)
    embedded = _embedded(item, errors)
    if "tags" in embedded:
        change.tags = _tags(embedded["tags"], rules, errors)
    if not update:
        change.companies = _links(
            embedded.get("companies"), "companies", "_embedded.companies", rules, errors
        )
    return change, errors.items


def complex_change(item: Any, index: int, rules: AccountRules) -> tuple[Change, list[dict[str, str]]]:
    """Validate one lead of ``POST /api/v4/leads/complex``: a lead with at most one contact and company.

    The contact is linked by ``id`` or created from the embedded object (its errors carry the path
    ``_embedded.contacts.0.…``); the company only by ``id`` (the sandbox does not create companies).

    Returns:
        The lead's change (its ``contact`` set for a new contact) and its errors.
    """
    errors = _Errors()
    embedded = item.get("_embedded") if isinstance(item, dict) else None
    contacts = embedded.get("contacts") if isinstance(embedded, dict) else None
    lead_item = item
    if isinstance(embedded, dict) and isinstance(contacts, list):
        lead_item = {**item, "_embedded": {k: v for k, v in embedded.items() if k != "contacts"}}
    change, _ = lead_change(lead_item, index, rules, errors=errors)
    for name in ("contacts", "companies"):
        linked = embedded.get(name) if isinstance(embedded, dict) else None
        if isinstance(linked, list) and len(linked) > MAX_COMPLEX_LINKS:
            errors.add(f"_embedded.{name}", too_many(MAX_COMPLEX_LINKS))
    if isinstance(contacts, list) and len(contacts) == 1:
        contact = contacts[0]
        if isinstance(contact, dict) and "id" in contact:
            change.contacts = _links(contacts, "contacts", "_embedded.contacts", rules, errors)
        else:
            change.contact, _ = contact_change(
                contact, 0, rules, errors=errors.nested("_embedded.contacts.0.")
            )
    return change, errors.items


def batch(
    body: Any, limit: int, read: Callable[[Any, int], tuple[Change, list[dict[str, str]]]]
) -> list[Change]:
    """Validate a whole request body (a JSON array) entity by entity.

    Args:
        body: The decoded body.
        limit: Entities allowed per request (:data:`MAX_BATCH`, :data:`MAX_COMPLEX_BATCH`).
        read: Validates one entity (``read(item, index)``), e.g. :func:`lead_change`.

    Returns:
        The changes, in request order.

    Raises:
        Rejected: The body is not an array of 1…``limit`` entities, or any entity is invalid.
    """
    if not isinstance(body, list) or not body or len(body) > limit:
        error = (
            INVALID["array"]
            if not isinstance(body, list)
            else too_many(limit)
            if body
            else ("Count", "This collection should contain 1 element or more.")
        )
        raise Rejected([{"request_id": "0", "errors": [{"code": error[0], "path": "", "detail": error[1]}]}])
    changes, problems = [], []
    for index, item in enumerate(body):
        change, errors = read(item, index)
        changes.append(change)
        if errors:
            problems.append({"request_id": change.request_id, "errors": errors})
    if problems:
        raise Rejected(problems)
    return changes

"""Turn amoCRM API v4 list pages into bronze rows and quarantined records; pure, no I/O.

Contract with the loader (:mod:`elt_platform.sources.amocrm.extract`):

* a page unusable as a whole (not an object, no ``_embedded.<entity>`` list) raises :class:`PageShapeError`,
  so the task fails and the raw page already landed stays for inspection;
* every record of a usable page ends up either in ``rows`` or in ``quarantined``: nothing is dropped,
  nothing is reordered (silver keeps the latest version of each id, dbt);
* nested values are kept as JSON text (``custom_fields_values``, each ``_embedded`` part, ``rights``…) and
  the whole record as ``raw_json``, so an API change never fails a load: typing happens in staging;
* a record is quarantined when bronze could not key or slice it (no integer id, no usable timestamp, a day
  outside the interval) or a declared column has the wrong JSON type: a string where an integer belongs
  would otherwise fail the whole Arrow conversion. Reasons name the column and the JSON type, never the
  value (it may be personal data).

Timestamps are Unix seconds (real instants): the slice day is their **UTC** day.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from elt_platform.http.decoding import json_type_name

#: Reason codes a quarantined record can carry (the part of ``reason`` before ``": "``).
QUARANTINE_REASONS = (
    "record_not_object",
    "missing_id",
    "bad_id",
    "missing_timestamp",
    "bad_timestamp",
    "outside_interval",
    "bad_type",
    "bad_embedded",
)

_INT64 = (-(2**63), 2**63 - 1)


class PageShapeError(ValueError):
    """A page is unusable as a whole: not a JSON object, or without its ``_embedded.<entity>`` list."""


@dataclass(frozen=True)
class Shape:
    """How one entity's records map onto its bronze table (a table of field maps, not code per entity).

    Attributes:
        key: The ``_embedded`` key of the list response.
        slice_column: The bronze table's slice column.
        cursor: Timestamp giving the slice day (``updated_at``/``created_at``); None for snapshots.
        id_kind: ``int`` (a positive integer) or ``str`` (events: a non-empty string).
        ints: Integer columns, same name in the record.
        strings: String columns, same name in the record.
        bools: Boolean columns, same name in the record.
        json: Column → (record key, expected JSON type or None for any): kept as JSON text.
        embedded: Column → ``_embedded`` part (a list): kept as JSON text.
        nested: Column → (key, sub-key) of a scalar inside an object (``result.text`` of tasks).
    """

    key: str
    slice_column: str
    cursor: str | None = None
    id_kind: type = int
    ints: tuple[str, ...] = ()
    strings: tuple[str, ...] = ()
    bools: tuple[str, ...] = ()
    json: Mapping[str, tuple[str, type | None]] = field(default_factory=dict)
    embedded: Mapping[str, str] = field(default_factory=dict)
    nested: Mapping[str, tuple[str, str]] = field(default_factory=dict)


_AUDIT = ("responsible_user_id", "created_by", "updated_by", "created_at", "updated_at")


def _crm_entity(
    key: str, *, ints: tuple[str, ...], strings: tuple[str, ...], embedded: Mapping[str, str]
) -> Shape:
    """Leads, contacts and companies: sliced by their update day, soft-deletable, with custom-field values."""
    return Shape(
        key=key,
        slice_column="updated_date",
        cursor="updated_at",
        ints=ints,
        strings=strings,
        bools=("is_deleted",),
        json={"custom_fields_values": ("custom_fields_values", list)},
        embedded=embedded,
    )


#: Entity → its shape; the columns are those of ``schemas/bronze/amocrm/<entity>.yaml``.
SHAPES: dict[str, Shape] = {
    "leads": _crm_entity(
        "leads",
        ints=(
            "price",
            "responsible_user_id",
            "status_id",
            "pipeline_id",
            "loss_reason_id",
            "created_by",
            "updated_by",
            "created_at",
            "updated_at",
            "closed_at",
            "score",
            "labor_cost",
        ),
        strings=("name",),
        embedded={"tags_json": "tags", "contacts_json": "contacts", "companies_json": "companies"},
    ),
    "contacts": _crm_entity(
        "contacts",
        ints=_AUDIT,
        strings=("name", "first_name", "last_name"),
        embedded={"companies_json": "companies", "leads_json": "leads"},
    ),
    "companies": _crm_entity(
        "companies",
        ints=_AUDIT,
        strings=("name",),
        embedded={"contacts_json": "contacts", "leads_json": "leads"},
    ),
    "tasks": Shape(
        key="tasks",
        slice_column="updated_date",
        cursor="updated_at",
        ints=(
            "responsible_user_id",
            "entity_id",
            "task_type_id",
            "complete_till",
            "created_at",
            "updated_at",
        ),
        strings=("text", "entity_type"),
        bools=("is_completed",),
        nested={"result_text": ("result", "text")},
    ),
    "events": Shape(
        key="events",
        slice_column="created_date",
        cursor="created_at",
        id_kind=str,
        ints=("entity_id", "created_by", "created_at", "account_id"),
        strings=("type", "entity_type"),
        json={"value_after": ("value_after", None), "value_before": ("value_before", None)},
    ),
    "pipelines": Shape(
        key="pipelines",
        slice_column="snapshot_date",
        ints=("sort",),
        strings=("name",),
        bools=("is_main", "is_archive"),
        embedded={"statuses_json": "statuses"},
    ),
    "users": Shape(
        key="users",
        slice_column="snapshot_date",
        strings=("name", "email"),
        json={"rights_json": ("rights", dict)},
    ),
    "custom_fields": Shape(
        key="custom_fields",
        slice_column="snapshot_date",
        ints=("sort",),
        strings=("name", "code", "type"),
        bools=("is_deletable",),
        json={"enums_json": ("enums", list)},
    ),
}


@dataclass
class ParsedPage:
    """One page, flattened.

    Attributes:
        rows: One dict per valid record, keyed by bronze column (the slice column included, ``loaded_at``
            left to the loader).
        quarantined: One dict per rejected record: ``slice_date``, ``entity``, ``reason``
            (``"<code>: <detail>"``, code from :data:`QUARANTINE_REASONS`), ``raw_json``.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)


class _Rejected(Exception):
    """Internal: the record goes to quarantine with this reason."""


def to_json(value: Any) -> str | None:
    """Compact JSON text with readable Cyrillic (None stays None)."""
    return None if value is None else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _int(value: Any, column: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # some PHP serialisers send 500.0 for 500
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Rejected(f"bad_type: {column} is a {json_type_name(value)}, expected an integer")
    if not _INT64[0] <= value <= _INT64[1]:
        raise _Rejected(f"bad_type: {column} does not fit a 64-bit integer")
    return value


def _str(value: Any, column: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # a name like "1" sent as a number loses nothing
    raise _Rejected(f"bad_type: {column} is a {json_type_name(value)}, expected a string")


def _bool(value: Any, column: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise _Rejected(f"bad_type: {column} is a {json_type_name(value)}, expected a boolean")


def _record_id(record: Mapping[str, Any], kind: type) -> int | str:
    if record.get("id") is None:
        raise _Rejected("missing_id: record has no id")
    value = record["id"]
    if kind is str:
        if not isinstance(value, str) or not value.strip():
            raise _Rejected(f"bad_id: id is a {json_type_name(value)}, expected a non-empty string")
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _INT64[1]:
        raise _Rejected(f"bad_id: id is a {json_type_name(value)}, expected a positive integer")
    return value


def utc_day(seconds: int) -> date:
    """The UTC calendar day of a Unix timestamp (raises ``OverflowError``/``OSError``/``ValueError``)."""
    return datetime.fromtimestamp(seconds, UTC).date()


def _slice_day(record: Mapping[str, Any], cursor: str, first: date, end: date) -> date:
    value = record.get(cursor)
    if value is None:
        raise _Rejected(f"missing_timestamp: record has no {cursor}")
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Rejected(f"bad_timestamp: {cursor} is a {json_type_name(value)}, expected Unix seconds")
    try:
        day = utc_day(value)
    except (OverflowError, OSError, ValueError):
        raise _Rejected(f"bad_timestamp: {cursor} is not a usable Unix time") from None
    if not first <= day < end:
        raise _Rejected(f"outside_interval: {cursor} is on {day.isoformat()}, not in [{first}, {end})")
    return day


def _embedded_parts(record: Mapping[str, Any]) -> Mapping[str, Any]:
    embedded = record.get("_embedded")
    if embedded is None or embedded == []:  # PHP encodes an empty map as []
        return {}
    if not isinstance(embedded, dict):
        raise _Rejected(f"bad_embedded: _embedded is a {json_type_name(embedded)}, expected an object")
    return embedded


def _row(record: Mapping[str, Any], shape: Shape, slice_day: date) -> dict[str, Any]:
    row: dict[str, Any] = {shape.slice_column: slice_day, "id": _record_id(record, shape.id_kind)}
    for column in shape.ints:
        row[column] = _int(record.get(column), column)
    for column in shape.strings:
        row[column] = _str(record.get(column), column)
    for column in shape.bools:
        row[column] = _bool(record.get(column), column)
    for column, (key, expected) in shape.json.items():
        value = record.get(key)
        if value is not None and expected is not None and not isinstance(value, expected):
            kind = "an array" if expected is list else "an object"
            raise _Rejected(f"bad_type: {key} is a {json_type_name(value)}, expected {kind}")
        row[column] = to_json(value)
    if shape.embedded:
        parts = _embedded_parts(record)
        for column, part in shape.embedded.items():
            value = parts.get(part)
            if value is not None and not isinstance(value, list):
                raise _Rejected(
                    f"bad_embedded: _embedded.{part} is a {json_type_name(value)}, expected an array"
                )
            row[column] = to_json(value)
    for column, (key, sub_key) in shape.nested.items():
        container = record.get(key)
        # amoCRM sends "result": [] (PHP's empty map) on tasks without a result.
        value = container.get(sub_key) if isinstance(container, dict) else None
        row[column] = _str(value, f"{key}.{sub_key}")
    row["raw_json"] = to_json(record)
    return row


def parse_records(
    entity: str,
    records: Sequence[Any],
    *,
    first: date,
    end: date,
    extra: Mapping[str, Any] | None = None,
) -> ParsedPage:
    """Flatten one page's records of ``entity`` into bronze rows and quarantined records.

    Args:
        entity: A key of :data:`SHAPES`.
        records: The page's ``_embedded.<key>`` list.
        first: First day of the data interval: the snapshot date of snapshot entities, and the slice
            day of quarantined records that have no usable day of their own.
        end: Day after the interval's last day: records whose slice day is not in ``[first, end)`` are
            quarantined (``replace_slice`` would refuse them, and a rerun would not replace them).
        extra: Constant columns for every row (``entity_type`` of custom-field definitions).

    Returns:
        The rows and the quarantined records, in page order.
    """
    shape = SHAPES[entity]
    parsed = ParsedPage()
    for record in records:
        try:
            if not isinstance(record, dict):
                raise _Rejected(f"record_not_object: a {json_type_name(record)}")
            day = first if shape.cursor is None else _slice_day(record, shape.cursor, first, end)
            row = _row(record, shape, day)
        except _Rejected as rejected:
            parsed.quarantined.append(
                {"slice_date": first, "entity": entity, "reason": str(rejected), "raw_json": to_json(record)}
            )
            continue
        if extra:
            row.update(extra)
        parsed.rows.append(row)
    return parsed


def page_records(data: Any, key: str, what: str) -> list[Any]:
    """The records of a decoded list page.

    Args:
        data: The decoded body; None for HTTP 204 (amoCRM's empty result).
        key: The ``_embedded`` key (``leads``, ``custom_fields``…).
        what: The request, for messages.

    Returns:
        The ``_embedded.<key>`` list (empty for 204).

    Raises:
        PageShapeError: The body is not an object with an ``_embedded.<key>`` array.
    """
    if data is None:
        return []
    if not isinstance(data, dict):
        raise PageShapeError(f"{what}: page is a JSON {json_type_name(data)}, expected an object")
    embedded = data.get("_embedded")
    if not isinstance(embedded, dict) or key not in embedded:
        keys = sorted(embedded)[:10] if isinstance(embedded, dict) else json_type_name(embedded)
        raise PageShapeError(f"{what}: page has no _embedded.{key} (found {keys}); keys {sorted(data)[:10]}")
    records = embedded[key]
    if not isinstance(records, list):
        raise PageShapeError(f"{what}: _embedded.{key} is a {json_type_name(records)}, expected an array")
    return records


def has_next(data: Any) -> bool:
    """Whether a decoded page links a next page (the last page has only ``self``)."""
    if not isinstance(data, dict):
        return False
    links = data.get("_links")
    following = links.get("next") if isinstance(links, dict) else None
    return bool(following.get("href")) if isinstance(following, dict) else bool(following)


FieldKey = tuple[str, int]


def custom_field_changes(
    previous: Iterable[tuple[str, int, str | None]],
    current: Iterable[tuple[str, int, str | None]],
    entity_types: Sequence[str],
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Compare two snapshots of custom-field definitions.

    Silver maps fields by id (dbt settings), so an account admin's new, renamed or removed field is
    what the analysts need to hear about: a removed field's column goes empty, a new one is unmapped.

    Args:
        previous: ``(entity_type, id, name)`` of the earlier snapshot.
        current: ``(entity_type, id, name)`` of this run's snapshot.
        entity_types: The entity types reported (each gets an entry, changes or not).

    Returns:
        ``{entity_type: {"new": [{id, name}], "renamed": [{id, from, to}], "removed": [{id, name}]}}``,
        each list ordered by id.
    """
    before: dict[FieldKey, str | None] = {(e, i): n for e, i, n in previous}
    after: dict[FieldKey, str | None] = {(e, i): n for e, i, n in current}
    report: dict[str, dict[str, list[dict[str, Any]]]] = {
        entity: {"new": [], "renamed": [], "removed": []} for entity in entity_types
    }
    for (entity, field_id), name in sorted(after.items()):
        if entity not in report:
            continue
        if (entity, field_id) not in before:
            report[entity]["new"].append({"id": field_id, "name": name})
        elif before[(entity, field_id)] != name:
            report[entity]["renamed"].append({"id": field_id, "from": before[(entity, field_id)], "to": name})
    for (entity, field_id), name in sorted(before.items()):
        if entity in report and (entity, field_id) not in after:
            report[entity]["removed"].append({"id": field_id, "name": name})
    return report

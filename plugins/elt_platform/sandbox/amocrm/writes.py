"""What writes did to the sandbox account: written leads and contacts, their versions, events and counters.

The generated history is fixed by the seed (:mod:`elt_platform.sandbox.amocrm.scripts`); writes (API
requests, a person's edits through the admin API, seeds) live beside it in :class:`WrittenState`:

* a **new** entity gets the number ``WRITTEN_BASE + k`` (API id = kind base + number: leads from
  38,000,001, contacts from 48,000,001), far above the generated ones, which keep growing with the clock;
* a **generated** entity written to is *taken over*: from that moment on its record is the written one
  and its script no longer applies (no later stage moves, edits, deletion or events of the script).

Every write is a new :class:`Version` (the record as the list shows it, without ``_links`` and
``_embedded``, plus its links and tags), so the state at any earlier moment stays answerable and an
incremental extract sees exactly the versions of its window. Writes emit the events the real account
would (``lead_added``, ``contact_added``, ``lead_status_changed``, ``sale_field_changed``,
``entity_responsible_changed``); custom-field change events are not modelled.
"""

import threading
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from elt_platform.sandbox.amocrm.account import (
    ACCOUNT_ID,
    LEAD_BIN_FIELD,
    LEAD_SOURCE_FIELD,
    LOST,
    TAGS,
    WON,
)
from elt_platform.sandbox.amocrm.payloads import Change
from elt_platform.sandbox.amocrm.records import (
    Event,
    LeadState,
    StatusChange,
    custom_fields_values,
    event_id,
)
from elt_platform.sandbox.amocrm.scripts import CONTACT, ID_BASE, LEAD

#: Numbers of new entities start above this (generated numbers stay far below it).
WRITTEN_BASE = 8_000_000
#: Ordinals of written events (script events use small ones): keeps event ids unique per entity.
_EVENT_ORDINAL_BASE = 512

#: A new record before its first change: every field the list shows, in the API's order.
TEMPLATES: dict[int, dict[str, Any]] = {
    LEAD: {
        "id": None,
        "name": "",
        "price": 0,
        "responsible_user_id": None,
        "group_id": 0,
        "status_id": None,
        "pipeline_id": None,
        "loss_reason_id": None,
        "source_id": None,
        "created_by": None,
        "updated_by": None,
        "created_at": None,
        "updated_at": None,
        "closed_at": None,
        "closest_task_at": None,
        "is_deleted": False,
        "custom_fields_values": None,
        "score": None,
        "account_id": ACCOUNT_ID,
        "labor_cost": None,
        "is_price_modified_by_robot": False,
    },
    CONTACT: {
        "id": None,
        "name": "",
        "first_name": "",
        "last_name": "",
        "responsible_user_id": None,
        "group_id": 0,
        "created_by": None,
        "updated_by": None,
        "created_at": None,
        "updated_at": None,
        "closest_task_at": None,
        "custom_fields_values": None,
        "account_id": ACCOUNT_ID,
    },
}
#: Lead fields whose change is an event: (field, event type, the event's value for one field value).
_LEAD_EVENTS: tuple[tuple[str, str, Callable[[Mapping[str, Any]], dict[str, Any]]], ...] = (
    (
        "status_id",
        "lead_status_changed",
        lambda r: {"lead_status": {"id": r["status_id"], "pipeline_id": r["pipeline_id"]}},
    ),
    ("price", "sale_field_changed", lambda r: {"sale": {"price": r["price"]}}),
    (
        "responsible_user_id",
        "entity_responsible_changed",
        lambda r: {"responsible_user": {"id": r["responsible_user_id"]}},
    ),
)
_ADDED = {LEAD: "lead_added", CONTACT: "contact_added"}


@dataclass(frozen=True)
class Version:
    """One state of a written entity, from ``at`` until the next version.

    Attributes:
        at: When it was written.
        record: The record as the list shows it, without ``_links`` and ``_embedded``.
        tags: ``(id, name)`` of its tags.
        contacts: Linked contact ids, main first (leads).
        companies: Linked company ids.
    """

    at: int
    record: Mapping[str, Any]
    tags: tuple[tuple[int, str], ...] = ()
    contacts: tuple[int, ...] = ()
    companies: tuple[int, ...] = ()

    @classmethod
    def of_record(cls, at: int, record: Mapping[str, Any]) -> "Version":
        """The version of an API record (as a list shows it, ``_embedded`` included)."""
        embedded = record.get("_embedded") or {}
        main_first = sorted(embedded.get("contacts") or [], key=lambda c: not c.get("is_main"))
        return cls(
            at=at,
            record={k: v for k, v in record.items() if k not in ("_links", "_embedded")},
            tags=tuple((t["id"], t["name"]) for t in embedded.get("tags") or []),
            contacts=tuple(c["id"] for c in main_first),
            companies=tuple(c["id"] for c in embedded.get("companies") or []),
        )


@dataclass
class Written:
    """A written entity and its versions (the first at ``since``: creation or takeover).

    Attributes:
        kind: ``LEAD`` or ``CONTACT``.
        number: Its number (API id = kind base + number).
        taken_over: A generated entity whose script stopped at ``since``.
        versions: Its versions, oldest first.
        before: A taken-over lead's ground truth just before the takeover (its status history).
    """

    kind: int
    number: int
    taken_over: bool
    versions: list[Version] = field(default_factory=list)
    before: LeadState | None = None

    @property
    def since(self) -> int:
        return self.versions[0].at

    @property
    def api_id(self) -> int:
        return ID_BASE[self.kind] + self.number

    def at(self, t: int) -> Version | None:
        """The version in force at ``t``; None before ``since``."""
        k = bisect_right([v.at for v in self.versions], t)
        return self.versions[k - 1] if k else None


def _field_values(record: Mapping[str, Any]) -> dict[int, list[dict[str, Any]]]:
    return {f["field_id"]: f["values"] for f in record.get("custom_fields_values") or []}


def apply_change(
    kind: int,
    before: Version | None,
    change: Change,
    *,
    api_id: int,
    at: int,
    by: int,
    definitions: Mapping[int, Mapping[str, Any]],
    tag: Callable[[int | str], tuple[int, str]],
) -> Version:
    """The version a change makes of ``before`` (None: a new entity).

    Args:
        kind: ``LEAD`` or ``CONTACT``.
        before: The entity's current version, None to create it.
        change: The validated change.
        api_id: The entity's API id.
        at: The moment of the write.
        by: The writing user (``updated_by``; also ``created_by`` and the default responsible on create).
        definitions: Custom-field definitions of the entity by id.
        tag: Resolves a tag id or a new name to ``(id, name)``.

    Returns:
        The new version.
    """
    if before is None:
        created = {"id": api_id, "created_by": by, "created_at": at, "responsible_user_id": by}
        before = Version(at, {**TEMPLATES[kind], **created})
    record = {**before.record, **change.values, "updated_by": by, "updated_at": at}
    if kind == LEAD:
        record["name"] = record["name"] or f"Сделка #{api_id}"
        if change.values.get("status_id", record["status_id"]) != before.record.get("status_id"):
            record["closed_at"] = at if record["status_id"] in (WON, LOST) else None
        if record["status_id"] != LOST:
            record["loss_reason_id"] = None
    elif "name" not in change.values and ("first_name" in change.values or "last_name" in change.values):
        record["name"] = f"{record['first_name']} {record['last_name']}".strip()
    values = _field_values(before.record)
    for field_id, field_values in change.custom_fields.items():
        values.pop(field_id, None)
        if field_values:
            values[field_id] = field_values
    record["custom_fields_values"] = custom_fields_values(values, definitions)
    return Version(
        at=at,
        record=record,
        tags=before.tags if change.tags is None else tuple(dict.fromkeys(tag(t) for t in change.tags)),
        contacts=before.contacts if change.contacts is None else tuple(dict.fromkeys(change.contacts)),
        companies=before.companies if change.companies is None else tuple(dict.fromkeys(change.companies)),
    )


def write_events(written: Written, before: Version | None, after: Version, by: int) -> list[Event]:
    """The events one write makes (``*_added`` for a new entity, then one per changed lead field).

    Args:
        written: The entity, before the write is recorded.
        before: Its version before the write (None: created by it).
        after: The version the write made.
        by: The writing user.

    Returns:
        Events as the dataset keeps them.
    """
    raw: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]] = []
    if before is None:
        raw.append((_ADDED[written.kind], [], []))
    elif written.kind == LEAD:
        for name, event_type, value in _LEAD_EVENTS:
            if before.record.get(name) != after.record.get(name):
                raw.append((event_type, [value(before.record)], [value(after.record)]))
    first = _EVENT_ORDINAL_BASE + len(written.versions) * len(_LEAD_EVENTS)
    return [
        (
            after.at,
            event_id(after.at, written.kind, written.number, (first + k) % 1024),
            written.kind,
            written.number,
            event_type,
            by,
            value_before,
            value_after,
        )
        for k, (event_type, value_before, value_after) in enumerate(raw)
    ]


def _field_text(record: Mapping[str, Any], field_id: int) -> str | None:
    values = _field_values(record).get(field_id) or []
    return str(values[0]["value"]) if values else None


def written_lead_state(written: Written, t: int) -> LeadState:
    """The ground truth of a written lead at ``t`` (at or after ``since``), in :class:`LeadState` terms.

    Its status history is the taken-over lead's history before the takeover, then every written
    version that moved it.
    """
    history = list(written.before.status_history if written.before is not None else ())
    for version in written.versions:
        if version.at > t:
            break
        place = (version.record["pipeline_id"], version.record["status_id"])
        if not history or (history[-1].pipeline_id, history[-1].status_id) != place:
            history.append(StatusChange(version.at, *place))
    current = written.at(t)
    assert current is not None, f"lead {written.api_id} does not exist at {t}"
    record = current.record
    return LeadState(
        id=written.api_id,
        name=record["name"],
        pipeline_id=record["pipeline_id"],
        status_id=record["status_id"],
        price=record["price"],
        responsible_user_id=record["responsible_user_id"],
        created_by=record["created_by"],
        created_at=record["created_at"],
        updated_at=record["updated_at"],
        closed_at=record["closed_at"],
        loss_reason_id=record["loss_reason_id"],
        contact_ids=current.contacts,
        company_ids=current.companies,
        tags=tuple(name for _, name in current.tags),
        source=_field_text(record, LEAD_SOURCE_FIELD),
        bin=_field_text(record, LEAD_BIN_FIELD),
        is_deleted=False,
        deleted_at=None,
        status_history=tuple(history),
    )


class WrittenState:
    """Every write to the account: entities by kind and number, their events, tags and counters (thread-safe).

    ``version`` grows with every write; the dataset keys its cached list selections by it.
    """

    def __init__(self) -> None:
        """Create an empty state (no writes yet)."""
        self._lock = threading.RLock()
        self._entities: dict[int, dict[int, Written]] = {LEAD: {}, CONTACT: {}}
        self._events: list[Event] = []
        self._writes: Counter[str] = Counter()
        self._next = {LEAD: WRITTEN_BASE, CONTACT: WRITTEN_BASE}
        self._tags = {name: tag_id for tag_id, name in TAGS}
        self.version = 0

    def __repr__(self) -> str:
        with self._lock:
            sizes = {kind: len(entities) for kind, entities in self._entities.items()}
        return (
            f"{type(self).__name__}(leads={sizes[LEAD]}, contacts={sizes[CONTACT]}, version={self.version})"
        )

    def entity(self, kind: int, number: int) -> Written | None:
        """The written entity ``number`` of ``kind``, or None."""
        with self._lock:
            return self._entities.get(kind, {}).get(number)

    def entities(self, kind: int, t: int) -> list[Written]:
        """Written entities of ``kind`` existing at ``t`` (created or taken over by then), by number."""
        with self._lock:
            found = [w for w in self._entities.get(kind, {}).values() if w.since <= t]
        return sorted(found, key=lambda w: w.number)

    def taken(self, kind: int, t: int) -> dict[int, int]:
        """Generated numbers of ``kind`` taken over at or before ``t``, with the takeover time."""
        with self._lock:
            entities = list(self._entities.get(kind, {}).values())
        return {w.number: w.since for w in entities if w.taken_over and w.since <= t}

    def events(self) -> list[Event]:
        """Every event a write made, in write order."""
        with self._lock:
            return list(self._events)

    def allocate(self, kind: int) -> int:
        """The number of a new entity of ``kind``."""
        with self._lock:
            self._next[kind] += 1
            return self._next[kind]

    def tag(self, tag: int | str) -> tuple[int, str]:
        """``(id, name)`` of an existing tag id, or of a name (a new tag gets the next id)."""
        with self._lock:
            if isinstance(tag, int):
                name = next(n for n, i in self._tags.items() if i == tag)
                return tag, name
            if tag not in self._tags:
                self._tags[tag] = max(self._tags.values(), default=100_000) + 1
            return self._tags[tag], tag

    @property
    def tag_names(self) -> dict[int, str]:
        """Every tag the account has: id → name."""
        with self._lock:
            return {tag_id: name for name, tag_id in self._tags.items()}

    def record(self, written: Written, version: Version, events: list[Event]) -> None:
        """Store a new version of ``written`` (a new entity on its first) and the events it made."""
        with self._lock:
            written.versions.append(version)
            self._entities[written.kind][written.number] = written
            self._events.extend(events)
            self.version += 1

    def count(self, endpoint: str, entities: int) -> None:
        """Count ``entities`` written through ``endpoint``."""
        with self._lock:
            self._writes[endpoint] += entities

    def writes(self) -> dict[str, int]:
        """Entities written per endpoint (``leads_add``, ``leads_update``, ``leads_complex``,
        ``contacts_add``, ``contacts_update``, ``lead_update``, ``admin_edit``, ``create``)."""
        with self._lock:
            return dict(self._writes)


def taken_over(
    kind: int, number: int, at: int, record: Mapping[str, Any], before: LeadState | None
) -> Written:
    """A generated entity about to be written: its first version is its generated record at ``at``."""
    return Written(kind, number, True, [Version.of_record(at, record)], before)

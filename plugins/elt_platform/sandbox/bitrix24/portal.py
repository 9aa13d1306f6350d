"""The stateful CRM behind the sandbox: :class:`Portal` — contacts, leads and deals with their funnels,
statuses, user fields and communications, thread-safe.

Writes follow the old-style ``crm.<entity>.add|update`` rules: unknown keys (undeclared ``UF_CRM_*``
included) and read-only fields are ignored; ``CATEGORY_ID`` is set once, by ``add``; a deal's
``STAGE_ID`` must be a stage of its funnel (a missing one means the funnel's first stage) and a lead's
``STATUS_ID`` a lead status; a missing ``TITLE`` becomes ``"Сделка #<id>"`` / ``"Лид #<id>"``;
``DATE_MODIFY``/``MODIFY_BY_ID`` move on every update; ``STAGE_SEMANTIC_ID``, ``CLOSED``, ``IS_NEW``,
``MOVED_TIME``, ``STATUS_SEMANTIC_ID``, ``DATE_CLOSED``, ``HAS_PHONE``/``HAS_EMAIL`` follow. ``PHONE`` and
``EMAIL`` items: without ``ID`` added, with ``ID`` changed, with ``ID`` and an empty ``VALUE`` deleted —
so sending a known phone again without its ``ID`` duplicates it, as on a real portal.

Besides the API (:meth:`Portal.add`, :meth:`~Portal.update`, :meth:`~Portal.get`, :meth:`~Portal.query`,
:meth:`~Portal.find_by_comm`), tests use :meth:`~Portal.seed` (system fields allowed),
:meth:`~Portal.edit_as_person` (a manager's change, not a sync's) and :meth:`~Portal.snapshot`.
"""

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from elt_platform.sandbox.bitrix24 import errors
from elt_platform.sandbox.bitrix24.configuration import Category, PortalConfig, Status, UserField
from elt_platform.sandbox.bitrix24.phones import match_code
from elt_platform.sandbox.bitrix24.php import values_of
from elt_platform.sandbox.bitrix24.records import (
    ENTITY_TYPES,
    MONEY_FIELDS,
    Condition,
    EntityStore,
    parse_datetime,
    scalar_text,
)

#: Page size of every old-style list method (not configurable on a real portal either).
PAGE_SIZE = 50
#: ``crm.duplicate.findbycomm`` looks at most this many values, and this many matches per value.
FINDBYCOMM_LIMIT = 20
#: The webhook's user (``CREATED_BY_ID`` of what the sync writes).
WEBHOOK_USER = 1
#: The manager who edits deals by hand in tests (:meth:`Portal.edit_as_person`).
PERSON_USER = 7
_ENTITY_BY_OWNER = {"LEAD": "lead", "CONTACT": "contact", "COMPANY": None}
_DATE_ONLY = frozenset({"BIRTHDATE", "BEGINDATE", "CLOSEDATE"})
_DATETIMES = _DATE_ONLY | {"DATE_CREATE", "DATE_MODIFY", "MOVED_TIME", "DATE_CLOSED", "LAST_ACTIVITY_TIME"}


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list method.

    Attributes:
        records: The records on it, rendered.
        total: How many matched (None when the caller asked for no count, ``start=-1``).
        next: ``start`` of the next page, None on the last one.
    """

    records: list[dict[str, Any]]
    total: int | None
    next: int | None


def record_id(raw: Any) -> int:
    """An entity id parameter as ``crm.*.get|update`` accept it.

    Raises:
        BitrixError: ``ID is not defined or invalid.`` unless it is an integer above 0.
    """
    text = scalar_text(raw)
    if text is None or not text.strip().isdigit() or int(text) <= 0:
        raise errors.ID_INVALID.at()
    return int(text)


class Portal:
    """A Bitrix24 portal's CRM data (contacts, leads, deals) behind one lock."""

    def __init__(
        self,
        config: PortalConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        strict_findbycomm: bool = False,
    ) -> None:
        """Create an empty portal.

        Args:
            config: Funnels, statuses, user fields, currency, time zone; None: the default clinic portal.
            clock: Unix seconds for ``DATE_CREATE``/``DATE_MODIFY`` and the ``time`` blocks (tests pass a
                fake one for exact values).
            strict_findbycomm: Answer more than 20 ``crm.duplicate.findbycomm`` values with an error
                instead of silently searching only the first 20 (the real portal's behaviour).
        """
        self.config = config or PortalConfig()
        self.clock = clock
        self.strict_findbycomm = strict_findbycomm
        self._lock = threading.RLock()
        self._stores = {
            name: EntityStore(kind, self.config.user_fields(name), self.config.timezone)
            for name, kind in ENTITY_TYPES.items()
        }
        self._last_multi_id = 0

    def __repr__(self) -> str:
        with self._lock:
            counts = {name: len(store.records) for name, store in self._stores.items()}
        return f"{type(self).__name__}({counts})"

    # --- clock ---------------------------------------------------------------------------------------

    def iso(self, moment: float | None = None) -> str:
        """``moment`` (default: now) as the portal prints datetimes: ``2024-08-30T14:29:00+05:00``."""
        when = self.clock() if moment is None else moment
        return datetime.fromtimestamp(int(when), self.config.timezone).isoformat()

    # --- API operations (raise BitrixError) ----------------------------------------------------------

    def store(self, entity: str) -> EntityStore:
        """The store of ``contact``, ``lead`` or ``deal``."""
        return self._stores[entity]

    def add(self, entity: str, fields: Any, *, user_id: int = WEBHOOK_USER) -> int:
        """``crm.<entity>.add``: create a record from the API's ``fields``.

        Args:
            entity: ``contact``, ``lead`` or ``deal``.
            fields: The ``fields`` parameter (a PHP array).
            user_id: Who writes (``CREATED_BY_ID``, default ``ASSIGNED_BY_ID``).

        Returns:
            The new id.

        Raises:
            BitrixError: ``fields`` is not an array, or a stage/status/funnel is invalid.
        """
        return self._create(entity, _fields(fields), user_id=user_id, system=False)

    def update(self, entity: str, raw_id: Any, fields: Any, *, user_id: int = WEBHOOK_USER) -> bool:
        """``crm.<entity>.update``: change the fields sent, leave the others.

        Raises:
            BitrixError: Bad id, unknown record, ``fields`` not an array, invalid stage/status.
        """
        entity_id = record_id(raw_id)
        with self._lock:
            store = self._stores[entity]
            if entity_id not in store.records:
                raise errors.NOT_FOUND.at()
            self._change(store, entity_id, _fields(fields), user_id=user_id, system=False)
        return True

    def get(self, entity: str, raw_id: Any) -> dict[str, Any]:
        """``crm.<entity>.get``: every field, user fields included, ``PHONE``/``EMAIL`` when set.

        Raises:
            BitrixError: Bad id or unknown record.
        """
        entity_id = record_id(raw_id)
        with self._lock:
            store = self._stores[entity]
            record = store.records.get(entity_id)
            if record is None:
                raise errors.NOT_FOUND.at()
            return store.render(record, store.full_selection())

    def query(
        self,
        entity: str,
        conditions: Iterable[Condition],
        order: list[tuple[str, bool]],
        select: list[str] | None,
        start: int,
    ) -> Page:
        """``crm.<entity>.list``: one page of 50 records from ``start`` (``-1``: first page, no count).

        Args:
            entity: ``contact``, ``lead`` or ``deal``.
            conditions: Parsed filter.
            order: ``(field, descending)`` pairs; empty means ``ID`` ascending.
            select: Field names, ``*``, ``UF_*``; None or empty: the standard fields.
            start: Offset of the page.

        Returns:
            The page with ``total`` and ``next``.
        """
        with self._lock:
            store = self._stores[entity]
            ids = store.query(conditions, order or [("ID", False)])
            offset = max(start, 0)
            fields = store.selection(select)
            records = [store.render(store.records[i], fields) for i in ids[offset : offset + PAGE_SIZE]]
        if start < 0:
            return Page(records, None, None)
        more = offset + PAGE_SIZE < len(ids)
        return Page(records, len(ids), offset + PAGE_SIZE if more else None)

    def find_by_comm(self, comm_type: Any, values: Any, entity_type: Any) -> dict[str, list[int]]:
        """``crm.duplicate.findbycomm``: ids of leads/contacts holding any of these phones or e-mails.

        As the CRM module does it: ``type`` is required (``PHONE``/``EMAIL``); ``values`` must be a
        non-empty array, of which non-string and empty elements are skipped and at most 20 distinct
        match codes are searched (the rest silently ignored unless ``strict_findbycomm``); each value
        yields at most 20 matches, leads first, then contacts (companies: none on this portal); ids are
        integers. No match is an empty result (``[]`` on the wire).

        Raises:
            BitrixError: Missing or unsupported type, missing values, ``entity_type=DEAL``.
        """
        kind = (scalar_text(comm_type) or "").strip().upper()
        if not kind:
            raise errors.COMM_TYPE_MISSING.at()
        if kind not in ("PHONE", "EMAIL"):
            raise errors.COMM_TYPE_UNSUPPORTED.at(type=kind)
        elements = values_of(values)
        if not elements:
            raise errors.COMM_VALUES_MISSING.at()
        if self.strict_findbycomm and len(elements) > FINDBYCOMM_LIMIT:
            raise errors.COMM_TOO_MANY_VALUES.at(count=len(elements), limit=FINDBYCOMM_LIMIT)
        owner = (scalar_text(entity_type) or "").strip().upper()
        if owner == "DEAL":
            raise errors.COMM_DEAL_UNSUPPORTED.at()
        owners = [owner] if owner in _ENTITY_BY_OWNER else list(_ENTITY_BY_OWNER)
        found: dict[str, list[int]] = {}
        codes: list[str] = []
        with self._lock:
            for value in elements:
                if not isinstance(value, str) or value == "":
                    continue  # the CRM skips non-strings: a JSON number never matches
                code = match_code(kind, value)
                if code in codes:
                    continue
                codes.append(code)
                self._collect(found, owners, kind, code)
                if len(codes) >= FINDBYCOMM_LIMIT:
                    break
        return found

    def _collect(self, found: dict[str, list[int]], owners: list[str], kind: str, code: str) -> None:
        budget = FINDBYCOMM_LIMIT
        for owner in owners:
            entity = _ENTITY_BY_OWNER[owner]
            if entity is None or not code:
                continue
            for entity_id in self._stores[entity].matching_code(kind, code)[:budget]:
                ids = found.setdefault(owner, [])
                if entity_id not in ids:
                    ids.append(entity_id)
                budget -= 1
            if budget <= 0:
                break

    # --- test API ------------------------------------------------------------------------------------

    def seed(self, entity: str, fields: dict[str, Any], *, user_id: int = WEBHOOK_USER) -> int:
        """Create a record as existing CRM content: system fields (``DATE_CREATE``, ``DATE_MODIFY``,
        ``CREATED_BY_ID``, ``MOVED_TIME``…) may be given, not counted as API traffic.

        Raises:
            BitrixError: An invalid stage, status or funnel.
        """
        return self._create(entity, _fields(fields), user_id=user_id, system=True)

    def edit_as_person(
        self, entity: str, entity_id: int, fields: dict[str, Any], *, user_id: int = PERSON_USER
    ) -> dict[str, Any]:
        """Change a record the way a manager does in the UI (e.g. a deal moved to a manual stage).

        Returns:
            The record after the change, as ``crm.<entity>.get`` shows it.

        Raises:
            BitrixError: Unknown record or invalid stage/status.
        """
        self.update(entity, entity_id, fields, user_id=user_id)
        return self.get(entity, entity_id)

    def records(self, entity: str) -> list[dict[str, Any]]:
        """Every record of ``entity`` in id order, as ``crm.<entity>.get`` shows them."""
        with self._lock:
            store = self._stores[entity]
            return [store.render(record, store.full_selection()) for record in store.records.values()]

    def record(self, entity: str, entity_id: int) -> dict[str, Any] | None:
        """One record as ``crm.<entity>.get`` shows it, or None."""
        with self._lock:
            store = self._stores[entity]
            record = store.records.get(entity_id)
            return None if record is None else store.render(record, store.full_selection())

    def find(self, entity: str, **equal: Any) -> list[dict[str, Any]]:
        """Records whose fields equal the given values (``UF_CRM_IDENT_ID="F1_42"``), full shape."""
        conditions = [Condition.parse(name, value) for name, value in equal.items()]
        with self._lock:
            store = self._stores[entity]
            ids = store.query(conditions, [("ID", False)])
            return [store.render(store.records[i], store.full_selection()) for i in ids]

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """The whole CRM: ``{"contacts": [...], "leads": [...], "deals": [...]}`` in full shape."""
        with self._lock:
            return {f"{name}s": self.records(name) for name in self._stores}

    def counts(self) -> dict[str, int]:
        """How many records of each entity type exist."""
        with self._lock:
            return {f"{name}s": len(store.records) for name, store in self._stores.items()}

    def clear(self) -> None:
        """Delete every record (ids keep counting up)."""
        with self._lock:
            for store in self._stores.values():
                store.clear()

    # --- writing -------------------------------------------------------------------------------------

    def _create(self, entity: str, fields: dict[str, Any], *, user_id: int, system: bool) -> int:
        with self._lock:
            store = self._stores[entity]
            entity_id = store.last_id + 1
            # Seeded history: what the portal would have stamped then, not now.
            created = self._scalar("DATE_CREATE", fields.get("DATE_CREATE")) if system else None
            now = created or self.iso()
            user = str(user_id)
            record: dict[str, Any] = dict.fromkeys(store.kind.fields)
            record |= {
                "ID": str(entity_id),
                "DATE_CREATE": now,
                "DATE_MODIFY": now,
                "CREATED_BY_ID": user,
                "MODIFY_BY_ID": user,
                "ASSIGNED_BY_ID": user,
                "OPENED": "Y",
                "LAST_ACTIVITY_TIME": now,
                "LAST_ACTIVITY_BY": user,
            }
            record |= _ENTITY_DEFAULTS[entity](self, now)
            for name, user_field in store.user_fields.items():
                record[name] = [] if user_field.multiple else None
            self._apply(store, record, fields, creating=True, system=system, user_id=user_id)
            store.allocate_id()
            store.put(record)
            return entity_id

    def _change(
        self, store: EntityStore, entity_id: int, fields: dict[str, Any], *, user_id: int, system: bool
    ) -> None:
        record = dict(store.records[entity_id])
        self._apply(store, record, fields, creating=False, system=system, user_id=user_id)
        if not (system and "DATE_MODIFY" in fields):
            record["DATE_MODIFY"] = self.iso()
        if not (system and "MODIFY_BY_ID" in fields):
            record["MODIFY_BY_ID"] = str(user_id)
        store.put(record)

    def _apply(
        self,
        store: EntityStore,
        record: dict[str, Any],
        fields: dict[str, Any],
        *,
        creating: bool,
        system: bool,
        user_id: int,
    ) -> None:
        """Write ``fields`` into ``record`` (a private copy), validate, and recompute derived fields."""
        kind = store.kind
        before = dict(record)
        for name, raw in fields.items():
            if name in kind.multi_fields:
                record[name] = self._multi(record.get(name) or [], name, raw, creating=creating)
            elif name in store.user_fields:
                record[name] = self._user_value(store.user_fields[name], raw)
            elif name in kind.fields and name != "ID":
                if not system and (name in kind.read_only or (not creating and name in kind.immutable)):
                    continue
                if isinstance(raw, dict | list):
                    continue  # an array where a scalar belongs is dropped, not stringified
                record[name] = self._scalar(name, raw)
        if kind.title_prefix is not None and not record.get("TITLE"):
            record["TITLE"] = f"{kind.title_prefix}{record['ID']}"
        for multi in kind.multi_fields:
            record[f"HAS_{multi}"] = "Y" if record.get(multi) else "N"
        if kind.name == "deal":
            self._settle_deal(record, before, creating=creating, keep_moved=system, user_id=user_id)
        elif kind.name == "lead":
            self._settle_lead(record, before, creating=creating, user_id=user_id)

    def _settle_deal(
        self,
        record: dict[str, Any],
        before: dict[str, Any],
        *,
        creating: bool,
        keep_moved: bool,
        user_id: int,
    ) -> None:
        category = self._deal_category(record.get("CATEGORY_ID"))
        record["CATEGORY_ID"] = str(category.id)
        if not record.get("STAGE_ID"):
            record["STAGE_ID"] = category.stages[0].status_id
        stage = category.stage(record["STAGE_ID"])
        if stage is None:
            raise errors.STAGE_NOT_IN_CATEGORY.at(stage=record["STAGE_ID"], category=category.id)
        record["STAGE_SEMANTIC_ID"] = stage.letter
        record["CLOSED"] = "N" if stage.letter == "P" else "Y"
        record["IS_NEW"] = "Y" if stage == category.stages[0] else "N"
        moved = creating or record["STAGE_ID"] != before.get("STAGE_ID")
        if moved and not (keep_moved and record.get("MOVED_TIME")):
            record["MOVED_TIME"] = self.iso()
        if moved and not (keep_moved and record.get("MOVED_BY_ID")):
            record["MOVED_BY_ID"] = str(user_id)

    def _deal_category(self, raw: Any) -> Category:
        text = scalar_text(raw) or "0"
        category = self.config.category(int(text)) if text.strip().lstrip("-").isdigit() else None
        if category is None:
            raise errors.CATEGORY_NOT_FOUND.at(category=text)
        return category

    def _settle_lead(
        self, record: dict[str, Any], before: dict[str, Any], *, creating: bool, user_id: int
    ) -> None:
        statuses = self.config.lead_statuses
        if not record.get("STATUS_ID"):
            record["STATUS_ID"] = statuses[0].status_id
        status: Status | None = next((s for s in statuses if s.status_id == record["STATUS_ID"]), None)
        if status is None:
            raise errors.STATUS_UNKNOWN.at(status=record["STATUS_ID"])
        record["STATUS_SEMANTIC_ID"] = status.letter
        if creating or record["STATUS_ID"] != before.get("STATUS_ID"):
            record["MOVED_TIME"] = self.iso()
            record["MOVED_BY_ID"] = str(user_id)
            record["DATE_CLOSED"] = "" if status.letter == "P" else self.iso()

    def _scalar(self, name: str, raw: Any) -> str | None:
        text = scalar_text(raw)
        if text is None or name not in MONEY_FIELDS | _DATETIMES:
            return text
        if name in MONEY_FIELDS:
            try:
                return f"{float(text):.2f}"
            except ValueError:
                return "0.00"
        moment = parse_datetime(text, self.config.timezone) if text else None
        if moment is None:
            return text
        if name in _DATE_ONLY:
            moment = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return moment.astimezone(self.config.timezone).replace(microsecond=0).isoformat()

    def _user_value(self, user_field: UserField, raw: Any) -> Any:
        if user_field.multiple:
            elements = values_of(raw)
            if elements is None:
                elements = [] if raw in (None, "") else [raw]
            return [
                value for value in (self._user_scalar(user_field, e) for e in elements) if value is not None
            ]
        elements = values_of(raw)
        return self._user_scalar(user_field, elements[0] if elements else raw)

    def _user_scalar(self, user_field: UserField, raw: Any) -> str | None:
        text = scalar_text(raw)
        if text is None or text == "":
            return None
        if user_field.user_type_id in ("datetime", "date"):
            moment = parse_datetime(text, self.config.timezone)
            if moment is None:
                return None  # the CRM drops an unreadable date rather than storing text
            if user_field.user_type_id == "date":
                return moment.date().strftime("%d.%m.%Y")
            return moment.astimezone(self.config.timezone).replace(microsecond=0).isoformat()
        if user_field.user_type_id in ("integer", "double"):
            try:
                number = float(text)
            except ValueError:
                return None
            return str(int(number)) if user_field.user_type_id == "integer" else repr(number)
        return text

    def _multi(self, current: list[dict[str, Any]], type_id: str, raw: Any, *, creating: bool) -> list:
        items = values_of(raw)
        if items is None:
            return current
        kept = list(current)
        for item in items:
            if not isinstance(item, dict):
                continue
            value = (scalar_text(item.get("VALUE")) or "").strip()
            value_type = scalar_text(item.get("VALUE_TYPE")) or "WORK"
            raw_id = scalar_text(item.get("ID"))
            if raw_id and not creating:
                position = next((i for i, old in enumerate(kept) if str(old["ID"]) == raw_id.strip()), None)
                if position is None:
                    continue  # an ID that is not this record's: ignored
                if value == "":
                    del kept[position]
                else:
                    old_type = scalar_text(item.get("VALUE_TYPE")) or kept[position]["VALUE_TYPE"]
                    kept[position] = {**kept[position], "VALUE": value, "VALUE_TYPE": old_type}
            elif value:
                self._last_multi_id += 1
                kept.append(
                    {"ID": self._last_multi_id, "VALUE_TYPE": value_type, "VALUE": value, "TYPE_ID": type_id}
                )
        return kept


def _fields(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        if raw == []:
            return {}  # JSON [] is PHP's empty array
        raise errors.MUST_BE_ARRAY.at(name="fields")
    return {str(name): value for name, value in raw.items()}


def _deal_defaults(portal: Portal, now: str) -> dict[str, Any]:
    today = datetime.fromisoformat(now).replace(hour=0, minute=0, second=0)
    return {
        "TYPE_ID": "SALE",
        "CURRENCY_ID": portal.config.currency,
        "OPPORTUNITY": "0.00",
        "IS_MANUAL_OPPORTUNITY": "N",
        "TAX_VALUE": "0.00",
        "BEGINDATE": today.isoformat(),
        "CLOSEDATE": (today + timedelta(days=7)).isoformat(),
        "CATEGORY_ID": "0",
        "IS_RECURRING": "N",
        "IS_RETURN_CUSTOMER": "N",
        "IS_REPEATED_APPROACH": "N",
    }


def _lead_defaults(portal: Portal, now: str) -> dict[str, Any]:
    return {
        "CURRENCY_ID": portal.config.currency,
        "OPPORTUNITY": "0.00",
        "IS_MANUAL_OPPORTUNITY": "N",
        "IS_RETURN_CUSTOMER": "N",
        "BIRTHDATE": "",
        "DATE_CLOSED": "",
        "HAS_IMOL": "N",
    }


def _contact_defaults(portal: Portal, now: str) -> dict[str, Any]:
    return {"EXPORT": "Y", "TYPE_ID": "CLIENT", "BIRTHDATE": "", "HAS_IMOL": "N"}


_ENTITY_DEFAULTS: dict[str, Callable[[Portal, str], dict[str, Any]]] = {
    "contact": _contact_defaults,
    "lead": _lead_defaults,
    "deal": _deal_defaults,
}

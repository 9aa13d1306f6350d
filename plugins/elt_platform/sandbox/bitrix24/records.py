"""Entity storage of the portal: which fields contacts, leads and deals have (:class:`EntityType`), how
old-style list filters read (:class:`Condition`), and :class:`EntityStore` — records, their indexes and
how they are rendered.

Records are kept as the API prints them: every standard field a string or null (ids and money too —
``"OPPORTUNITY": "19999.99"``), user fields by type, ``PHONE``/``EMAIL`` as lists of
``{ID, VALUE_TYPE, VALUE, TYPE_ID}``. Filters follow ``crm.*.list``: a key may carry a prefix
(``=`` or none: equal / in a list, ``!``: not equal, ``@``/``!@``: in / not in, ``>``, ``>=``, ``<``, ``<=``,
``%``/``!%``: contains), strings compare case-insensitively (MySQL collation), numbers as numbers,
datetimes as instants; keys naming no field are ignored. Equality on a scalar field uses an index built
on first use and kept current on every write, so looking one deal up by ``UF_CRM_*`` among 10,000 does
not scan them all; ``PHONE``/``EMAIL`` match codes are indexed for ``crm.duplicate.findbycomm``.
"""

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from elt_platform.sandbox.bitrix24.configuration import UserField
from elt_platform.sandbox.bitrix24.phones import match_code

MULTI_FIELDS = ("PHONE", "EMAIL")
MONEY_FIELDS = frozenset({"OPPORTUNITY", "TAX_VALUE"})
_UTM = ("UTM_SOURCE", "UTM_MEDIUM", "UTM_CAMPAIGN", "UTM_CONTENT", "UTM_TERM")
_ADDRESS = (
    "ADDRESS",
    "ADDRESS_2",
    "ADDRESS_CITY",
    "ADDRESS_POSTAL_CODE",
    "ADDRESS_REGION",
    "ADDRESS_PROVINCE",
    "ADDRESS_COUNTRY",
)
_SYSTEM = frozenset(
    {
        "ID",
        "DATE_CREATE",
        "DATE_MODIFY",
        "CREATED_BY_ID",
        "MODIFY_BY_ID",
        "LAST_ACTIVITY_TIME",
        "LAST_ACTIVITY_BY",
    }
)
_NUMERIC = frozenset(
    {
        "ID",
        "ASSIGNED_BY_ID",
        "CREATED_BY_ID",
        "MODIFY_BY_ID",
        "MOVED_BY_ID",
        "LAST_ACTIVITY_BY",
        "CONTACT_ID",
        "COMPANY_ID",
        "LEAD_ID",
        "QUOTE_ID",
        "CATEGORY_ID",
        "PROBABILITY",
        "FACE_ID",
        "ADDRESS_LOC_ADDR_ID",
        *MONEY_FIELDS,
    }
)
_DATES = frozenset(
    {
        "DATE_CREATE",
        "DATE_MODIFY",
        "BEGINDATE",
        "CLOSEDATE",
        "MOVED_TIME",
        "DATE_CLOSED",
        "BIRTHDATE",
        "LAST_ACTIVITY_TIME",
    }
)
_DATE_FORMATS = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y")


@dataclass(frozen=True, slots=True)
class EntityType:
    """What one CRM entity type looks like through the old-style ``crm.<name>.*`` methods.

    Attributes:
        name: ``contact``, ``lead`` or ``deal``.
        owner_type: ``CONTACT``, ``LEAD``, ``DEAL`` (``crm.duplicate.findbycomm`` keys).
        fields: Standard fields in the order ``crm.<name>.get`` prints them.
        read_only: Fields a REST write ignores (the portal sets them).
        immutable: Fields only ``add`` may set (``CATEGORY_ID`` of a deal).
        multi_fields: ``PHONE``/``EMAIL`` when the entity has them.
        title_prefix: A missing ``TITLE`` becomes ``<prefix><id>`` (``"Сделка #41"``); None: no title.
    """

    name: str
    owner_type: str
    fields: tuple[str, ...]
    read_only: frozenset[str]
    immutable: frozenset[str] = frozenset()
    multi_fields: tuple[str, ...] = ()
    title_prefix: str | None = None


CONTACT = EntityType(
    "contact",
    "CONTACT",
    (
        "ID",
        "POST",
        "COMMENTS",
        "HONORIFIC",
        "NAME",
        "SECOND_NAME",
        "LAST_NAME",
        "PHOTO",
        "LEAD_ID",
        "TYPE_ID",
        "SOURCE_ID",
        "SOURCE_DESCRIPTION",
        "COMPANY_ID",
        "BIRTHDATE",
        "EXPORT",
        "HAS_PHONE",
        "HAS_EMAIL",
        "HAS_IMOL",
        "DATE_CREATE",
        "DATE_MODIFY",
        "ASSIGNED_BY_ID",
        "CREATED_BY_ID",
        "MODIFY_BY_ID",
        "OPENED",
        "ORIGINATOR_ID",
        "ORIGIN_ID",
        "ORIGIN_VERSION",
        "FACE_ID",
        *_ADDRESS,
        "ADDRESS_LOC_ADDR_ID",
        *_UTM,
        "LAST_ACTIVITY_TIME",
        "LAST_ACTIVITY_BY",
    ),
    _SYSTEM | {"HAS_PHONE", "HAS_EMAIL", "HAS_IMOL", "FACE_ID"},
    multi_fields=MULTI_FIELDS,
)
LEAD = EntityType(
    "lead",
    "LEAD",
    (
        "ID",
        "TITLE",
        "HONORIFIC",
        "NAME",
        "SECOND_NAME",
        "LAST_NAME",
        "COMPANY_TITLE",
        "COMPANY_ID",
        "CONTACT_ID",
        "IS_RETURN_CUSTOMER",
        "BIRTHDATE",
        "SOURCE_ID",
        "SOURCE_DESCRIPTION",
        "STATUS_ID",
        "STATUS_DESCRIPTION",
        "POST",
        "COMMENTS",
        "CURRENCY_ID",
        "OPPORTUNITY",
        "IS_MANUAL_OPPORTUNITY",
        "HAS_PHONE",
        "HAS_EMAIL",
        "HAS_IMOL",
        "ASSIGNED_BY_ID",
        "CREATED_BY_ID",
        "MODIFY_BY_ID",
        "DATE_CREATE",
        "DATE_MODIFY",
        "DATE_CLOSED",
        "STATUS_SEMANTIC_ID",
        "OPENED",
        "ORIGINATOR_ID",
        "ORIGIN_ID",
        "MOVED_BY_ID",
        "MOVED_TIME",
        *_ADDRESS,
        "ADDRESS_COUNTRY_CODE",
        "ADDRESS_LOC_ADDR_ID",
        *_UTM,
        "LAST_ACTIVITY_TIME",
        "LAST_ACTIVITY_BY",
    ),
    _SYSTEM
    | {
        "HAS_PHONE",
        "HAS_EMAIL",
        "HAS_IMOL",
        "IS_RETURN_CUSTOMER",
        "DATE_CLOSED",
        "STATUS_SEMANTIC_ID",
        "MOVED_BY_ID",
        "MOVED_TIME",
    },
    multi_fields=MULTI_FIELDS,
    title_prefix="Лид #",
)
DEAL = EntityType(
    "deal",
    "DEAL",
    (
        "ID",
        "TITLE",
        "TYPE_ID",
        "STAGE_ID",
        "PROBABILITY",
        "CURRENCY_ID",
        "OPPORTUNITY",
        "IS_MANUAL_OPPORTUNITY",
        "TAX_VALUE",
        "LEAD_ID",
        "COMPANY_ID",
        "CONTACT_ID",
        "QUOTE_ID",
        "BEGINDATE",
        "CLOSEDATE",
        "ASSIGNED_BY_ID",
        "CREATED_BY_ID",
        "MODIFY_BY_ID",
        "DATE_CREATE",
        "DATE_MODIFY",
        "OPENED",
        "CLOSED",
        "COMMENTS",
        "ADDITIONAL_INFO",
        "LOCATION_ID",
        "CATEGORY_ID",
        "STAGE_SEMANTIC_ID",
        "IS_NEW",
        "IS_RECURRING",
        "IS_RETURN_CUSTOMER",
        "IS_REPEATED_APPROACH",
        "SOURCE_ID",
        "SOURCE_DESCRIPTION",
        "ORIGINATOR_ID",
        "ORIGIN_ID",
        "MOVED_BY_ID",
        "MOVED_TIME",
        "LAST_ACTIVITY_TIME",
        *_UTM,
        "LAST_ACTIVITY_BY",
    ),
    _SYSTEM | {"CLOSED", "STAGE_SEMANTIC_ID", "IS_NEW", "MOVED_BY_ID", "MOVED_TIME"},
    immutable=frozenset({"CATEGORY_ID"}),
    title_prefix="Сделка #",
)
ENTITY_TYPES = {kind.name: kind for kind in (CONTACT, LEAD, DEAL)}


def parse_datetime(value: str, zone: tzinfo) -> datetime | None:
    """Read an ISO-8601 or Bitrix24 site-format (``dd.mm.yyyy[ hh:mm:ss]``) datetime; naive means ``zone``."""
    text = value.strip()
    moment: datetime | None = None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        for pattern in _DATE_FORMATS:
            try:
                moment = datetime.strptime(text, pattern)
                break
            except ValueError:
                continue
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


#: Filter key prefixes, longest first, and the operation each means.
_PREFIXES = (
    ("!@", "not_in"),
    (">=", ">="),
    ("<=", "<="),
    ("!%", "not_like"),
    ("!=", "not_in"),
    ("@", "in"),
    ("=", "in"),
    ("!", "not_in"),
    (">", ">"),
    ("<", "<"),
    ("%", "like"),
)


@dataclass(frozen=True, slots=True)
class Condition:
    """One filter condition of a list method.

    Attributes:
        field: The field it tests (upper case).
        op: ``in`` (equal to one of ``values``), ``not_in``, ``>``, ``>=``, ``<``, ``<=``, ``like``,
            ``not_like``.
        values: The filter's value(s), as strings (null stays None).
    """

    field: str
    op: str
    values: tuple[str | None, ...]

    @classmethod
    def parse(cls, key: str, value: Any) -> "Condition":
        """Read one ``filter[<prefix><FIELD>]=<value>`` entry (a list value means "one of")."""
        op = "in"
        for prefix, meaning in _PREFIXES:
            if key.startswith(prefix):
                key, op = key[len(prefix) :], meaning
                break
        raw = list(value.values()) if isinstance(value, dict) else value
        values = raw if isinstance(raw, list) else [raw]
        return cls(key.strip().upper(), op, tuple(scalar_text(element) for element in values))


def scalar_text(value: Any) -> str | None:
    """A parameter value as PHP would hand it to the CRM: bools as ``Y``/``N``, numbers as text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, int | float):
        return str(value)
    return None


class FieldComparer:
    """How values of one field compare: as numbers, instants or case-insensitive text."""

    def __init__(self, kind: str, zone: tzinfo) -> None:
        """Create the comparer.

        Args:
            kind: ``number``, ``date`` or ``text``.
            zone: Time zone of naive datetimes.
        """
        self.kind = kind
        self.zone = zone

    def key(self, value: Any) -> Any:
        """A comparable form of ``value`` (None for null or unreadable)."""
        if value is None or value == "":
            return None
        if self.kind == "number":
            return _number(value)
        if self.kind == "date":
            moment = parse_datetime(str(value), self.zone)
            return moment.timestamp() if moment else None
        return str(value).casefold()

    def sort_key(self, value: Any) -> tuple[int, Any]:
        """A key that orders nulls first and never compares a number with text."""
        key = self.key(value)
        return (0, 0) if key is None else (1, key)

    def test(self, condition: Condition, stored: Any) -> bool:
        """Whether a stored value (a list for multiple values) satisfies ``condition``."""
        elements = stored if isinstance(stored, list) else [stored]
        keys = [self.key(element) for element in elements] or [None]
        wanted = [self.key(value) for value in condition.values]
        if condition.op in ("in", "not_in"):
            hit = any(key in wanted for key in keys)
            return hit if condition.op == "in" else not hit
        if condition.op in ("like", "not_like"):
            needles = [str(value).casefold() for value in condition.values if value is not None]
            hit = any(key is not None and needle in str(key) for key in keys for needle in needles)
            return hit if condition.op == "like" else not hit
        bound = wanted[0] if wanted else None
        if bound is None:
            return False
        compare: Callable[[Any], bool] = {
            ">": lambda key: key > bound,
            ">=": lambda key: key >= bound,
            "<": lambda key: key < bound,
            "<=": lambda key: key <= bound,
        }[condition.op]
        return any(key is not None and type(key) is type(bound) and compare(key) for key in keys)


def multi_values(record: dict[str, Any], field: str) -> list[str]:
    """The ``VALUE``s of a record's ``PHONE`` or ``EMAIL`` items."""
    return [item["VALUE"] for item in record.get(field) or []]


class EntityStore:
    """Records of one entity type, with lazily built equality indexes and communication match codes.

    Not thread-safe on its own: :class:`~elt_platform.sandbox.bitrix24.portal.Portal` serialises access.
    """

    def __init__(self, kind: EntityType, user_fields: tuple[UserField, ...], zone: tzinfo) -> None:
        """Create an empty store.

        Args:
            kind: The entity type.
            user_fields: Its declared ``UF_CRM_*`` fields.
            zone: The portal's time zone (naive datetimes in filters).
        """
        self.kind = kind
        self.user_fields = {user_field.field_name: user_field for user_field in user_fields}
        self.records: dict[int, dict[str, Any]] = {}
        self.last_id = 0
        self._comparers = {
            name: FieldComparer(self._field_kind(name), zone)
            for name in (*kind.fields, *self.user_fields, *kind.multi_fields)
        }
        self._indexes: dict[str, dict[Any, set[int]]] = {}
        self._codes: dict[tuple[str, str], set[int]] = {}

    def _field_kind(self, name: str) -> str:
        user_field = self.user_fields.get(name)
        if user_field is not None:
            return {"integer": "number", "double": "number", "datetime": "date", "date": "date"}.get(
                user_field.user_type_id, "text"
            )
        return "number" if name in _NUMERIC else "date" if name in _DATES else "text"

    def knows(self, name: str) -> bool:
        """Whether ``name`` is a field of this entity (standard, declared user field or multi-field)."""
        return name in self._comparers

    # --- writes --------------------------------------------------------------------------------------

    def allocate_id(self) -> int:
        """The id the next new record gets."""
        self.last_id += 1
        return self.last_id

    def put(self, record: dict[str, Any]) -> None:
        """Store a new or replaced record (a fresh dict, never one the store already holds)."""
        record_id = int(record["ID"])
        old = self.records.get(record_id)
        for name, index in self._indexes.items():
            if old is not None:
                index.get(self._comparers[name].key(old.get(name)), set()).discard(record_id)
            index.setdefault(self._comparers[name].key(record.get(name)), set()).add(record_id)
        for code in self._match_codes(old):
            self._codes[code].discard(record_id)
        for code in self._match_codes(record):
            self._codes.setdefault(code, set()).add(record_id)
        self.records[record_id] = record

    def clear(self) -> None:
        """Drop every record and index (ids keep counting up, as on a real portal)."""
        self.records.clear()
        self._indexes.clear()
        self._codes.clear()

    def _match_codes(self, record: dict[str, Any] | None) -> set[tuple[str, str]]:
        if record is None:
            return set()
        codes = {
            (field, match_code(field, value))
            for field in self.kind.multi_fields
            for value in multi_values(record, field)
        }
        return {code for code in codes if code[1]}

    def matching_code(self, comm_type: str, code: str) -> list[int]:
        """Ids of records holding a ``PHONE``/``EMAIL`` with this match code, ascending."""
        return sorted(self._codes.get((comm_type, code), ()))

    # --- queries -------------------------------------------------------------------------------------

    def _indexable(self, name: str) -> bool:
        user_field = self.user_fields.get(name)
        multiple = user_field is not None and user_field.multiple
        return name in self._comparers and name not in MULTI_FIELDS and not multiple

    def _index(self, name: str) -> dict[Any, set[int]]:
        index = self._indexes.get(name)
        if index is None:
            comparer = self._comparers[name]
            index = {}
            for record_id, record in self.records.items():
                index.setdefault(comparer.key(record.get(name)), set()).add(record_id)
            self._indexes[name] = index
        return index

    def query(self, conditions: Iterable[Condition], order: list[tuple[str, bool]]) -> list[int]:
        """Ids of the records matching every condition, ordered.

        Args:
            conditions: Filter conditions; those naming unknown fields are ignored.
            order: ``(field, descending)`` pairs, most significant first; unknown fields are ignored.

        Returns:
            The matching ids in order (ties by id ascending).
        """
        known = [condition for condition in conditions if condition.field in self._comparers]
        indexed = next(
            (c for c in known if c.op == "in" and self._indexable(c.field) and None not in c.values),
            None,
        )
        if indexed is not None:
            index, comparer = self._index(indexed.field), self._comparers[indexed.field]
            ids: Iterable[int] = sorted(
                set().union(*(index.get(comparer.key(value), set()) for value in indexed.values))
            )
            known.remove(indexed)
        else:
            ids = self.records
        matched = [
            record_id
            for record_id in ids
            if all(
                self._comparers[c.field].test(c, self._value(self.records[record_id], c.field)) for c in known
            )
        ]
        for name, descending in reversed([(n, d) for n, d in order if n in self._comparers]):
            comparer = self._comparers[name]
            matched.sort(
                key=lambda i: comparer.sort_key(self._value(self.records[i], name)), reverse=descending
            )
        return matched

    @staticmethod
    def _value(record: dict[str, Any], name: str) -> Any:
        return multi_values(record, name) if name in MULTI_FIELDS else record.get(name)

    # --- rendering -----------------------------------------------------------------------------------

    def selection(self, select: list[str] | None) -> tuple[str, ...]:
        """Fields a list answer shows for ``select`` (default: the standard fields, as Bitrix24 does).

        ``*`` means every standard field, ``UF_*`` every user field; ``PHONE``/``EMAIL`` must be named;
        unknown names are ignored; ``ID`` is always shown.
        """
        wanted = {name.strip().upper() for name in select or [] if isinstance(name, str)} or {"*"}
        standard = [name for name in self.kind.fields if "*" in wanted or name in wanted or name == "ID"]
        users = [name for name in self.user_fields if "UF_*" in wanted or name in wanted]
        multi = [name for name in self.kind.multi_fields if name in wanted]
        return (*standard, *users, *multi)

    def full_selection(self) -> tuple[str, ...]:
        """Everything ``crm.<entity>.get`` shows."""
        return (*self.kind.fields, *self.user_fields, *self.kind.multi_fields)

    def render(self, record: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
        """The record as the API prints it, limited to ``fields`` (multi-fields only when non-empty)."""
        shown: dict[str, Any] = {}
        for name in fields:
            if name in MULTI_FIELDS:
                items = record.get(name) or []
                if items:
                    shown[name] = [{**item, "ID": str(item["ID"])} for item in items]
            elif name in self.user_fields:
                default: Any = [] if self.user_fields[name].multiple else None
                value = record.get(name, default)
                shown[name] = list(value) if isinstance(value, list) else value
            else:
                shown[name] = record.get(name)
        return shown

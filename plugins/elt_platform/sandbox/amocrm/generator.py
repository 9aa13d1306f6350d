"""A deterministic amoCRM account whose data changes over time: :class:`AmoCrmDataset`.

The data set is the account's whole (endless) history, fixed by the seed (see
:mod:`elt_platform.sandbox.amocrm.scripts`); a simulated clock says how much of it has happened.
``advance(to)`` moves the clock forward: leads created meanwhile appear, stage moves, price edits,
reassignments, deletions and restores up to ``to`` take effect, with their events — nothing is drawn at
that moment, so a test knows exactly what changed between two clock readings.

Memory: per entity only the compact index is kept (its change times, deletion and restore times, the
ids it links, as ``array('q')``); records are re-derived from the cached scripts page by page. A view
per clock reading (visible entities sorted by ``updated_at``) answers filters and ordering with bisects.
Building is linear, about 0.3 ms of CPU per lead with its share of contacts, companies and tasks
(100,000 leads: ~30 s and ~150 MB RSS on a busy 2-core box; 2,000 leads: ~0.3 s); a million leads take
minutes, so build such a data set once per benchmark session.

Writes (:meth:`~AmoCrmDataset.write`, behind the API's POST/PATCH routes, and the admin API's
:meth:`~AmoCrmDataset.create` and :meth:`~AmoCrmDataset.edit_lead`) are kept beside the generated history
in :class:`~elt_platform.sandbox.amocrm.writes.WrittenState` and merged into every read: lists, search,
embeds, events and ground truth. Each write first moves the clock one second on, so what it writes is
later than anything read before it, as on a real account where time passes between two requests.

Ground truth for tests: :meth:`~AmoCrmDataset.lead`, :meth:`~AmoCrmDataset.leads_as_of`,
:meth:`~AmoCrmDataset.records`, :meth:`~AmoCrmDataset.record`, :meth:`~AmoCrmDataset.events`,
:meth:`~AmoCrmDataset.deleted`, :meth:`~AmoCrmDataset.changed`.
"""

import threading
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from elt_platform.sandbox.amocrm.account import (
    CUSTOM_FIELDS,
    PIPELINES,
    ClinicSetup,
    Pipeline,
    User,
    make_users,
)
from elt_platform.sandbox.amocrm.payloads import (
    MAX_BATCH,
    MAX_COMPLEX_BATCH,
    AccountRules,
    Change,
    batch,
    complex_change,
    contact_change,
    lead_change,
)
from elt_platform.sandbox.amocrm.records import (
    Event,
    LeadState,
    company_record,
    contact_record,
    entity_events,
    event_record,
    is_deleted_at,
    lead_events,
    lead_record,
    lead_state,
    task_is_completed,
    task_record,
    written_record,
)
from elt_platform.sandbox.amocrm.scripts import (
    COMPANY,
    CONTACT,
    DAY,
    ID_BASE,
    KINDS,
    LEAD,
    TASK,
    ContactScript,
    LeadScript,
    Schedule,
    ScriptBook,
)
from elt_platform.sandbox.amocrm.search import Search, in_pipelines, matches
from elt_platform.sandbox.amocrm.writes import (
    Version,
    Written,
    WrittenState,
    apply_change,
    taken_over,
    write_events,
    written_lead_state,
)

#: Sort keys pack ``updated_at << _SHIFT | number`` into one int: up to 16.7M entities per kind.
_SHIFT = 24
_LOW = (1 << _SHIFT) - 1
#: No change of an entity happens later than this after its creation (events look back this far).
_LIFE_SPAN = 200 * DAY
#: Event types, by the kind of entity they are about.
EVENT_TYPES = {
    "lead": (
        "lead_added",
        "lead_status_changed",
        "sale_field_changed",
        "entity_responsible_changed",
        "lead_deleted",
        "lead_restored",
    ),
    "contact": ("contact_added", "contact_deleted", "contact_restored"),
    "company": ("company_added", "company_deleted", "company_restored"),
}
_EVENT_KIND = {"lead": LEAD, "contact": CONTACT, "company": COMPANY}
_ORDER_FIELDS = ("id", "created_at", "updated_at")
_ENTITY_NAME = {kind: name for name, kind in KINDS.items()}


@dataclass(frozen=True)
class WriteOperation:
    """One kind of write: the entity it writes, its batch limit, and how one entity is validated."""

    entity: str
    limit: int
    read: Callable[[Any, int, AccountRules], tuple[Change, list[dict[str, str]]]]


#: (entity, operation) → what :meth:`AmoCrmDataset.write` does.
WRITE_OPERATIONS = {
    ("leads", "add"): WriteOperation("leads", MAX_BATCH, lead_change),
    ("leads", "update"): WriteOperation("leads", MAX_BATCH, partial(lead_change, update=True)),
    ("leads", "complex"): WriteOperation("leads", MAX_COMPLEX_BATCH, complex_change),
    ("contacts", "add"): WriteOperation("contacts", MAX_BATCH, contact_change),
    ("contacts", "update"): WriteOperation("contacts", MAX_BATCH, partial(contact_change, update=True)),
}


@dataclass(frozen=True)
class WriteResult:
    """What one written entity's answer names.

    Attributes:
        id: Its API id.
        request_id: The ``request_id`` it was sent with (its index when it had none).
        updated_at: The moment of the write.
        contact_id: ``leads/complex``: the linked (or created) contact, else None.
        company_id: ``leads/complex``: the linked company, else None.
    """

    id: int
    request_id: str
    updated_at: int
    contact_id: int | None = None
    company_id: int | None = None


def _unix(value: datetime | int) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{value!r} is naive: give the time zone (UTC) explicitly")
        return int(value.timestamp())
    return int(value)


@dataclass(frozen=True)
class ListQuery:
    """What a list request asks for (already validated); hashable, so results are cached by it.

    Attributes:
        updated_from: ``filter[updated_at][from]``, inclusive.
        updated_to: ``filter[updated_at][to]``, inclusive.
        created_from: ``filter[created_at][from]``, inclusive.
        created_to: ``filter[created_at][to]``, inclusive.
        ids: ``filter[id]`` values (API ids), or None.
        order: (field, direction): field ``id``/``created_at``/``updated_at``, direction ``asc``/``desc``.
        is_completed: Tasks only: ``filter[is_completed]``.
        entity_types: Tasks: ``filter[entity_type]``; events: ``filter[entity]`` (lead/contact/company).
        entity_ids: Events only: ``filter[entity_id]``.
        types: Events only: ``filter[type]``.
        search: ``query`` (see :mod:`~elt_platform.sandbox.amocrm.search`), or None.
        pipeline_ids: Leads only: ``filter[pipeline_id]``.
        statuses: Leads only: ``filter[statuses]`` as ``(pipeline_id, status_id)`` pairs.
    """

    updated_from: int | None = None
    updated_to: int | None = None
    created_from: int | None = None
    created_to: int | None = None
    ids: frozenset[int] | None = None
    order: tuple[str, str] = ("id", "asc")
    is_completed: bool | None = None
    entity_types: frozenset[str] | None = None
    entity_ids: frozenset[int] | None = None
    types: frozenset[str] | None = None
    search: str | None = None
    pipeline_ids: frozenset[int] | None = None
    statuses: frozenset[tuple[int, int]] | None = None

    @property
    def reads_records(self) -> bool:
        """Whether the selection needs the records themselves (search and lead filters)."""
        return self.search is not None or self.pipeline_ids is not None or self.statuses is not None


@dataclass
class _Index:
    """Compact per-kind index: entity n (1-based) has change times ``times[offsets[n-1]:offsets[n]]``."""

    times: array = field(default_factory=lambda: array("q"))
    offsets: array = field(default_factory=lambda: array("q", [0]))
    deleted: array = field(default_factory=lambda: array("q"))
    restored: array = field(default_factory=lambda: array("q"))
    #: Related numbers, by name (``contact_a``, ``contact_b``, ``company``), 0 for none.
    links: dict[str, array] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.deleted)

    def updated_at(self, number: int, t: int) -> int:
        lo, hi = self.offsets[number - 1], self.offsets[number]
        if self.times[hi - 1] <= t:
            return self.times[hi - 1]
        return self.times[bisect_right(self.times, t, lo, hi) - 1]

    def visible(self, number: int, t: int) -> bool:
        return not is_deleted_at(self.deleted[number - 1], self.restored[number - 1], t)


@dataclass(frozen=True)
class _View:
    """Entities visible at one moment: numbers ascending, and sort keys by ``(updated_at, number)``."""

    numbers: array
    by_updated: array


class AmoCrmDataset:
    """A deterministic amoCRM account with a simulated clock.

    Knobs (keyword arguments, defaults in brackets): ``seed`` [42]; ``leads`` [2000], ``contacts``
    [0.8 × leads], ``companies`` [0.3 × leads], ``tasks`` [1.5 × leads]: how many exist at ``now`` (all
    created evenly between ``start`` [2024-01-01 UTC] and ``now`` [2024-07-01 UTC], and at the same
    rate after it); ``users`` [8]: an administrator and managers.

    About 30% of leads come in "unsorted" (``created_by`` 0); leads walk the funnel (forward, sometimes
    skipping or stepping back, a few stuck), about a third end won, a third lost; 12% have price 0, a
    quarter get a price edit, 8% a new responsible, 15% ``custom_fields_values: null``; 3% of leads, 4%
    of contacts and 3% of companies are deleted (a quarter of them restored later). Contacts carry
    messy phones and e-mails, companies a БИН (valid check digit, a few typed badly, some missing).
    """

    def __init__(
        self,
        seed: int = 42,
        leads: int = 2000,
        *,
        contacts: int | None = None,
        companies: int | None = None,
        tasks: int | None = None,
        users: int = 8,
        start: datetime = datetime(2024, 1, 1, tzinfo=UTC),
        now: datetime = datetime(2024, 7, 1, tzinfo=UTC),
        cache_size: int = 20_000,
        clinic: ClinicSetup | None = None,
    ) -> None:
        """Build the account and index everything that exists at ``now``.

        Args:
            seed: Seed of every draw.
            leads: Leads created by ``now``.
            contacts: Contacts created by ``now`` (default 0.8 × leads).
            companies: Companies created by ``now`` (default 0.3 × leads).
            tasks: Tasks created by ``now`` (default 1.5 × leads).
            users: Users (one administrator, the rest managers who own leads).
            start: Beginning of the history (aware datetime).
            now: Initial clock (aware datetime).
            cache_size: Scripts cached per kind.
            clinic: The clinic's pipelines and lead fields (:class:`~.account.ClinicSetup`), added to the
                account for the reception sync; None: the account without them.

        Raises:
            ValueError: ``now`` not after ``start``, a count below 1, fewer than 2 users, or a clinic
                whose responsible user is not one of them.
        """
        self.seed = seed
        self.start = _unix(start)
        self._clock = _unix(now)
        if self._clock <= self.start:
            raise ValueError(f"now ({now}) must be after start ({start})")
        counts = {
            LEAD: leads,
            CONTACT: contacts if contacts is not None else max(1, int(leads * 0.8)),
            COMPANY: companies if companies is not None else max(1, int(leads * 0.3)),
            TASK: tasks if tasks is not None else max(1, int(leads * 1.5)),
        }
        if min(counts.values()) < 1:
            raise ValueError(f"every entity count must be at least 1, got {counts}")
        span = self._clock - self.start
        schedules = {kind: Schedule(seed, kind, self.start, span / count) for kind, count in counts.items()}
        # Tasks start once the first lead exists: a task always has something to be about.
        first_lead = schedules[LEAD].created_at(1)
        schedules[TASK] = Schedule(seed, TASK, first_lead, (self._clock - first_lead) / counts[TASK])
        self.users: tuple[User, ...] = make_users(users)
        self.clinic = clinic
        self.pipelines: tuple[Pipeline, ...] = PIPELINES + (clinic.pipelines if clinic else ())
        #: Custom-field definitions by entity, as ``GET /api/v4/<entity>/custom_fields`` lists them.
        self.custom_fields: dict[str, list[dict[str, Any]]] = {
            entity: [*fields, *(clinic.lead_fields if clinic and entity == "leads" else ())]
            for entity, fields in CUSTOM_FIELDS.items()
        }
        if clinic is not None and clinic.responsible_user_id not in {u.id for u in self.users}:
            raise ValueError(
                f"the clinic's responsible user {clinic.responsible_user_id} is not an account user"
            )
        self.written = WrittenState()
        self.book = ScriptBook(seed, schedules, self.users, cache_size=cache_size)
        self.schedules = schedules
        self._lock = threading.RLock()
        self._indexes = {kind: _Index() for kind in (LEAD, CONTACT, COMPANY, TASK)}
        self._views: OrderedDict[Hashable, Any] = OrderedDict()
        self._ensure_indexed(self._clock)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed}, now={self.now.isoformat()}, {self.counts()})"

    # --- clock ---------------------------------------------------------------------------------------

    @property
    def clock(self) -> int:
        """The simulated now, Unix seconds."""
        return self._clock

    @property
    def now(self) -> datetime:
        """The simulated now, aware UTC datetime."""
        return datetime.fromtimestamp(self._clock, UTC)

    def advance(self, to: datetime | int) -> datetime:
        """Move the clock forward to ``to``; everything scheduled up to then has happened.

        Args:
            to: Aware datetime or Unix seconds, not before the current clock.

        Returns:
            The new clock.

        Raises:
            ValueError: ``to`` is before the clock (time only moves forward) or a naive datetime.
        """
        target = _unix(to)
        with self._lock:
            if target < self._clock:
                raise ValueError(f"the clock only moves forward: {to} is before {self.now.isoformat()}")
            self._ensure_indexed(target)
            self._clock = target
        return self.now

    def counts(self, t: int | None = None) -> dict[str, int]:
        """Entities visible (created and not deleted) at ``t`` (default: now), by API entity name."""
        at = self._clock if t is None else t
        return {name: len(self.select(name, ListQuery(), at)) for name in KINDS}

    # --- index and views -----------------------------------------------------------------------------

    def _ensure_indexed(self, t: int) -> None:
        with self._lock:
            for kind in (COMPANY, CONTACT, LEAD, TASK):
                self._extend(kind, self.schedules[kind].count_at(t))

    def _extend(self, kind: int, count: int) -> None:
        index = self._indexes[kind]
        for number in range(index.count + 1, count + 1):
            script = self.book.script(kind, number)
            index.times.extend(script.changes)
            index.offsets.append(len(index.times))
            index.deleted.append(getattr(script, "deleted_at", 0))
            index.restored.append(getattr(script, "restored_at", 0))
            if isinstance(script, LeadScript):
                contacts = (*script.contacts, 0, 0)
                self._link_array(index, "contact_a").append(contacts[0])
                self._link_array(index, "contact_b").append(contacts[1])
                self._link_array(index, "company").append(script.company)
            elif isinstance(script, ContactScript):
                self._link_array(index, "company").append(script.company)

    @staticmethod
    def _link_array(index: _Index, name: str) -> array:
        return index.links.setdefault(name, array("q"))

    def _cached(self, key: Hashable, build: Callable[[], Any], size: int = 16) -> Any:
        with self._lock:
            if key in self._views:
                self._views.move_to_end(key)
                return self._views[key]
            value = build()
            self._views[key] = value
            while len(self._views) > size:
                self._views.popitem(last=False)
            return value

    def _view(self, kind: int, t: int) -> _View:
        def build() -> _View:
            self._ensure_indexed(t)
            index = self._indexes[kind]
            visible, deleted, restored = array("q"), index.deleted, index.restored
            keys = []
            for number in range(1, self.schedules[kind].count_at(t) + 1):
                gone = deleted[number - 1]
                if gone and gone <= t:
                    back = restored[number - 1]
                    if not back or back > t:
                        continue
                visible.append(number)
                keys.append(index.updated_at(number, t) << _SHIFT | number)
            keys.sort()
            return _View(visible, array("q", keys))

        return self._cached(("view", kind, t), build)

    def _linked(self, source: int, link: str, t: int) -> Callable[[int], list[int]]:
        """``target number → visible source numbers`` linking it (e.g. contact → its leads) at ``t``."""

        def build() -> Callable[[int], list[int]]:
            index = self._indexes[source]
            count = self.schedules[source].count_at(t)
            names = ("contact_a", "contact_b") if link == "contact" else (link,)
            taken = self.written.taken(source, t)
            keys = [
                target << _SHIFT | number
                for name in names
                for number, target in enumerate(index.links[name][:count], start=1)
                if target and index.visible(number, t) and number not in taken
            ]
            # Written sources link by their current version (a taken-over lead's links are its written ones).
            target_kind = CONTACT if link == "contact" else COMPANY
            for written in self.written.entities(source, t):
                version = written.at(t)
                assert version is not None
                targets = version.contacts if link == "contact" else version.companies
                keys += [(target - ID_BASE[target_kind]) << _SHIFT | written.number for target in targets]
            keys.sort()

            def lookup(target: int) -> list[int]:
                lo = bisect_left(keys, target << _SHIFT)
                hi = bisect_left(keys, (target + 1) << _SHIFT)
                return [key & _LOW for key in keys[lo:hi]]

            return lookup

        return self._cached(("links", source, link, t, self.written.version), build)

    # --- list queries --------------------------------------------------------------------------------

    def select(self, entity: str, query: ListQuery, t: int | None = None) -> Sequence[int]:
        """Numbers of the entities a list request returns, in order (all pages).

        Args:
            entity: ``leads``, ``contacts``, ``companies`` or ``tasks``.
            query: Filters and order.
            t: The moment (default: now).

        Returns:
            Entity numbers (API id minus the kind's base), in the requested order.
        """
        at = self._clock if t is None else t
        kind = KINDS[entity]
        key = ("select", kind, query, at, self.written.version)
        return self._cached(key, lambda: self._select(kind, query, at), size=32)

    def _select(self, kind: int, query: ListQuery, t: int) -> Sequence[int]:
        numbers = self._select_generated(kind, query, t)
        taken = self.written.taken(kind, t)
        written = [w for w in self._written_candidates(kind, query, t) if _in_window(w, query, t)]
        if taken or written:
            numbers = self._merge_written(kind, query.order[0], t, numbers, taken, written)
        if query.reads_records:
            numbers = self._filter_records(kind, query, t, numbers)
        if query.order[1] == "desc":
            numbers = numbers[::-1]
        return numbers

    def _written_candidates(self, kind: int, query: ListQuery, t: int) -> list[Written]:
        """Written entities of ``kind`` existing at ``t`` that ``query``'s id filter may keep, by number.

        A read by id (``filter[id]``, 250 a page) looks its ids up instead of listing every written entity.
        """
        if query.ids is None:
            return self.written.entities(kind, t)
        found = (self.written.entity(kind, api_id - ID_BASE[kind]) for api_id in query.ids)
        return sorted((w for w in found if w is not None and w.since <= t), key=lambda w: w.number)

    def _merge_written(
        self,
        kind: int,
        field_: str,
        t: int,
        numbers: Sequence[int],
        taken: Mapping[int, int],
        written: list[Written],
    ) -> list[int]:
        """Generated numbers without the taken-over ones, plus the written entities, in ``field_`` order."""
        merged = [n for n in numbers if n not in taken] + [w.number for w in written]
        if field_ == "id":
            return sorted(merged)
        versions = {w.number: w.at(t) for w in written}
        index, schedule = self._indexes[kind], self.schedules[kind]

        def key(number: int) -> tuple[int, int]:
            version = versions.get(number)
            if version is not None:
                return version.record[field_], number
            stamp = schedule.created_at(number) if field_ == "created_at" else index.updated_at(number, t)
            return stamp, number

        return sorted(merged, key=key)

    def _filter_records(self, kind: int, query: ListQuery, t: int, numbers: Sequence[int]) -> list[int]:
        """Keep what ``query``'s search and lead filters find, judged on the records themselves."""
        search = Search.parse(query.search) if query.search is not None else None
        kept = []
        for number, record in zip(
            numbers, self.render(_ENTITY_NAME[kind], numbers, "", set(), t), strict=True
        ):
            if search is not None and not matches(record, search):
                continue
            if kind == LEAD and not in_pipelines(record, query.pipeline_ids, query.statuses):
                continue
            kept.append(number)
        return kept

    def _select_generated(self, kind: int, query: ListQuery, t: int) -> Sequence[int]:
        """Generated numbers a list returns, ascending by the order field (the caller reverses for desc)."""
        view = self._view(kind, t)
        field_ = query.order[0]
        if query.updated_from is not None or query.updated_to is not None:
            lo = (query.updated_from or 0) << _SHIFT
            hi = ((query.updated_to if query.updated_to is not None else t) << _SHIFT) | _LOW
            keys = view.by_updated[bisect_left(view.by_updated, lo) : bisect_right(view.by_updated, hi)]
            numbers: Sequence[int] = [key & _LOW for key in keys]
            if field_ != "updated_at":
                numbers = sorted(numbers)
        elif field_ == "updated_at":
            numbers = [key & _LOW for key in view.by_updated]
        else:
            numbers = view.numbers
        if query.created_from is not None or query.created_to is not None:
            schedule = self.schedules[kind]
            first = schedule.count_at(query.created_from - 1) + 1 if query.created_from is not None else 1
            last = schedule.count_at(query.created_to) if query.created_to is not None else 1 << _SHIFT
            numbers = [n for n in numbers if first <= n <= last]
        if query.ids is not None:
            wanted = {i - ID_BASE[kind] for i in query.ids}
            numbers = [n for n in numbers if n in wanted]
        if kind == TASK and query.is_completed is not None:
            numbers = [n for n in numbers if task_is_completed(self.book.task(n), t) == query.is_completed]
        if kind == TASK and query.entity_types is not None:
            numbers = [n for n in numbers if self.book.task(n).entity_type in query.entity_types]
        return numbers

    def render(
        self, entity: str, numbers: Iterable[int], root: str, with_: set[str], t: int | None = None
    ) -> list:
        """API records of ``numbers`` at ``t`` (default: now), with the embeds ``with_`` asks for.

        Args:
            entity: ``leads``, ``contacts``, ``companies`` or ``tasks``.
            numbers: Entity numbers, as :meth:`select` returns them.
            root: Scheme and host of the links.
            with_: ``with=`` values (leads: contacts, loss_reason; contacts: leads; companies:
                contacts, leads).
            t: The moment.

        Returns:
            The records, in the order of ``numbers``.
        """
        at = self._clock if t is None else t
        kind = KINDS[entity]
        generated = self._generated_renderer(entity, root, with_, at)
        # Each number is looked up by itself (a dict hit): listing the account's written entities here
        # made a one-lead render, as every PATCHed lead's validation does, linear in what the account holds.
        leads_of: Callable[[int], list[int]] | None = None
        embeds_leads = kind == CONTACT and "leads" in with_
        records = []
        for number in numbers:
            entry = self.written.entity(kind, number)
            version = entry.at(at) if entry is not None else None  # None before it was written
            if version is None:
                records.append(generated(number))
                continue
            if embeds_leads and leads_of is None:
                leads_of = self._linked(LEAD, "contact", at)
            records.append(
                written_record(
                    kind,
                    version.record,
                    root,
                    tags=version.tags,
                    companies=version.companies,
                    contacts=version.contacts if "contacts" in with_ and kind == LEAD else None,
                    leads=leads_of(number) if leads_of else None,
                    loss_reason="loss_reason" in with_,
                )
            )
        return records

    def _generated_renderer(self, entity: str, root: str, with_: set[str], at: int) -> Callable[[int], dict]:
        """The record of a generated entity ``number`` at ``at``, with the embeds ``with_`` asks for."""
        book = self.book
        if entity == "leads":
            contacts, reasons = "contacts" in with_, "loss_reason" in with_
            return lambda n: lead_record(book.lead(n), at, root, contacts=contacts, loss_reason=reasons)
        if entity == "contacts":
            leads_of = self._linked(LEAD, "contact", at) if "leads" in with_ else None
            return lambda n: contact_record(
                book.contact(n), at, root, leads=leads_of(n) if leads_of else None
            )
        if entity == "companies":
            contacts_of = self._linked(CONTACT, "company", at) if "contacts" in with_ else None
            companies_leads = self._linked(LEAD, "company", at) if "leads" in with_ else None
            return lambda n: company_record(
                book.company(n),
                at,
                root,
                contacts=contacts_of(n) if contacts_of else None,
                leads=companies_leads(n) if companies_leads else None,
            )
        return lambda n: task_record(book.task(n), at, root)

    # --- events --------------------------------------------------------------------------------------

    def select_events(self, query: ListQuery, t: int | None = None) -> Sequence[Event]:
        """Events a ``GET /api/v4/events`` request returns, in order (all pages).

        Args:
            query: ``created_from``/``created_to`` (inclusive), ``types``, ``entity_types``,
                ``entity_ids``; order ``("created_at" | "id", "asc" | "desc")``.
            t: The moment (default: now); later events have not happened.

        Returns:
            Events as tuples (see :data:`~elt_platform.sandbox.amocrm.records.Event`).
        """
        at = self._clock if t is None else t
        key = ("events", query, at, self.written.version)
        return self._cached(key, lambda: self._select_events(query, at), size=32)

    def _select_events(self, query: ListQuery, t: int) -> list[Event]:
        since = query.created_from if query.created_from is not None else self.start
        until = min(t, query.created_to) if query.created_to is not None else t
        kinds = (
            [_EVENT_KIND[e] for e in sorted(query.entity_types)]
            if query.entity_types
            else [LEAD, CONTACT, COMPANY]
        )
        makers: dict[int, tuple[Callable[[int], Any], Callable[[Any], list[Event]]]] = {
            LEAD: (self.book.lead, lead_events),
            CONTACT: (self.book.contact, partial(entity_events, CONTACT)),
            COMPANY: (self.book.company, partial(entity_events, COMPANY)),
        }
        found: list[Event] = []
        for kind in kinds:
            index, schedule = self._indexes[kind], self.schedules[kind]
            script_of, events_of = makers[kind]
            # A taken-over entity's script stops at the takeover: its later events never happen.
            stopped = self.written.taken(kind, until)
            first = schedule.count_at(since - _LIFE_SPAN) + 1
            last = min(schedule.count_at(until), index.count)
            wanted = {i - ID_BASE[kind] for i in query.entity_ids} if query.entity_ids else None
            times = index.times
            for number in range(first, last + 1):
                if wanted is not None and number not in wanted:
                    continue
                lo, hi = index.offsets[number - 1], index.offsets[number]
                k = bisect_left(times, since, lo, hi)
                if k == hi or times[k] > until:
                    continue  # no change of this entity within the window
                end = min(until, stopped.get(number, until))
                for event in events_of(script_of(number)):
                    if since <= event[0] <= end and (query.types is None or event[4] in query.types):
                        found.append(event)
        for event in self.written.events():
            at, _, kind, number = event[:4]
            if (
                kind in kinds
                and since <= at <= until
                and (query.types is None or event[4] in query.types)
                and (query.entity_ids is None or ID_BASE[kind] + number in query.entity_ids)
            ):
                found.append(event)
        field_, direction = query.order
        found.sort(
            key=(lambda e: e[1]) if field_ == "id" else (lambda e: (e[0], e[1])), reverse=direction == "desc"
        )
        return found

    # --- ground truth --------------------------------------------------------------------------------

    def lead(self, lead_id: int, t: int | datetime | None = None) -> LeadState:
        """One lead's state at ``t`` (default: now).

        Raises:
            KeyError: The lead does not exist (yet) at ``t``.
        """
        at = self._clock if t is None else _unix(t)
        number = lead_id - ID_BASE[LEAD]
        written = self.written.entity(LEAD, number)
        if written is not None and written.since <= at:
            return written_lead_state(written, at)
        if not 1 <= number <= self.schedules[LEAD].count_at(at):
            raise KeyError(f"lead {lead_id} does not exist at {at}")
        return lead_state(self.book.lead(number), at)

    def leads_as_of(self, t: int | datetime | None = None) -> list[LeadState]:
        """Every lead created by ``t`` (default: now), deleted ones included (``is_deleted``), by id."""
        at = self._clock if t is None else _unix(t)
        written = {w.number: w for w in self.written.entities(LEAD, at)}
        generated = range(1, self.schedules[LEAD].count_at(at) + 1)
        return [
            written_lead_state(written[n], at) if n in written else lead_state(self.book.lead(n), at)
            for n in sorted({*generated, *written})
        ]

    def record(
        self,
        entity: str,
        api_id: int,
        t: int | datetime | None = None,
        *,
        root: str = "",
        with_: Iterable[str] = (),
    ) -> dict[str, Any]:
        """One record of ``entity`` as its list shows it at ``t`` (default: now).

        Raises:
            KeyError: Nothing of that id is visible at ``t`` (never created, not yet, or deleted).
        """
        at = self._clock if t is None else _unix(t)
        kind = KINDS[entity]
        if not self._visible(kind, api_id - ID_BASE[kind], at):
            raise KeyError(f"no visible {entity} {api_id} at {at}")
        return self.render(entity, [api_id - ID_BASE[kind]], root, set(with_), at)[0]

    def _visible(self, kind: int, number: int, t: int) -> bool:
        written = self.written.entity(kind, number)
        if written is not None and written.since <= t:
            return True
        self._ensure_indexed(t)
        return 1 <= number <= self.schedules[kind].count_at(t) and self._indexes[kind].visible(number, t)

    def records(
        self, entity: str, t: int | datetime | None = None, *, root: str = "", with_: Iterable[str] = ()
    ) -> list:
        """What a full, unfiltered list of ``entity`` shows at ``t`` (default: now), by id ascending."""
        at = self._clock if t is None else _unix(t)
        return self.render(entity, self.select(entity, ListQuery(), at), root, set(with_), at)

    def events(
        self,
        since: int | datetime | None = None,
        until: int | datetime | None = None,
        types: Iterable[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Events created in ``[since, until]`` (inclusive; defaults: the start, now), oldest first.

        Args:
            since: First second.
            until: Last second (capped at now: later events have not happened).
            types: Event types to keep (see :data:`EVENT_TYPES`); None keeps all.

        Returns:
            Event records as the API shows them (links relative: no host).
        """
        query = ListQuery(
            created_from=None if since is None else _unix(since),
            created_to=None if until is None else _unix(until),
            types=None if types is None else frozenset(types),
            order=("created_at", "asc"),
        )
        return [event_record(event, "") for event in self.select_events(query)]

    def deleted(self, t: int | datetime | None = None) -> dict[str, list[int]]:
        """API ids of the leads, contacts and companies in the trash at ``t`` (default: now)."""
        at = self._clock if t is None else _unix(t)
        self._ensure_indexed(at)
        result = {}
        for name in ("leads", "contacts", "companies"):
            kind = KINDS[name]
            index, count = self._indexes[kind], self.schedules[kind].count_at(at)
            taken = self.written.taken(
                kind, at
            )  # written to while visible: its script's deletion never comes
            result[name] = [
                ID_BASE[kind] + n for n in range(1, count + 1) if not index.visible(n, at) and n not in taken
            ]
        return result

    def changed(self, entity: str, since: int | datetime, until: int | datetime) -> list[int]:
        """API ids an incremental extract of ``[since, until]`` gets when it runs at ``until``.

        That is the entities visible at ``until`` whose ``updated_at`` (as of ``until``) lies in
        ``[since, until]``, by id. Deletions in the window are in :meth:`events` (``*_deleted``).
        """
        end = _unix(until)
        query = ListQuery(updated_from=_unix(since), updated_to=end)
        return [ID_BASE[KINDS[entity]] + n for n in self.select(entity, query, end)]

    # --- writes --------------------------------------------------------------------------------------

    def write(
        self, entity: str, operation: str, body: Any, *, endpoint: str | None = None, by: int | None = None
    ) -> list[WriteResult]:
        """Validate and apply one write request, as the API's POST/PATCH routes do: all or nothing.

        The clock first moves one second on, and everything is written at the new clock.

        Args:
            entity: ``leads`` or ``contacts``.
            operation: ``add``, ``update`` or (leads) ``complex``; see :data:`WRITE_OPERATIONS`.
            body: The decoded request body (a JSON array of entities).
            endpoint: Counts the written entities under this name (default ``<entity>_<operation>``).
            by: The writing user (default: the account's administrator, the API's current user).

        Returns:
            One result per entity, in request order.

        Raises:
            Rejected: The body is not a valid batch; nothing was written.
        """
        operation_ = WRITE_OPERATIONS[(entity, operation)]
        with self._lock:
            self.advance(self._clock + 1)
            at = self._clock
            rules = self._rules(at)
            changes = batch(body, operation_.limit, lambda item, i: operation_.read(item, i, rules))
            user = by if by is not None else self.users[0].id
            results = [self._apply(KINDS[entity], change, at, user) for change in changes]
            self.written.count(endpoint or f"{entity}_{operation}", len(changes))
        return results

    def create(self, entity: str, items: list[dict[str, Any]], *, by: int | None = None) -> list[int]:
        """Create leads or contacts as people would in the UI (counted as ``create``, not as API writes).

        Args:
            entity: ``leads`` or ``contacts``.
            items: Entities in the API's write shape (validated as a POST body).
            by: Their creator (default: the clinic's responsible user, else the first manager).

        Returns:
            Their API ids, in order.
        """
        results = self.write(
            entity, "add", items, endpoint="create", by=by if by is not None else self._person()
        )
        return [result.id for result in results]

    def edit_lead(self, lead_id: int, *, by: int | None = None, **fields: Any) -> dict[str, Any]:
        """Change a lead as a person does in the UI: move its stage, edit its fields (``admin_edit``).

        Args:
            lead_id: The lead.
            by: Who edits it (default: the clinic's responsible user, else the first manager).
            **fields: Fields in the API's write shape (``status_id``, ``pipeline_id``, ``price``,
                ``custom_fields_values``…).

        Returns:
            The lead as the list shows it after the edit.

        Raises:
            Rejected: The edit is not valid (unknown lead, stage or field).
        """
        self.write(
            "leads", "update", [{**fields, "id": lead_id}], endpoint="admin_edit", by=by or self._person()
        )
        return self.record("leads", lead_id, with_=("contacts",))

    def _person(self) -> int:
        return self.clinic.responsible_user_id if self.clinic else self.users[1].id

    def _rules(self, at: int) -> AccountRules:
        return AccountRules(
            pipelines={p.id: p for p in self.pipelines},
            main_pipeline=next(p for p in self.pipelines if p.is_main),
            fields={entity: {f["id"]: f for f in fields} for entity, fields in self.custom_fields.items()},
            users=frozenset(u.id for u in self.users),
            tags=self.written.tag_names,
            current=lambda entity, api_id: self._current(entity, api_id, at),
        )

    def _current(self, entity: str, api_id: int, at: int) -> dict[str, Any] | None:
        kind = KINDS[entity]
        if not self._visible(kind, api_id - ID_BASE[kind], at):
            return None
        return self.render(entity, [api_id - ID_BASE[kind]], "", set(), at)[0]

    def _apply(self, kind: int, change: Change, at: int, by: int) -> WriteResult:
        """Write one validated change at ``at`` (a complex lead's new contact first)."""
        if change.contact is not None:
            change.contact.companies = change.contact.companies or change.companies
            change.contacts = [self._apply(CONTACT, change.contact, at, by).id]
        entity = _ENTITY_NAME[kind]
        before: Version | None = None
        if change.target is None:
            written = Written(kind, self.written.allocate(kind), taken_over=False)
        else:
            number = change.target - ID_BASE[kind]
            found = self.written.entity(kind, number)
            if found is None:  # a generated entity: it is taken over from now on
                record = self.render(entity, [number], "", {"contacts"}, at)[0]
                truth = lead_state(self.book.lead(number), at) if kind == LEAD else None
                found = taken_over(kind, number, at, record, truth)
            written, before = found, found.versions[-1]
        version = apply_change(
            kind,
            before,
            change,
            api_id=written.api_id,
            at=at,
            by=by,
            definitions={f["id"]: f for f in self.custom_fields[entity]},
            tag=self.written.tag,
        )
        self.written.record(written, version, write_events(written, before, version, by))
        return WriteResult(
            written.api_id,
            change.request_id,
            at,
            contact_id=version.contacts[0] if version.contacts else None,
            company_id=version.companies[0] if version.companies else None,
        )


def _in_window(written: Written, query: ListQuery, t: int) -> bool:
    """Whether a written entity's version at ``t`` passes a list's time and id filters."""
    version = written.at(t)
    assert version is not None
    record = version.record
    bounds = (
        (record["updated_at"], query.updated_from, query.updated_to),
        (record["created_at"], query.created_from, query.created_to),
    )
    if any(
        (low is not None and stamp < low) or (high is not None and stamp > high)
        for stamp, low, high in bounds
    ):
        return False
    return query.ids is None or record["id"] in query.ids

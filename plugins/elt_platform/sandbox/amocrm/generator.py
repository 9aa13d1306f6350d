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

Ground truth for tests: :meth:`~AmoCrmDataset.lead`, :meth:`~AmoCrmDataset.leads_as_of`,
:meth:`~AmoCrmDataset.records`, :meth:`~AmoCrmDataset.events`, :meth:`~AmoCrmDataset.deleted`,
:meth:`~AmoCrmDataset.changed`.
"""

import threading
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from elt_platform.sandbox.amocrm.account import PIPELINES, Pipeline, User, make_users
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

        Raises:
            ValueError: ``now`` not after ``start``, a count below 1, or fewer than 2 users.
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
        self.pipelines: tuple[Pipeline, ...] = PIPELINES
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
        return {name: len(self._view(kind, at).numbers) for name, kind in KINDS.items()}

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
            keys = sorted(
                target << _SHIFT | number
                for name in names
                for number, target in enumerate(index.links[name][:count], start=1)
                if target and index.visible(number, t)
            )

            def lookup(target: int) -> list[int]:
                lo = bisect_left(keys, target << _SHIFT)
                hi = bisect_left(keys, (target + 1) << _SHIFT)
                return [key & _LOW for key in keys[lo:hi]]

            return lookup

        return self._cached(("links", source, link, t), build)

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
        return self._cached(("select", kind, query, at), lambda: self._select(kind, query, at), size=32)

    def _select(self, kind: int, query: ListQuery, t: int) -> Sequence[int]:
        view = self._view(kind, t)
        field_, direction = query.order
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
        if direction == "desc":
            numbers = numbers[::-1]
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
        book = self.book
        if entity == "leads":
            contacts, reasons = "contacts" in with_, "loss_reason" in with_
            return [
                lead_record(book.lead(n), at, root, contacts=contacts, loss_reason=reasons) for n in numbers
            ]
        if entity == "contacts":
            leads_of = self._linked(LEAD, "contact", at) if "leads" in with_ else None
            return [
                contact_record(book.contact(n), at, root, leads=leads_of(n) if leads_of else None)
                for n in numbers
            ]
        if entity == "companies":
            contacts_of = self._linked(CONTACT, "company", at) if "contacts" in with_ else None
            leads_of = self._linked(LEAD, "company", at) if "leads" in with_ else None
            return [
                company_record(
                    book.company(n),
                    at,
                    root,
                    contacts=contacts_of(n) if contacts_of else None,
                    leads=leads_of(n) if leads_of else None,
                )
                for n in numbers
            ]
        return [task_record(book.task(n), at, root) for n in numbers]

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
        return self._cached(("events", query, at), lambda: self._select_events(query, at), size=32)

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
                for event in events_of(script_of(number)):
                    if since <= event[0] <= until and (query.types is None or event[4] in query.types):
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
        if not 1 <= number <= self.schedules[LEAD].count_at(at):
            raise KeyError(f"lead {lead_id} does not exist at {at}")
        return lead_state(self.book.lead(number), at)

    def leads_as_of(self, t: int | datetime | None = None) -> list[LeadState]:
        """Every lead created by ``t`` (default: now), deleted ones included (``is_deleted``), by id."""
        at = self._clock if t is None else _unix(t)
        return [lead_state(self.book.lead(n), at) for n in range(1, self.schedules[LEAD].count_at(at) + 1)]

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
            result[name] = [ID_BASE[kind] + n for n in range(1, count + 1) if not index.visible(n, at)]
        return result

    def changed(self, entity: str, since: int | datetime, until: int | datetime) -> list[int]:
        """API ids an incremental extract of ``[since, until]`` gets when it runs at ``until``.

        That is the entities visible at ``until`` whose ``updated_at`` (as of ``until``) lies in
        ``[since, until]``, by id. Deletions in the window are in :meth:`events` (``*_deleted``).
        """
        end = _unix(until)
        query = ListQuery(updated_from=_unix(since), updated_to=end)
        return [ID_BASE[KINDS[entity]] + n for n in self.select(entity, query, end)]

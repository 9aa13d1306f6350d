"""Life scripts: everything that ever happens to one generated entity, decided once from ``(seed, number)``.

A script is the entity's whole future: when it is created, each stage move, price edit, reassignment,
deletion and restore, with their Unix-second times. The dataset's clock only decides how much of it has
happened (:mod:`elt_platform.sandbox.amocrm.generator`), so "the state at time t" and "what changed
between t1 and t2" are pure functions and advancing the clock never draws a random number.

Entities are numbered 1, 2, ... in creation order within their kind (API id = kind base + number).
Creation times follow a jittered even schedule (:class:`Schedule`): the n-th entity is created in the
n-th slot, so "how many exist at t" is O(1) and the data set grows forever as the clock moves on.
Relations only point back in time (a lead links contacts and companies that existed when it was
created) and never at an entity that will be deleted, so deletions never leave dangling links and a
lead's ``updated_at`` moves whenever anything the API shows about it changes.
"""

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

from elt_platform.sandbox.amocrm.account import (
    INDUSTRIES,
    LEAD_SOURCES,
    LOSS_REASONS,
    LOST,
    PIPELINES,
    TAGS,
    WON,
    Pipeline,
    User,
)
from elt_platform.sources.alaqan.iin import check_digit

MINUTE = 60
HOUR = 3_600
DAY = 86_400

LEAD, CONTACT, COMPANY, TASK = 1, 2, 3, 4
KINDS = {"leads": LEAD, "contacts": CONTACT, "companies": COMPANY, "tasks": TASK}
#: API id = base + number.
ID_BASE = {LEAD: 30_000_000, CONTACT: 40_000_000, COMPANY: 50_000_000, TASK: 60_000_000}
#: Share of entities deleted at some point of their life (tasks are never deleted).
DELETE_RATE = {LEAD: 0.03, CONTACT: 0.04, COMPANY: 0.03, TASK: 0.0}
#: Share of deleted entities restored later.
RESTORE_RATE = 0.25
#: A lead's stage moves, edits and deletion all fall within this span after its creation.
LEAD_LIFE = 180 * DAY

_MASK = (1 << 64) - 1
_SALT_CREATED, _SALT_DELETED, _SALT_RESTORED = 1, 2, 3
_SALT_RESPONSIBLE, _SALT_HAS_COMPANY, _SALT_PICK, _SALT_PICK_NEWEST, _SALT_IDENTITY = 4, 5, 6, 7, 8

T = TypeVar("T")


def unit(seed: int, kind: int, number: int, salt: int) -> float:
    """A cheap deterministic draw in [0, 1) for one (seed, kind, number, salt): splitmix64's finaliser.

    Used where a decision must be known without building the whole script (is this contact ever
    deleted? when is lead 1234 created?).
    """
    x = (seed * 0x9E3779B97F4A7C15 + kind * 0xBF58476D1CE4E5B9 + number * 0x94D049BB133111EB + salt) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return ((x ^ (x >> 31)) >> 11) / float(1 << 53)


def as_of(history: Sequence[tuple[int, T]], t: int) -> T:
    """The value of a ``((at, value), ...)`` history at time ``t`` (the first entry if ``t`` precedes it)."""
    value = history[0][1]
    for at, candidate in history:
        if at > t:
            break
        value = candidate
    return value


class Schedule:
    """Creation times of one kind: entity n is created in the n-th of equal slots, at a seeded offset."""

    def __init__(self, seed: int, kind: int, start: int, slot: float) -> None:
        """Create the schedule.

        Args:
            seed: Data-set seed.
            kind: Entity kind code.
            start: Unix seconds of the first slot's start.
            slot: Seconds per entity (history span / count at the initial clock).
        """
        self.seed, self.kind, self.start, self.slot = seed, kind, start, slot

    def created_at(self, number: int) -> int:
        """Unix seconds entity ``number`` (1-based) is created; increasing with ``number``."""
        offset = 0.001 + 0.998 * unit(self.seed, self.kind, number, _SALT_CREATED)
        return self.start + int((number - 1 + offset) * self.slot)

    def count_at(self, t: int) -> int:
        """How many entities exist at ``t`` (numbers ``1..n`` have ``created_at <= t``)."""
        if t < self.start:
            return 0
        n = int((t - self.start) / self.slot) + 2
        while n > 0 and self.created_at(n) > t:
            n -= 1
        return n


@dataclass(frozen=True, slots=True)
class LeadScript:
    """A lead's life. Histories are ``((at, value), ...)`` from ``created_at`` on.

    Attributes:
        number: Creation rank (API id = ``ID_BASE[LEAD] + number``).
        name: Lead name.
        created_at: Creation time.
        created_by: User id, 0 when it came in unsorted (a web form).
        pipeline_id: Its pipeline (leads do not change pipeline here).
        statuses: Status history; the first entry is the initial status.
        prices: Price history.
        responsibles: Responsible-user history.
        loss_reason_id: Loss reason shown once the lead is lost (None: not given).
        tags: Tag ids.
        contacts: Contact numbers, main contact first.
        company: Company number, 0 for none.
        source: (enum id, value) of the Источник field, or None.
        bin: Value of the БИН field (possibly messy), or None.
        deleted_at: When it is deleted, 0 if never.
        restored_at: When it is restored, 0 if never.
        changes: Every time something the API shows changes, ascending (``updated_at`` candidates).
    """

    number: int
    name: str
    created_at: int
    created_by: int
    pipeline_id: int
    statuses: tuple[tuple[int, int], ...]
    prices: tuple[tuple[int, int], ...]
    responsibles: tuple[tuple[int, int], ...]
    loss_reason_id: int | None
    tags: tuple[int, ...]
    contacts: tuple[int, ...]
    company: int
    source: tuple[int, str] | None
    bin: str | None
    deleted_at: int
    restored_at: int
    changes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ContactScript:
    """A contact's life.

    Attributes:
        number: Creation rank.
        name: Display name (may not be first + last).
        first_name: First name ("" when unknown).
        last_name: Last name ("" when unknown).
        created_at: Creation time.
        created_by: User id, 0 when created by a form.
        responsible_user_id: Responsible user.
        company: Company number, 0 for none.
        fields: ``((at, (phones, emails)), ...)``; phones and emails are ``((value, enum_code), ...)``.
        deleted_at: When it is deleted, 0 if never.
        restored_at: When it is restored, 0 if never.
        changes: Change times, ascending.
    """

    number: int
    name: str
    first_name: str
    last_name: str
    created_at: int
    created_by: int
    responsible_user_id: int
    company: int
    fields: tuple[tuple[int, tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]], ...]
    deleted_at: int
    restored_at: int
    changes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CompanyScript:
    """A company's life.

    Attributes:
        number: Creation rank.
        names: Name history (a few companies are renamed).
        created_at: Creation time.
        created_by: User id.
        responsible_user_id: Responsible user.
        bin: БИН field value (possibly messy), or None.
        industry: (enum id, value) of Сфера, or None.
        deleted_at: When it is deleted, 0 if never.
        restored_at: When it is restored, 0 if never.
        changes: Change times, ascending.
    """

    number: int
    names: tuple[tuple[int, str], ...]
    created_at: int
    created_by: int
    responsible_user_id: int
    bin: str | None
    industry: tuple[int, str] | None
    deleted_at: int
    restored_at: int
    changes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TaskScript:
    """A task's life (tasks are never deleted here).

    Attributes:
        number: Creation rank.
        created_at: Creation time.
        created_by: User id.
        responsible_user_id: Responsible user.
        entity_type: ``leads``, ``contacts`` or ``companies``.
        entity: Number of the entity it is attached to.
        task_type_id: 1 (follow up) or 2 (meeting).
        text: Task text.
        complete_till: Deadline.
        completed_at: When it is completed, 0 if never.
        result_text: Result text given on completion, or None.
        changes: Change times, ascending.
    """

    number: int
    created_at: int
    created_by: int
    responsible_user_id: int
    entity_type: str
    entity: int
    task_type_id: int
    text: str
    complete_till: int
    completed_at: int
    result_text: str | None
    changes: tuple[int, ...]


# --- vocabularies ------------------------------------------------------------------------------------

_MALE_FIRST = ("Алибек", "Ерлан", "Данияр", "Нурлан", "Сергей", "Андрей", "Тимур", "Асхат", "Руслан", "Арман")
_FEMALE_FIRST = ("Айгуль", "Мария", "Дана", "Асель", "Елена", "Жанар", "Алия", "Ольга", "Сауле", "Камила")
_LAST = (
    "Иванов",
    "Ахметов",
    "Смагулов",
    "Ким",
    "Петров",
    "Нурланов",
    "Сейткали",
    "Жумабаев",
    "Ли",
    "Оспанов",
)
_TRANSLIT = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        "a b v g d e e zh z i y k l m n o p r s t u f kh ts ch sh sch _ y _ e yu ya".split(),
        strict=True,
    )
)
_MAIL_DOMAINS = ("mail.kz", "gmail.com", "mail.ru", "inbox.kz", "yandex.kz")
_MOBILE_CODES = ("701", "702", "705", "707", "708", "747", "771", "775", "776", "777", "778")
_COMPANY_WORDS = (
    "Астана",
    "Степь",
    "Алатау",
    "Байтерек",
    "Инновация",
    "Цифра",
    "Сункар",
    "Тумар",
    "Кенес",
    "Орда",
)
_COMPANY_SUFFIXES = ("Тех", "Софт", "Строй", "Логистик", "Групп", "Инвест", "Медиа", "Лаб")
_LEAD_TITLES = (
    "Заявка на участие",
    "Аренда офиса",
    "Консультация",
    "Участие в акселераторе",
    "Коворкинг",
    "Пилотный проект",
)
_TASK_TEXTS = {
    1: ("Перезвонить клиенту", "Отправить коммерческое предложение", "Уточнить реквизиты"),
    2: ("Назначить встречу с клиентом", "Презентация продукта", "Экскурсия по технопарку"),
}
_TASK_RESULTS = ("Клиент заинтересован", "Не дозвонились", "КП отправлено", "Встреча состоялась")


def _translit(text: str) -> str:
    return "".join(_TRANSLIT.get(ch, ch) for ch in text.lower()).replace("_", "")


def make_bin(rng: random.Random) -> str:
    """A valid Kazakhstan БИН: registration ``YYMM``, legal-entity digit 4, 0, serial, check digit."""
    while True:
        first_eleven = f"{rng.randrange(0, 24):02d}{rng.randrange(1, 13):02d}40{rng.randrange(100_000):05d}"
        digit = check_digit(first_eleven)
        if digit is not None:
            return f"{first_eleven}{digit}"


def _messy_bin(rng: random.Random, value: str) -> str:
    # What operators type: spaces every four digits, a dropped digit, stray whitespace.
    kind = rng.randrange(3)
    if kind == 0:
        return f"{value[:4]} {value[4:8]} {value[8:]}"
    if kind == 1:
        return value[:-1]
    return f" {value} "


def messy_phone(rng: random.Random) -> str:
    """A Kazakh phone number as people type it; about one in ten is unusable (short, words, empty)."""
    code, sub = rng.choice(_MOBILE_CODES), f"{rng.randrange(10_000_000):07d}"
    a, b, c = sub[:3], sub[3:5], sub[5:]
    formats = (
        f"+7 {code} {a} {b} {c}",
        f"8 {code} {a}-{b}-{c}",
        f"+7({code}){sub}",
        f"8{code}{sub}",
        f"7{code}{sub}",
        f"+7{code}{sub}",
        f"{code}{sub}",
        f"+7 ({code}) {a}-{b}-{c}",
        f"8 ({code}) {a} {b} {c}",
    )
    invalid = (f"{b}-{c}", f"+7 {code} {a}", "нет", "", f"8{code}{sub}1")
    return rng.choice(invalid) if rng.random() < 0.1 else rng.choice(formats)


def messy_email(rng: random.Random, first: str, last: str) -> str:
    """An e-mail built from the name; some in odd case or padded, a few invalid."""
    login = _translit(last or first or "client") + (f".{_translit(first)[:1]}" if first and last else "")
    login += str(rng.randrange(100)) if rng.random() < 0.3 else ""
    address = f"{login}@{rng.choice(_MAIL_DOMAINS)}"
    r = rng.random()
    if r < 0.08:
        return address.title()
    if r < 0.13:
        return f" {address} "
    if r < 0.18:
        return rng.choice((f"{login}@", address.replace("@", ".")))
    return address


class ScriptBook:
    """Makes and caches the life scripts of one data set (pure: same arguments, same scripts).

    Scripts are cached (LRU) rather than stored: at a million leads only the compact index of the
    dataset is kept, and pages re-derive the few hundred scripts they show. What one script needs to
    know about another entity (a contact's company, a company's name and БИН, a lead's first
    responsible) comes from small functions of that entity's number, never from its whole script, so
    building scripts in any order costs the same.
    """

    def __init__(
        self,
        seed: int,
        schedules: dict[int, Schedule],
        users: tuple[User, ...],
        *,
        cache_size: int = 20_000,
    ) -> None:
        """Create the book.

        Args:
            seed: Data-set seed.
            schedules: Creation schedule of each kind.
            users: The account's users; the first (administrator) owns nothing.
            cache_size: Scripts kept per kind.
        """
        self.seed = seed
        self.schedules = schedules
        self.managers = tuple(u.id for u in users[1:])
        self.admin = users[0].id
        makers: dict[int, Callable[[int], object]] = {
            LEAD: self._make_lead,
            CONTACT: self._make_contact,
            COMPANY: self._make_company,
            TASK: self._make_task,
        }
        self._cached = {kind: lru_cache(maxsize=cache_size)(make) for kind, make in makers.items()}
        self.company_identity = lru_cache(maxsize=cache_size)(self._company_identity)

    def lead(self, number: int) -> LeadScript:
        """The script of lead ``number``."""
        return self._cached[LEAD](number)  # type: ignore[return-value]

    def contact(self, number: int) -> ContactScript:
        """The script of contact ``number``."""
        return self._cached[CONTACT](number)  # type: ignore[return-value]

    def company(self, number: int) -> CompanyScript:
        """The script of company ``number``."""
        return self._cached[COMPANY](number)  # type: ignore[return-value]

    def task(self, number: int) -> TaskScript:
        """The script of task ``number``."""
        return self._cached[TASK](number)  # type: ignore[return-value]

    def script(self, kind: int, number: int) -> LeadScript | ContactScript | CompanyScript | TaskScript:
        """The script of any kind."""
        return self._cached[kind](number)  # type: ignore[return-value]

    def will_be_deleted(self, kind: int, number: int) -> bool:
        """Whether the entity is deleted at some point (decided without building its script)."""
        return unit(self.seed, kind, number, _SALT_DELETED) < DELETE_RATE[kind]

    # --- facts other scripts read --------------------------------------------------------------------

    def lead_responsible(self, number: int) -> int:
        """The manager a lead is assigned to when created."""
        return self.managers[int(unit(self.seed, LEAD, number, _SALT_RESPONSIBLE) * len(self.managers))]

    def contact_company(self, number: int) -> int:
        """The company number of a contact (half have one), 0 for none."""
        if unit(self.seed, CONTACT, number, _SALT_HAS_COMPANY) >= 0.5:
            return 0
        existing = self.schedules[COMPANY].count_at(self.schedules[CONTACT].created_at(number))
        return self._pick(
            COMPANY,
            existing,
            unit(self.seed, CONTACT, number, _SALT_PICK_NEWEST),
            unit(self.seed, CONTACT, number, _SALT_PICK),
            newest_share=0.5,
        )

    def _company_identity(self, number: int) -> tuple[str, str, str | None]:
        """(legal form, name at creation, БИН as typed or None) of a company."""
        rng = self._rng(COMPANY, number, _SALT_IDENTITY)
        form = rng.choices(("ТОО", "АО", "ИП"), weights=(70, 10, 20))[0]
        if form == "ИП":
            name = f"ИП {rng.choice(_LAST)}"
        else:
            name = f"{form} «{rng.choice(_COMPANY_WORDS)}{rng.choice(_COMPANY_SUFFIXES)}»"
        bin_value = None
        if rng.random() < (0.5 if form == "ИП" else 0.85):
            bin_value = make_bin(rng)
            if rng.random() < 0.05:
                bin_value = _messy_bin(rng, bin_value)
        return form, name, bin_value

    # --- shared draws --------------------------------------------------------------------------------

    def _rng(self, kind: int, number: int, salt: int = 0) -> random.Random:
        return random.Random((self.seed & 0xFFFF_FFFF) << 40 | salt << 37 | kind << 34 | number)

    def _deletion(
        self, kind: int, number: int, created: int, rng: random.Random, span: int
    ) -> tuple[int, int]:
        if not self.will_be_deleted(kind, number):
            return 0, 0
        deleted = created + int(10 * MINUTE + rng.random() * span)
        if unit(self.seed, kind, number, _SALT_RESTORED) >= RESTORE_RATE:
            return deleted, 0
        return deleted, deleted + int(HOUR + rng.random() * 10 * DAY)

    def _pick(self, kind: int, existing: int, newest: float, anywhere: float, newest_share: float) -> int:
        """A number among ``1..existing`` that is never deleted (0 if none found nearby).

        ``newest`` and ``anywhere`` are draws in [0, 1): the newest entity with probability
        ``newest_share``, else a uniform one.
        """
        if existing <= 0:
            return 0
        number = existing if newest < newest_share else 1 + int(anywhere * existing)
        for candidate in range(number, max(0, number - 20), -1):
            if not self.will_be_deleted(kind, candidate):
                return candidate
        return 0

    # --- makers --------------------------------------------------------------------------------------

    def _make_lead(self, number: int) -> LeadScript:
        rng = self._rng(LEAD, number)
        created = self.schedules[LEAD].created_at(number)
        pipeline: Pipeline = rng.choices(PIPELINES, weights=[p.weight for p in PIPELINES])[0]
        responsible = self.lead_responsible(number)
        unsorted = rng.random() < 0.3
        deleted, restored = self._deletion(LEAD, number, created, rng, 40 * DAY)
        horizon = deleted or created + LEAD_LIFE
        statuses = self._stage_moves(rng, pipeline, unsorted, created, horizon)
        loss_reason = None
        if statuses[-1][1] == LOST and rng.random() < 0.8:
            loss_reason = rng.choice(LOSS_REASONS)[0]

        price = 0 if rng.random() < 0.12 else int(round(2.718281828 ** rng.gauss(13.1, 0.9), -3))
        prices = [(created, price)]
        if rng.random() < 0.25:
            at = created + int(HOUR + rng.random() * 30 * DAY)
            if at < horizon:
                new_price = int(round((price or 300_000) * rng.uniform(0.6, 1.4), -3))
                if new_price != price:
                    prices.append((at, new_price))
        responsibles = [(created, responsible)]
        if rng.random() < 0.08 and len(self.managers) > 1:
            at = created + int(DAY + rng.random() * 20 * DAY)
            if at < horizon:
                others = [m for m in self.managers if m != responsible]
                responsibles.append((at, rng.choice(others)))

        tag_count = rng.choices((0, 1, 2), weights=(60, 30, 10))[0]
        tags = tuple(sorted(rng.sample([tid for tid, _ in TAGS], tag_count)))

        contacts: list[int] = []
        existing_contacts = self.schedules[CONTACT].count_at(created)
        for _ in range(rng.choices((0, 1, 2), weights=(8, 80, 12))[0]):
            picked = self._pick(CONTACT, existing_contacts, rng.random(), rng.random(), newest_share=0.6)
            if picked and picked not in contacts:
                contacts.append(picked)
        company = 0
        main_company = self.contact_company(contacts[0]) if contacts else 0
        if main_company and rng.random() < 0.85:
            company = main_company
        elif rng.random() < 0.2:
            existing = self.schedules[COMPANY].count_at(created)
            company = self._pick(COMPANY, existing, rng.random(), rng.random(), newest_share=0.3)

        source: tuple[int, str] | None = None
        bin_value: str | None = None
        if rng.random() >= 0.15:  # else custom_fields_values: null
            source = rng.choice(LEAD_SOURCES) if rng.random() < 0.85 else None
            company_bin = self.company_identity(company)[2] if company else None
            if company_bin and rng.random() < 0.7:
                bin_value = company_bin
            elif rng.random() < 0.15:
                bin_value = make_bin(rng)
                if rng.random() < 0.2:
                    bin_value = _messy_bin(rng, bin_value)

        title = rng.choice(_LEAD_TITLES)
        name = (
            f"Сделка #{ID_BASE[LEAD] + number}"
            if rng.random() < 0.25
            else (f"{title} — {self.company_identity(company)[1]}" if company else title)
        )
        changes = {created, *(t for t, _ in statuses), *(t for t, _ in prices), *(t for t, _ in responsibles)}
        changes.update(t for t in (deleted, restored) if t)
        return LeadScript(
            number=number,
            name=name,
            created_at=created,
            created_by=0 if unsorted else responsible,
            pipeline_id=pipeline.id,
            statuses=tuple(statuses),
            prices=tuple(prices),
            responsibles=tuple(responsibles),
            loss_reason_id=loss_reason,
            tags=tags,
            contacts=tuple(contacts),
            company=company,
            source=source,
            bin=bin_value,
            deleted_at=deleted,
            restored_at=restored,
            changes=tuple(sorted(changes)),
        )

    @staticmethod
    def _stage_moves(
        rng: random.Random, pipeline: Pipeline, unsorted: bool, created: int, horizon: int
    ) -> list[tuple[int, int]]:
        """Walk the funnel: forward mostly, sometimes skipping or stepping back, until won, lost or stuck."""
        opens = pipeline.open_statuses
        stage = -1 if unsorted else 0
        statuses = [(created, pipeline.unsorted.id if unsorted else opens[0].id)]
        at = created
        for _ in range(10):
            at += int(10 * MINUTE + rng.expovariate(1 / ((0.5 if stage < 0 else 6) * DAY)))
            r = rng.random()
            if at >= horizon or r < 0.1:
                break  # the lead stays where it is (for now or for good)
            if stage < 0:
                status = LOST if r < 0.25 else opens[0].id  # spam is closed right from "unsorted"
                stage = 0
            elif r < 0.27:
                status = LOST
            elif stage == len(opens) - 1:
                status = WON if r < 0.85 else LOST
            elif r < 0.33 and stage > 0:
                stage -= 1
                status = opens[stage].id
            elif r < 0.45 and stage + 2 < len(opens):
                stage += 2
                status = opens[stage].id
            else:
                stage += 1
                status = opens[stage].id
            statuses.append((at, status))
            if status in (WON, LOST):
                break
        return statuses

    def _make_contact(self, number: int) -> ContactScript:
        rng = self._rng(CONTACT, number)
        created = self.schedules[CONTACT].created_at(number)
        female = rng.random() < 0.5
        first = rng.choice(_FEMALE_FIRST if female else _MALE_FIRST)
        last = rng.choice(_LAST)
        if female and last.endswith(("ов", "ев")):
            last += "а"
        r = rng.random()
        if r < 0.04:
            name, first, last = first, first, ""
        elif r < 0.07:
            name, first, last = "Клиент с сайта", "", ""
        else:
            name = f"{first} {last}"
        responsible = rng.choice(self.managers)
        created_by = 0 if rng.random() < 0.3 else responsible
        company = self.contact_company(number)
        phones = tuple(
            (messy_phone(rng), "MOB" if rng.random() < 0.6 else "WORK")
            for _ in range(rng.choices((0, 1, 2), weights=(10, 75, 15))[0])
        )
        emails = tuple(
            (messy_email(rng, first, last), "WORK" if rng.random() < 0.7 else "PRIV")
            for _ in range(1 if rng.random() < 0.6 else 0)
        )
        fields = [(created, (phones, emails))]
        deleted, restored = self._deletion(CONTACT, number, created, rng, 20 * DAY)
        if rng.random() < 0.15:
            at = created + int(DAY + rng.random() * 60 * DAY)
            if not deleted or at < deleted:
                fields.append((at, (((messy_phone(rng), "MOB"), *phones[:1]), emails)))
        changes = {created, *(t for t, _ in fields), *(t for t in (deleted, restored) if t)}
        return ContactScript(
            number=number,
            name=name,
            first_name=first,
            last_name=last,
            created_at=created,
            created_by=created_by,
            responsible_user_id=responsible,
            company=company,
            fields=tuple(fields),
            deleted_at=deleted,
            restored_at=restored,
            changes=tuple(sorted(changes)),
        )

    def _make_company(self, number: int) -> CompanyScript:
        rng = self._rng(COMPANY, number)
        created = self.schedules[COMPANY].created_at(number)
        _, name, bin_value = self.company_identity(number)
        names = [(created, name)]
        deleted, restored = self._deletion(COMPANY, number, created, rng, 20 * DAY)
        if rng.random() < 0.06:
            at = created + int(DAY + rng.random() * 90 * DAY)
            if not deleted or at < deleted:
                names.append((at, name.replace("ТОО", "АО") if "ТОО" in name else f"{name} Kazakhstan"))
        industry = rng.choice(INDUSTRIES) if rng.random() < 0.8 else None
        responsible = rng.choice(self.managers)
        changes = {created, *(t for t, _ in names), *(t for t in (deleted, restored) if t)}
        return CompanyScript(
            number=number,
            names=tuple(names),
            created_at=created,
            created_by=responsible,
            responsible_user_id=responsible,
            bin=bin_value,
            industry=industry,
            deleted_at=deleted,
            restored_at=restored,
            changes=tuple(sorted(changes)),
        )

    def _make_task(self, number: int) -> TaskScript:
        rng = self._rng(TASK, number)
        created = self.schedules[TASK].created_at(number)
        entity_type = rng.choices(("leads", "contacts", "companies"), weights=(70, 20, 10))[0]
        order = [entity_type] + [k for k in ("leads", "contacts", "companies") if k != entity_type]
        entity = 0
        for entity_type in order:  # noqa: B007 - the type that found an entity is the one kept
            existing = self.schedules[KINDS[entity_type]].count_at(created)
            entity = self._pick(KINDS[entity_type], existing, rng.random(), rng.random(), newest_share=0.4)
            if entity:
                break
        if not entity:  # nothing exists yet: the task belongs to the first lead
            entity_type, entity = "leads", 1
        # A lead's task goes to the lead's manager (the one it was assigned to at creation).
        responsible = self.lead_responsible(entity) if entity_type == "leads" else rng.choice(self.managers)
        task_type = 1 if rng.random() < 0.7 else 2
        complete_till = created + int(HOUR + rng.random() * 7 * DAY)
        completed_at, result = 0, None
        if rng.random() < 0.7:
            completed_at = created + int(10 * MINUTE + rng.random() * 8 * DAY)
            result = rng.choice(_TASK_RESULTS) if rng.random() < 0.6 else None
        return TaskScript(
            number=number,
            created_at=created,
            created_by=responsible if rng.random() < 0.8 else self.admin,
            responsible_user_id=responsible,
            entity_type=entity_type,
            entity=entity,
            task_type_id=task_type,
            text=rng.choice(_TASK_TEXTS[task_type]),
            complete_till=complete_till,
            completed_at=completed_at,
            result_text=result,
            changes=(created, completed_at) if completed_at else (created,),
        )

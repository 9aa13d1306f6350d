"""Seeded, realistic existing content of a clinic's Bitrix24 portal, at any scale: :func:`populate`.

What a sync meets on a real portal: contacts with Kazakh and Russian names and phones typed every which
way (``+7 701 123 45 67``, ``87011234567``, ``8 (701) 123-45-67``, ``+7(701)1234567``, some with the
country code missing — which Bitrix24's duplicate search then does not match), some with two phones or
an e-mail, a few duplicates sharing a phone; leads, some converted (``CONVERTED`` with ``CONTACT_ID``),
some for people who are already contacts; deals in the default funnel and the clinic funnel, many of
the clinic ones already synced (``UF_CRM_IDENT_ID = F<branch>_<reception id>`` and reception fields),
others entered by hand, spread over every stage, manual ones included. The same ``(portal state, seed,
sizes, now)`` always gives the same content; 10,000 deals take one or two seconds.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from elt_platform.sandbox.bitrix24.configuration import CLINIC
from elt_platform.sandbox.bitrix24.portal import PERSON_USER, Portal

_KAZAKH = {
    "M": ("Нурлан", "Ерлан", "Асхат", "Бауыржан", "Данияр", "Арман", "Ержан", "Мурат", "Айдос", "Санжар"),
    "F": ("Айгерим", "Асель", "Дана", "Жанар", "Алия", "Мадина", "Гульнара", "Динара", "Сауле", "Камила"),
}
_KAZAKH_SURNAMES = ("Ахметов", "Бекмуханов", "Жумабаев", "Оспанов", "Касымов", "Нурпеисов", "Сейтказиев")
_KAZAKH_SURNAMES_PLAIN = ("Сейткали", "Абай", "Серикбай", "Нуржан")
_RUSSIAN = {
    "M": ("Александр", "Сергей", "Дмитрий", "Андрей", "Игорь", "Виктор", "Павел", "Олег"),
    "F": ("Анна", "Елена", "Ольга", "Наталья", "Ирина", "Татьяна", "Светлана", "Юлия"),
}
_RUSSIAN_SURNAMES = ("Иванов", "Петров", "Смирнов", "Кузнецов", "Попов", "Соколов", "Волков", "Морозов")
_PATRONYMIC_ROOTS = ("Серик", "Мурат", "Болат", "Александр", "Сергей", "Владимир", "Ерлан")
_MOBILE_CODES = ("700", "701", "702", "705", "707", "708", "747", "771", "775", "776", "777", "778")
_EMAIL_DOMAINS = ("mail.ru", "gmail.com", "yandex.kz", "inbox.kz")
_LATIN = str.maketrans(
    "абвгдеёжзийклмнопрстуфхцчшщыэюяәғқңөұүһі",
    "abvgdeezziiklmnoprstufhccssyeyaagqnouuhi",
    "ъь",
)

#: Phone spellings of a national number ``7011234567``, with their weights.
PHONE_FORMATS: tuple[tuple[Callable[[str], str], int], ...] = (
    (lambda n: f"+7 {n[:3]} {n[3:6]} {n[6:8]} {n[8:]}", 30),
    (lambda n: f"8{n}", 20),
    (lambda n: f"8 ({n[:3]}) {n[3:6]}-{n[6:8]}-{n[8:]}", 15),
    (lambda n: f"+7{n}", 15),
    (lambda n: f"+7({n[:3]}){n[3:]}", 8),
    (lambda n: f"8-{n[:3]}-{n[3:6]}-{n[6:8]}-{n[8:]}", 7),
    (lambda n: n, 5),  # no country code: Bitrix24's duplicate search misses it
)
_PHONE_SPELLINGS = [spell for spell, _ in PHONE_FORMATS]
_PHONE_WEIGHTS = [weight for _, weight in PHONE_FORMATS]

_DOCTORS = (
    ("Оспанова Гульнара Муратовна", "Терапевт"),
    ("Ким Виктор Андреевич", "Хирург"),
    ("Жумабаева Алия Ерлановна", "Ортодонт"),
    ("Петров Игорь Сергеевич", "Ортопед"),
    ("Сейткали Дана Болатовна", "Пародонтолог"),
)
_SERVICES = (
    "Консультация стоматолога",
    "Профессиональная гигиена",
    "Лечение кариеса",
    "Пломба светоотверждаемая",
    "Удаление зуба",
    "Имплантация",
    "Коронка металлокерамическая",
    "Рентгенография",
)
_BRANCHES = {1: "Есиль", 2: "Сарыарка", 3: "Алматы", 4: "Байконур", 5: "Нура"}
#: Clinic stages with how often existing deals sit in them.
_CLINIC_STAGE_WEIGHTS = {
    "C2:NEW": 20,
    "C2:PREPARATION": 15,
    "C2:PREPAYMENT_INVOICE": 8,
    "C2:EXECUTING": 5,
    "C2:UC_W4LIST": 4,
    "C2:FINAL_INVOICE": 12,
    "C2:WON": 26,
    "C2:LOSE": 9,
    "C2:APOLOGY": 1,
}
_DEFAULT_STAGE_WEIGHTS = {"NEW": 30, "PREPARATION": 15, "EXECUTING": 15, "WON": 25, "LOSE": 15}
_LEAD_STATUS_WEIGHTS = {"NEW": 35, "IN_PROCESS": 20, "PROCESSED": 10, "CONVERTED": 25, "JUNK": 10}
_LEAD_TITLES = ("Заявка с сайта", "Входящий звонок", "Запись через WhatsApp", "Instagram", "Акция: гигиена")
_SOURCES = ("CALL", "WEB", "ADVERTISING", "RECOMMENDATION", "OTHER")


@dataclass
class Population:
    """What :func:`populate` created.

    Attributes:
        contacts: New contact ids.
        leads: New lead ids.
        deals: New deal ids.
        phones: Contact id → its phones as stored.
        shared_phones: Phones (as stored) that more than one contact holds.
        ident_ids: ``UF_CRM_IDENT_ID`` → deal id, for deals the sync made earlier.
    """

    contacts: list[int] = field(default_factory=list)
    leads: list[int] = field(default_factory=list)
    deals: list[int] = field(default_factory=list)
    phones: dict[int, list[str]] = field(default_factory=dict)
    shared_phones: list[str] = field(default_factory=list)
    ident_ids: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Person:
    name: str
    second_name: str
    last_name: str


def _person(rng: random.Random) -> _Person:
    sex = rng.choice("MF")
    if rng.random() < 0.65:
        name = rng.choice(_KAZAKH[sex])
        surname = rng.choice(_KAZAKH_SURNAMES + _KAZAKH_SURNAMES_PLAIN)
    else:
        name = rng.choice(_RUSSIAN[sex])
        surname = rng.choice(_RUSSIAN_SURNAMES)
    if sex == "F" and surname.endswith(("ов", "ев", "ин")):
        surname += "а"
    root = rng.choice(_PATRONYMIC_ROOTS)
    second = "" if rng.random() < 0.3 else root + ("ович" if sex == "M" else "овна")
    return _Person(name, second, surname)


def _national_number(rng: random.Random) -> str:
    return rng.choice(_MOBILE_CODES) + f"{rng.randrange(10_000_000):07d}"


def _spell(rng: random.Random, number: str) -> str:
    return rng.choices(_PHONE_SPELLINGS, _PHONE_WEIGHTS)[0](number)


def _email(rng: random.Random, person: _Person) -> str:
    local = f"{person.name}.{person.last_name}".lower().translate(_LATIN)
    return f"{local}{rng.randrange(100)}@{rng.choice(_EMAIL_DOMAINS)}"


def _stamp(portal: Portal, moment: datetime) -> str:
    return portal.iso(moment.timestamp())


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), list(weights.values()))[0]


def populate(
    portal: Portal,
    *,
    seed: int = 42,
    contacts: int = 1000,
    leads: int = 200,
    deals: int = 2000,
    now: datetime | None = None,
    history_days: int = 365,
) -> Population:
    """Fill ``portal`` with existing CRM content.

    Args:
        portal: The portal to seed (its existing records are kept; new ids follow them).
        seed: Seed of every draw.
        contacts: How many contacts to create.
        leads: How many leads.
        deals: How many deals (linked to the contacts when there are any).
        now: The end of the history (default: the portal clock's now).
        history_days: How far back records were created.

    Returns:
        The ids created and the facts tests need about them.
    """
    rng = random.Random(seed)
    end = now or datetime.fromtimestamp(portal.clock(), portal.config.timezone)
    start = end - timedelta(days=history_days)
    span = (end - start).total_seconds()

    def moment() -> datetime:
        return start + timedelta(seconds=rng.randrange(int(span)))

    population = Population()
    numbers: list[str] = []
    holders: dict[str, list[str]] = {}
    for _ in range(contacts):
        person = _person(rng)
        own = [_national_number(rng) for _ in range(rng.choices((0, 1, 2), (5, 85, 10))[0])]
        if numbers and rng.random() < 0.03:
            own[:1] = [rng.choice(numbers)]  # a duplicate contact: someone entered the patient twice
        phones = [_spell(rng, number) for number in own]
        created = moment()
        fields = {
            "NAME": person.name,
            "SECOND_NAME": person.second_name,
            "LAST_NAME": person.last_name,
            "PHONE": [{"VALUE": p, "VALUE_TYPE": rng.choice(("MOBILE", "WORK"))} for p in phones],
            "SOURCE_ID": rng.choice(_SOURCES),
            "DATE_CREATE": _stamp(portal, created),
            "DATE_MODIFY": _stamp(portal, created + timedelta(days=rng.randrange(30))),
        }
        if rng.random() < 0.3:
            fields["EMAIL"] = [{"VALUE": _email(rng, person), "VALUE_TYPE": "WORK"}]
        contact_id = portal.seed("contact", fields)
        population.contacts.append(contact_id)
        population.phones[contact_id] = phones
        for number, phone in zip(own, phones, strict=True):
            holders.setdefault(number, []).append(phone)
            numbers.append(number)
    population.shared_phones = sorted(
        phone for spellings in holders.values() if len(spellings) > 1 for phone in spellings
    )
    _populate_leads(portal, rng, population, leads, moment)
    _populate_deals(portal, rng, population, deals, moment)
    return population


def _populate_leads(
    portal: Portal, rng: random.Random, population: Population, count: int, moment: Callable[[], datetime]
) -> None:
    for _ in range(count):
        status = _weighted(rng, _LEAD_STATUS_WEIGHTS)
        known = bool(population.contacts) and (status == "CONVERTED" or rng.random() < 0.3)
        contact_id = rng.choice(population.contacts) if known else None
        phones = population.phones.get(contact_id, []) if contact_id else []
        person = _person(rng)
        phone = rng.choice(phones) if phones else _spell(rng, _national_number(rng))
        created = moment()
        fields = {
            "TITLE": rng.choice(_LEAD_TITLES),
            "NAME": person.name,
            "LAST_NAME": person.last_name,
            "STATUS_ID": status,
            "SOURCE_ID": rng.choice(_SOURCES),
            "PHONE": [{"VALUE": phone, "VALUE_TYPE": "MOBILE"}],
            "CONTACT_ID": contact_id if status == "CONVERTED" else None,
            "DATE_CREATE": _stamp(portal, created),
            "DATE_MODIFY": _stamp(portal, created + timedelta(hours=rng.randrange(72))),
        }
        population.leads.append(portal.seed("lead", fields))


def _populate_deals(
    portal: Portal, rng: random.Random, population: Population, count: int, moment: Callable[[], datetime]
) -> None:
    receptions = {branch: 1000 * branch for branch in _BRANCHES}
    for _ in range(count):
        clinic = rng.random() < 0.75
        created = moment()
        fields: dict[str, object] = {
            "CATEGORY_ID": CLINIC if clinic else 0,
            "STAGE_ID": _weighted(rng, _CLINIC_STAGE_WEIGHTS if clinic else _DEFAULT_STAGE_WEIGHTS),
            "CONTACT_ID": rng.choice(population.contacts) if population.contacts else None,
            "OPPORTUNITY": rng.choice((0, 5000, 12000, 25000, 48000, 150000, 420000)),
            "DATE_CREATE": _stamp(portal, created),
            "DATE_MODIFY": _stamp(portal, created + timedelta(days=rng.randrange(60))),
            "MOVED_TIME": _stamp(portal, created + timedelta(days=rng.randrange(30))),
            "ASSIGNED_BY_ID": rng.choice((1, PERSON_USER, 9, 11)),
        }
        external = None
        if clinic and rng.random() < 0.6:
            branch = rng.choice(list(_BRANCHES))
            receptions[branch] += rng.randrange(1, 4)
            external = f"F{branch}_{receptions[branch]}"
            doctor, specialty = rng.choice(_DOCTORS)
            visit = created + timedelta(days=rng.randrange(14), hours=9 + rng.randrange(9))
            fields |= {
                "TITLE": f"Приём {visit:%d.%m.%Y %H:%M}",
                "UF_CRM_IDENT_ID": external,
                "UF_CRM_IDENT_RECEPTION_ID": str(receptions[branch]),
                "UF_CRM_IDENT_PATIENT_NUMBER": str(rng.randrange(1, 20000)),
                "UF_CRM_RECEPTION_START": visit.isoformat(),
                "UF_CRM_RECEPTION_END": (visit + timedelta(minutes=rng.choice((30, 45, 60, 90)))).isoformat(),
                "UF_CRM_DOCTOR": doctor,
                "UF_CRM_DOCTOR_SPECIALTY": specialty,
                "UF_CRM_SERVICES": ", ".join(rng.sample(_SERVICES, rng.randrange(1, 4))),
                "UF_CRM_BRANCH": _BRANCHES[branch],
            }
        else:
            fields["TITLE"] = rng.choice(("Консультация", "Повторный приём", "План лечения", "Сделка"))
        deal_id = portal.seed("deal", fields)
        population.deals.append(deal_id)
        if external is not None:
            population.ident_ids[external] = deal_id

"""Fixed reference data and the messy-value formats of the iDent sandbox (names, services, branches).

Pure data and small draw functions shared by the generator (initial load) and the activity (ticks).
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal

#: Five branches (OwnCompanies) over four databases; the first database holds two branches, as a
#: clinic network whose two sites share one iDent server does. IDs restart at 1 in every database.
LAYOUT: tuple[tuple[str, ...], ...] = (
    ("Дентал Люкс Есиль", "Дентал Люкс Сарыарка"),
    ("Дентал Люкс Алматы Абая",),
    ("Дентал Люкс Шымкент",),
    ("Дентал Люкс Караганда",),
)
DATABASES = tuple(f"ident_{number}" for number in range(1, len(LAYOUT) + 1))

ROLE_ADMINISTRATOR, ROLE_DOCTOR, ROLE_DIRECTOR, ROLE_MARKETER = 7, 8, 9, 104
#: ProfessionNames: (ID, NameProfession, ID_Roles).
PROFESSIONS = (
    (1, "Стоматолог-терапевт", ROLE_DOCTOR),
    (2, "Стоматолог-хирург", ROLE_DOCTOR),
    (3, "Стоматолог-ортопед", ROLE_DOCTOR),
    (4, "Ортодонт", ROLE_DOCTOR),
    (5, "Гигиенист", ROLE_DOCTOR),
    (6, "Администратор", ROLE_ADMINISTRATOR),
    (7, "Директор", ROLE_DIRECTOR),
    (8, "Маркетолог", ROLE_MARKETER),
)
DOCTOR_PROFESSIONS = tuple(row[0] for row in PROFESSIONS if row[2] == ROLE_DOCTOR)
CANCEL_REASONS = (
    (1, "Пациент отменил"),
    (2, "Пациент не пришёл"),
    (3, "Болезнь врача"),
    (4, "Перенос по просьбе пациента"),
    (5, "Ошибка записи"),
)
PLAN_STAGES = ((1, "Санация", 1), (2, "Лечение", 2), (3, "Протезирование", 3))
#: ServiceItems with their base price (tenge); each database scales the prices by its own factor.
SERVICES = (
    ("Консультация стоматолога", 5000),
    ("Осмотр и составление плана лечения", 8000),
    ("Профессиональная гигиена полости рта", 25000),
    ("Лечение кариеса (1 поверхность)", 22000),
    ("Лечение кариеса (2 поверхности)", 30000),
    ("Лечение пульпита, 1 канал", 35000),
    ("Лечение пульпита, 3 канала", 70000),
    ("Пломба светоотверждаемая", 18000),
    ("Анестезия инфильтрационная", 3500),
    ("Прицельный снимок", 3000),
    ("Ортопантомограмма", 9000),
    ("Удаление зуба простое", 15000),
    ("Удаление зуба мудрости", 45000),
    ("Имплантат Osstem", 250000),
    ("Коронка металлокерамическая", 90000),
    ("Коронка из диоксида циркония", 160000),
    ("Отбеливание ZOOM", 120000),
    ("Брекет-система (одна челюсть)", 350000),
)
#: TreatmentPlanElements catalogue: (parent index or None, name, index into SERVICES or None).
PLAN_ELEMENTS = (
    (None, "Терапия", None),
    (0, "Лечение кариеса", 3),
    (0, "Лечение пульпита", 5),
    (0, "Пломбирование", 7),
    (None, "Хирургия", None),
    (4, "Удаление", 11),
    (4, "Имплантация", 13),
    (None, "Ортопедия", None),
    (7, "Коронка МК", 14),
    (7, "Коронка цирконий", 15),
)
MALE_NAMES = ("Алексей", "Айдар", "Ерлан", "Дмитрий", "Нурлан", "Сергей", "Арман", "Тимур", "Иван", "Данияр")
FEMALE_NAMES = ("Анна", "Айгерим", "Елена", "Динара", "Мария", "Асель", "Ольга", "Жанар", "Наталья", "Камила")
SURNAMES = ("Иванов", "Ахметов", "Смирнов", "Сулейменов", "Ким", "Петров", "Касымов", "Кузнецов", "Жумабаев",
            "Попов", "Омаров", "Волков", "Нургалиев", "Соколов", "Искаков", "Лебедев")  # fmt: skip
PATRONYMICS_M = ("Сергеевич", "Ерланович", "Александрович", "Нурланович", "Викторович", "Маратович")
PATRONYMICS_F = ("Сергеевна", "Ерлановна", "Александровна", "Нурлановна", "Викторовна", "Маратовна")
COMMENTS = ("", "Первичный осмотр", "Болит зуб 36", "Контроль после лечения", "Чистка", "Снятие швов",
            "По направлению", "Перезвонить накануне")  # fmt: skip

CENT = Decimal("0.01")


def person_name(rng: random.Random) -> tuple[str, str, str | None]:
    """(Surname, Name, Patronymic) with the gender agreed; Kazakh/Korean surnames keep their form."""
    female = rng.random() < 0.55
    surname = rng.choice(SURNAMES)
    if female:
        if surname.endswith(("ов", "ев", "ин")):
            surname += "а"
        return surname, rng.choice(FEMALE_NAMES), rng.choice(PATRONYMICS_F) if rng.random() < 0.85 else None
    return surname, rng.choice(MALE_NAMES), rng.choice(PATRONYMICS_M) if rng.random() < 0.85 else None


def messy_phone(rng: random.Random) -> str | None:
    """A Kazakh mobile number as clinic staff type it: spaced, bracketed, bare, invalid, empty or NULL."""
    operator = rng.choice(("701", "702", "705", "707", "747", "771", "775", "778"))
    number = f"{rng.randrange(10**7):07d}"
    formats = (
        (0.30, f"8 {operator} {number[:3]}-{number[3:5]}-{number[5:]}"),
        (0.25, f"+7({operator}){number}"),
        (0.20, f"8{operator}{number}"),
        (0.10, f"+7 {operator} {number[:3]} {number[3:5]} {number[5:]}"),
        (0.05, number[:5]),  # invalid: digits lost
        (0.07, ""),
    )
    draw = rng.random()
    for weight, value in formats:
        if draw < weight:
            return value
        draw -= weight
    return None


def messy_birthday(rng: random.Random, today: date) -> str | None:
    """Persons.Birthday is a string: ``dd.mm.yyyy``, ``yyyy-mm-dd``, empty, or NULL."""
    born = today - timedelta(days=rng.randrange(5 * 365, 80 * 365))
    draw = rng.random()
    if draw < 0.6:
        return born.strftime("%d.%m.%Y")
    if draw < 0.85:
        return born.isoformat()
    return "" if draw < 0.97 else None


def at_ms(moment: datetime) -> datetime:
    """``moment`` at SQL Server datetime-like millisecond precision."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)

"""Deterministic clinic data for the iDent sandbox, and its load into the four databases.

``generate(seed, scale, now)`` is pure: the same arguments give the same rows. It draws a network of five
branches over four databases (:data:`~elt_platform.sandbox.ident.catalog.LAYOUT`): staff (Persons +
Staffs + Items → ProfessionNames), chairs, patients with messy phones and birthdays, receptions through
their life cycle (scheduled → arrived → ended → check issued; cancelled, rescheduled, no-shows), bills
with lines, treatment plans, payments. ``load(conn_strings, seed, scale, now)`` creates the ``dbo``
schema in each database and bulk-copies the rows (COPY through psycopg: ~50× faster than ODBC inserts),
then numbers ``Receptions.RowVersion`` in order of each row's last change, as SQL Server's would be.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from elt_platform.sandbox.ident import catalog
from elt_platform.sandbox.ident.catalog import at_ms

SCHEMA_SQL = Path(__file__).with_name("schema.sql")
#: How far back the history goes and how far ahead bookings reach.
HISTORY_DAYS, BOOKING_DAYS = 120, 14
#: Receptions per branch per working day at scale 1.
RECEPTIONS_PER_DAY = 8
#: When a bulk job touched old cancelled receptions (S1 shows such a DateTimeChanged years after the visit).
BULK_TOUCH_AGO = timedelta(days=20, hours=-20, minutes=-12, seconds=-56.433)


@dataclass
class ClinicDatabase:
    """The rows of one iDent database: ``tables[name]`` is a list of ``{column: value}``."""

    index: int
    branches: dict[int, str]
    tables: dict[str, list[dict]] = field(default_factory=dict)

    def add(self, table: str, row: dict) -> dict:
        self.tables.setdefault(table, []).append(row)
        return row


def generate(seed: int = 1, scale: float = 1.0, now: datetime | None = None) -> list[ClinicDatabase]:
    """Draw every database's rows.

    Args:
        seed: the seed; each database draws from its own ``Random(f"{seed}:{index}")``.
        scale: 1.0 ≈ 800 receptions and 150 patients per branch; the counts scale linearly.
        now: the clinics' local wall-clock "now" (naive); history ends here, bookings reach 14 days ahead.

    Returns:
        One :class:`ClinicDatabase` per entry of ``catalog.LAYOUT``, in order.
    """
    now = at_ms(now or datetime(2024, 7, 1, 12, 0))
    return [
        _Clinic(index, names, random.Random(f"{seed}:{index}"), scale, now).build()
        for index, names in enumerate(catalog.LAYOUT)
    ]


class _Clinic:
    """Builds one database; ``rng`` draws happen in a fixed order, so output depends only on the inputs."""

    def __init__(self, index: int, names: tuple[str, ...], rng: random.Random, scale: float, now: datetime):
        self.rng, self.scale, self.now = rng, scale, now
        self.start = datetime.combine(now.date() - timedelta(days=HISTORY_DAYS), time())
        self.db = ClinicDatabase(index, dict(enumerate(names, start=1)))
        self.person_id = 0
        self.doctors: dict[int, list[int]] = {}  # branch → doctor person ids
        self.admins: dict[int, list[int]] = {}
        self.chairs: dict[int, list[int]] = {}
        self.patients: dict[int, list[int]] = {}
        self.prices: list[tuple[int, Decimal]] = []  # (ServiceItemPrices.ID, Price)
        self.element_prices: dict[int, int] = {}  # TreatmentPlanElements.ID → ServiceItemPrices.ID

    def build(self) -> ClinicDatabase:
        self._references()
        self._branches()
        self._staff()
        self._patients()
        receptions = self._receptions()
        plans = self._plans(receptions)
        self._orders(receptions, plans)
        return self.db

    # -- reference data ---------------------------------------------------------------------------
    def _references(self) -> None:
        db, since = self.db, self.start - timedelta(days=700)
        for ident, name, role in catalog.PROFESSIONS:
            db.add(
                "ProfessionNames", {"ID": ident, "NameProfession": name, "ID_Roles": role, "Archive": False}
            )
        for ident, name in catalog.CANCEL_REASONS:
            db.add("ReceptionCancelReasons", {"ID": ident, "Name": name, "Archive": False})
        for ident, name, order in catalog.PLAN_STAGES:
            db.add("TreatmentPlanStages", {"ID": ident, "Name": name, "Order": order})
        factor = Decimal(str(round(self.rng.uniform(0.85, 1.25), 2)))
        for ident, (name, base) in enumerate(catalog.SERVICES, start=1):
            price = (Decimal(base) * factor).quantize(Decimal("100"))
            db.add("ServiceItems", {"ID": ident, "Name": name, "DateTimeAdded": since})
            db.add(
                "ServiceItemPrices",
                {"ID": ident, "ID_ServiceItems": ident, "Price": price, "DateTimeAdded": since},
            )
            self.prices.append((ident, price))
        for ident, (parent, name, service) in enumerate(catalog.PLAN_ELEMENTS, start=1):
            element_price: Decimal | None = None if service is None else self.prices[service][1]
            db.add("TreatmentPlanElements", {
                "ID": ident, "ID_TreatmentPlanElementsParent": None if parent is None else parent + 1,
                "Name": name, "IsArchive": False, "TreatmentStage": 1 if parent in (None, 0) else 2,
                "TreatmentCode": f"T{ident:03d}", "Order": ident, "Price": element_price,
                "DateTimeAdded": since,
            })  # fmt: skip
            if service is not None:
                self.element_prices[ident] = self.prices[service][0]

    def _branches(self) -> None:
        chair = 0
        for branch, name in self.db.branches.items():
            self.db.add("OwnCompanies", {"ID": branch, "Name": name, "Archive": False})
            self.chairs[branch] = []
            for number in range(1, self.rng.randint(3, 4) + 1):
                chair += 1
                self.db.add("Armchairs", {
                    "ID": chair, "NameArmchair": f"Кресло {number}", "ID_OwnCompanies": branch,
                    "Archive": False,
                })  # fmt: skip
                self.chairs[branch].append(chair)

    # -- people -----------------------------------------------------------------------------------
    def _person(self, added: datetime, *, patient: bool) -> int:
        self.person_id += 1
        surname, name, patronymic = catalog.person_name(self.rng)
        self.db.add("Persons", {
            "ID": self.person_id, "Surname": surname, "Name": name, "Patronymic": patronymic,
            "Birthday": catalog.messy_birthday(self.rng, added.date()) if patient else "",
            "MobilePhone": catalog.messy_phone(self.rng), "DateTimeAdded": added, "DateTimeChanged": added,
        })  # fmt: skip
        return self.person_id

    def _staff(self) -> None:
        hired = self.start - timedelta(days=400)
        item = 0

        def hire(professions: list[int], archived: bool = False) -> int:
            nonlocal item
            person = self._person(hired, patient=False)
            self.db.add("Staffs", {"ID_Persons": person, "Archive": archived, "DateTimeAdded": hired})
            for profession in professions:
                item += 1
                self.db.add("Items", {"ID": item, "ID_Staffs": person, "ID_ProfessionNames": profession})
            return person

        director = hire([7, 1])  # the clinic owner still treats patients
        for branch in self.db.branches:
            count = max(3, round(4 * self.scale))
            self.doctors[branch] = [
                hire(self.rng.sample(catalog.DOCTOR_PROFESSIONS, self.rng.choice((1, 1, 2))))
                for _ in range(count)
            ]
            self.admins[branch] = [hire([6]) for _ in range(2)]
        first = next(iter(self.db.branches))
        self.doctors[first].append(director)
        self.doctors[first].append(hire([2], archived=True))  # dismissed: has history, no new bookings
        if len(self.db.branches) > 1:  # one doctor works at both sites of a shared database
            for branch in list(self.db.branches)[1:]:
                self.doctors[branch].append(self.doctors[first][0])
        hire([8])

    def _patients(self) -> None:
        for branch in self.db.branches:
            count = max(10, round(150 * self.scale))
            self.patients[branch] = []
            for _ in range(count):
                added = at_ms(self.start - timedelta(days=self.rng.uniform(0, 700)))
                person = self._person(added, patient=True)
                card = self.rng.choice((str(person + 1000), f"p{person}", f"{person:05d}"))
                self.db.add("Patients", {
                    "ID_Persons": person, "MinStatus": 0, "InitialBalance": Decimal(0),
                    "InitialTreatmentSum": Decimal(0), "CardNumber": card, "PatientNumber": card,
                    "ID_Staffs": self.rng.choice(self.admins[branch]),
                    "ConformToSending": self.rng.random() < 0.8, "SMSRejection": self.rng.random() < 0.1,
                    "BillIsNecessary": False, "EGISZRejection": False,
                    "Status": self.rng.choice((1, 1, 1, 3)), "DateTimeChanged": added,
                    "ID_InfoSources": self.rng.choice((None, 1, 2, 3, 4)),
                })  # fmt: skip
                self.patients[branch].append(person)

    # -- receptions -------------------------------------------------------------------------------
    def _receptions(self) -> list[dict]:
        drafts: list[dict] = []
        day = self.start.date()
        last = self.now.date() + timedelta(days=BOOKING_DAYS)
        while day <= last:
            if day.weekday() != 6:  # closed on Sundays
                for branch in self.db.branches:
                    for _ in range(self._count(RECEPTIONS_PER_DAY * self.scale)):
                        drafts.append(self._draft(branch, day))
            day += timedelta(days=1)
        for draft in list(drafts):
            if draft.get("ReceptionCanceled") and self.rng.random() < 0.4:
                drafts.append(self._transfer(draft))
        drafts.sort(key=lambda row: (row["DateTimeAdded"], row["PlanStart"]))
        ids = {id(row): number for number, row in enumerate(drafts, start=1)}
        for row in drafts:
            row["ID"] = ids[id(row)]
            origin = row.pop("_from", None)
            row["ID_ReceptionsTransferFrom"] = None if origin is None else ids[id(origin)]
            self.db.add("Receptions", row)
        return drafts

    def _count(self, mean: float) -> int:
        return max(0, round(self.rng.gauss(mean, mean / 4)))

    def _draft(self, branch: int, day: date, patient: int | None = None, doctor: int | None = None) -> dict:
        rng = self.rng
        doctors = [
            d
            for d in self.doctors[branch]
            if d != self._archived_doctor() or day < self.now.date() - timedelta(days=60)
        ]
        start = datetime.combine(day, time(9)) + timedelta(minutes=15 * rng.randrange(40))
        added = at_ms(start - timedelta(hours=rng.uniform(0.5, 21 * 24)))
        admin = rng.choice(self.admins[branch])
        row = {
            "ID_Patients": patient or rng.choice(self.patients[branch]),
            "ID_StaffsReceptionAdded": admin, "ReceptionAdded": added,
            "Comment": rng.choice(catalog.COMMENTS), "PlanStart": start,
            "PlanEnd": start + timedelta(minutes=rng.choice((30, 30, 45, 60, 60, 90))),
            "ID_Staffs": doctor or rng.choice(doctors), "ID_Armchairs": rng.choice(self.chairs[branch]),
            "NeedHandReminder": False, "IsNotified": False,
            "ID_AppointmentSources": rng.choice((None, None, 1, 2, 3)),
            "ID_StaffsAdded": admin, "DateTimeAdded": added,
            "ID_StaffsChanged": None, "DateTimeChanged": None,
            "_branch": branch,
        }  # fmt: skip
        if rng.random() < 0.6 and start - timedelta(days=1) > added:
            notified = at_ms(start - timedelta(days=1, minutes=rng.uniform(0, 120)))
            if notified <= self.now:
                row.update(IsNotified=True, DateTimeNotified=notified)
        self._live(row)
        return row

    def _archived_doctor(self) -> int:
        return self.doctors[next(iter(self.db.branches))][-1]

    def _live(self, row: dict) -> None:
        """Play the reception's life up to ``now``: cancel, no-show, or arrive → start → end → check."""
        rng, now = self.rng, self.now
        start, end, added = row["PlanStart"], row["PlanEnd"], row["DateTimeAdded"]
        draw = rng.random()
        if draw < 0.12:
            cancelled = at_ms(added + (min(start, now) - added) * rng.uniform(0.1, 0.95))
            if cancelled > added:
                self._cancel(row, cancelled)
                return
        if start > now or draw < 0.17:  # future, or a no-show left as booked
            return
        appeared = at_ms(start - timedelta(minutes=rng.uniform(0, 15)))
        started = at_ms(start + timedelta(minutes=rng.uniform(0, 10)))
        ended = at_ms(started + (end - start) * rng.uniform(0.8, 1.2))
        row.update(PatientAppeared=appeared, ReceptionStarted=started)
        self._changed(row, started)
        if ended > now:
            return
        row["ReceptionEnded"] = ended
        self._changed(row, ended)
        if rng.random() < 0.85:
            checked = at_ms(ended + timedelta(minutes=rng.uniform(1, 10)))
            if checked <= now:
                row["CheckIssued"] = checked
                self._changed(row, checked)

    def _cancel(self, row: dict, when: datetime) -> None:
        staff = self.rng.choice(self.admins[row["_branch"]])
        reason = self.rng.choice(catalog.CANCEL_REASONS)[0]
        row.update(ReceptionCanceled=when, ID_ReceptionCancelReasons=reason, ID_StaffsReceptionCanceled=staff)
        if self.rng.random() < 0.3:
            row["CancelReasonComment"] = self.rng.choice(("Перезвонит сам", "Уехал", "Заболел", "Дорого"))
        row.update(ID_StaffsChanged=staff, DateTimeChanged=when)
        if when < self.now - timedelta(days=30) and self.rng.random() < 0.1:
            row["DateTimeChanged"] = at_ms(self.now - BULK_TOUCH_AGO)  # the bulk touch noise of S1

    def _changed(self, row: dict, when: datetime) -> None:
        row.update(ID_StaffsChanged=row["ID_Staffs"], DateTimeChanged=when)

    def _transfer(self, cancelled: dict) -> dict:
        """The booking that replaces a cancelled one (``ID_ReceptionsTransferFrom``), made at cancellation."""
        day = cancelled["PlanStart"].date() + timedelta(days=self.rng.randint(1, 10))
        if day.weekday() == 6:
            day += timedelta(days=1)
        row = self._draft(cancelled["_branch"], day, cancelled["ID_Patients"], cancelled["ID_Staffs"])
        moment = cancelled["ReceptionCanceled"]
        row.update(ReceptionAdded=moment, DateTimeAdded=moment, _from=cancelled)
        if row["DateTimeChanged"] is not None and row["DateTimeChanged"] < moment:
            row["DateTimeChanged"] = moment
        return row

    # -- plans, bills, payments -------------------------------------------------------------------
    def _plans(self, receptions: list[dict]) -> dict[int, list[dict]]:
        """Treatment plans drawn at a quarter of first completed visits; patient → open plan lines."""
        open_lines: dict[int, list[dict]] = {}
        plan_id = relation_id = 0
        seen: set[int] = set()
        for row in sorted(receptions, key=lambda r: r["PlanStart"]):
            patient = row["ID_Patients"]
            if row.get("ReceptionEnded") is None or patient in seen:
                continue
            seen.add(patient)
            if self.rng.random() >= 0.25:
                continue
            plan_id += 1
            created = row["ReceptionEnded"]
            self.db.add("TreatmentPlans", {
                "ID": plan_id, "ID_StaffsCreated": row["ID_Staffs"], "DateTimeCreated": created,
                "ID_Patients": patient, "Name": f"План лечения №{plan_id}", "ID_Staffs": row["ID_Staffs"],
                "ActualFrom": created, "UseOrderDiscounts": False, "RoundLength": 0, "IsActive": True,
                "ID_StaffsAdded": row["ID_Staffs"], "DateTimeAdded": created,
            })  # fmt: skip
            for element in self.rng.sample(sorted(self.element_prices), self.rng.randint(2, 5)):
                relation_id += 1
                line = self.db.add("TreatmentPlanElementRelations", {
                    "ID": relation_id, "ID_TreatmentPlans": plan_id,
                    "ID_TreatmentPlanStages": self.rng.choice(catalog.PLAN_STAGES)[0],
                    "ID_TreatmentPlanElements": element, "ID_ServicePrices": self.element_prices[element],
                    "TeethLong": 1 << self.rng.randrange(32), "DiscountSum": Decimal(0),
                    "ID_StaffsAdded": row["ID_Staffs"], "DateTimeAdded": created,
                })  # fmt: skip
                open_lines.setdefault(patient, []).append(line)
        return open_lines

    def _orders(self, receptions: list[dict], plans: dict[int, list[dict]]) -> None:
        finished = [row for row in receptions if row.get("ReceptionEnded")]
        finished.sort(key=lambda r: r["ReceptionEnded"])
        line_id = payment_id = 0
        for order_id, row in enumerate(finished, start=1):
            branch, formed = row["_branch"], row.get("CheckIssued")
            if formed is None and self.rng.random() < 0.5:
                continue  # ended without a bill yet
            self.db.add("Orders", {
                "ID": order_id, "DateTimeOrder": row["ReceptionStarted"],
                "ID_OwnCompanies": None if self.rng.random() < 0.05 else branch,  # S4 falls back to the chair
                "ID_Receptions": row["ID"], "ID_Patients": row["ID_Patients"], "ID_Staffs": row["ID_Staffs"],
                "DateTimeBillFormed": formed, "DateTimeBill": formed, "IsBillFormed": formed is not None,
                "RoundLength": 0, "ID_ReceptionsForUnique": row["ID"],
                "ID_StaffsAdded": row["ID_Staffs"], "DateTimeAdded": row["ReceptionStarted"],
                "ID_StaffsChanged": row["ID_Staffs"], "DateTimeChanged": formed or row["ReceptionEnded"],
            })  # fmt: skip
            total = Decimal(0)
            for line in bill_lines(self.rng, self.prices, plans.get(row["ID_Patients"], [])):
                line_id += 1
                line.update(ID=line_id, ID_Orders=order_id, ID_StaffsAdded=row["ID_Staffs"],
                            DateTimeAdded=row["ReceptionEnded"])  # fmt: skip
                self.db.add("OrderServiceRelation", line)
                total += line.pop("_amount")
            if formed is None:
                continue
            for moment, amount in payment_plan(self.rng, total, formed, self.now):
                payment_id += 1
                self.db.add("PaymentsIn", {
                    "ID": payment_id, "DateTimePayment": moment, "ID_OwnCompanies": branch,
                    "ID_Patients": row["ID_Patients"], "ID_CashDescs": self.rng.choice((1, 2, 2)),
                    "ID_Staffs": self.rng.choice(self.admins[branch]), "Payment": amount,
                    "ID_StaffsAdded": row["ID_StaffsAdded"], "DateTimeAdded": moment,
                    "DatePayment": moment.date(),
                })  # fmt: skip
        for row in receptions:
            row.pop("_branch", None)


def bill_lines(rng: random.Random, prices: list[tuple[int, Decimal]], plan_lines: list[dict]) -> list[dict]:
    """1–4 OrderServiceRelation rows without ID/order/audit; ``_amount`` = CountService × Price − DiscountSum.

    An open treatment-plan line of the patient is executed now and then (and removed from ``plan_lines``).
    """
    price_of = dict(prices)
    lines = []
    for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
        plan = plan_lines.pop(0) if plan_lines and rng.random() < 0.5 else None
        price_id = plan["ID_ServicePrices"] if plan else rng.choice(prices)[0]
        count = rng.choice((1, 1, 1, 1, 2, 3))
        gross = price_of[price_id] * count
        discount = (gross * Decimal("0.1")).quantize(catalog.CENT) if rng.random() < 0.2 else Decimal(0)
        lines.append({
            "ID_TreatmentPlans": plan["ID_TreatmentPlans"] if plan else None,
            "ID_TreatmentPlanElementRelations": plan["ID"] if plan else None,
            "ID_ServicePrices": price_id, "CountService": count, "TeethLong": 0, "DiscountSum": discount,
            "DeferredDiscountSum": Decimal(0), "IsWarranty": False, "_amount": gross - discount,
        })  # fmt: skip
    return lines


def payment_plan(
    rng: random.Random, total: Decimal, formed: datetime, now: datetime
) -> list[tuple[datetime, Decimal]]:
    """How a formed bill is paid: mostly at once, sometimes in two parts, sometimes not (yet)."""
    draw = rng.random()
    first = at_ms(formed + timedelta(minutes=rng.uniform(1, 5)))
    if draw < 0.05 or first > now or total <= 0:
        return []
    if draw < 0.15:
        half = (total / 2).quantize(catalog.CENT)
        later = at_ms(first + timedelta(days=rng.uniform(1, 30)))
        return [(first, half)] + ([(later, total - half)] if later <= now else [])
    return [(first, total)]


def load(
    conn_strings: list[str], seed: int = 1, scale: float = 1.0, now: datetime | None = None
) -> list[ClinicDatabase]:
    """(Re)create ``dbo`` in each database and fill it with :func:`generate`'s rows.

    Args:
        conn_strings: one ODBC (``Server=…;Port=…;Database=…;Uid=…;Pwd=…``) or libpq connection string per
            entry of ``catalog.LAYOUT`` (4).
        seed, scale, now: as :func:`generate`.

    Returns:
        What was loaded (for tests' expectations).

    Raises:
        ValueError: not exactly one connection string per database of the layout.
    """
    if len(conn_strings) != len(catalog.LAYOUT):
        raise ValueError(f"{len(catalog.LAYOUT)} databases expected, got {len(conn_strings)}")
    import psycopg

    databases = generate(seed, scale, now)
    for conn_string, database in zip(conn_strings, databases, strict=True):
        with psycopg.connect(libpq(conn_string)) as conn:
            conn.execute("DROP SCHEMA IF EXISTS dbo CASCADE")
            conn.execute(SCHEMA_SQL.read_text())
            for table, rows in database.tables.items():
                columns = list(dict.fromkeys(column for row in rows for column in row))
                names = ", ".join(f'"{column}"' for column in columns)
                with conn.cursor().copy(f'COPY dbo."{table}" ({names}) FROM STDIN') as copy:
                    for row in rows:
                        copy.write_row([row.get(column) for column in columns])
            _number_row_versions(conn)
    return databases


def _number_row_versions(conn: Any) -> None:
    """Give loaded receptions RowVersions in order of their last change (as if written over time)."""
    conn.execute('ALTER TABLE dbo."Receptions" DISABLE TRIGGER "Receptions_RowVersion"')
    conn.execute(
        'UPDATE dbo."Receptions" r SET "RowVersion" = n.version FROM ('
        '  SELECT "ID", nextval(\'dbo."__RowVersion"\') AS version FROM ('
        '    SELECT "ID" FROM dbo."Receptions"'
        '    ORDER BY GREATEST("DateTimeAdded", "PatientAppeared", "ReceptionStarted", "ReceptionEnded",'
        '      "CheckIssued", "ReceptionCanceled", "DateTimeChanged"), "ID") ordered'
        ') n WHERE r."ID" = n."ID"'
    )
    conn.execute('ALTER TABLE dbo."Receptions" ENABLE TRIGGER "Receptions_RowVersion"')


def libpq(conn_string: str) -> str:
    """A libpq conninfo for an ODBC connection string of the sandbox (libpq strings pass through)."""
    if ";" not in conn_string:
        return conn_string
    pairs = dict(part.split("=", 1) for part in conn_string.split(";") if "=" in part)
    pairs = {key.strip().lower(): value.strip() for key, value in pairs.items()}
    names = {"server": "host", "port": "port", "database": "dbname", "uid": "user", "pwd": "password"}
    return " ".join(f"{target}={pairs[source]}" for source, target in names.items() if source in pairs)

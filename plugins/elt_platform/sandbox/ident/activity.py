"""The clinic at work: ``tick(conn, now)`` moves one iDent database forward, deterministically.

A tick does what a clinic's staff would between two extracts: patients arrive for due visits, finished
visits get their bill and payment, new bookings come in (sometimes for a new patient), a booking is
cancelled (sometimes moved to another day), a few bookings are edited, and now and then a booking is
deleted outright (iDent lets staff delete a wrongly made reception). Every update goes through SQL over
the given connection, so ``RowVersion`` advances by the trigger and ``DateTimeChanged`` is set to ``now``
as iDent's client does. The result lists the ids per kind of change: the ground truth of the tick.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from elt_platform.sandbox.ident import catalog
from elt_platform.sandbox.ident.catalog import at_ms
from elt_platform.sandbox.ident.generator import bill_lines, payment_plan


@dataclass
class TickResult:
    """Reception ids per kind of change, and the ids of rows added to other tables."""

    now: datetime
    booked: list[int] = field(default_factory=list)
    transferred: list[int] = field(default_factory=list)  # new bookings replacing a cancelled one
    arrived: list[int] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    edited: list[int] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    new_patients: list[int] = field(default_factory=list)
    orders: list[int] = field(default_factory=list)
    payments: list[int] = field(default_factory=list)

    @property
    def inserted(self) -> set[int]:
        """Receptions that did not exist before the tick."""
        return {*self.booked, *self.transferred}

    @property
    def updated(self) -> set[int]:
        """Receptions that existed before and were updated (their RowVersion advanced)."""
        return {*self.arrived, *self.completed, *self.cancelled, *self.edited} - self.inserted


def tick(conn: Any, now: datetime, *, seed: int = 0, delete_probability: float = 0.5) -> TickResult:
    """Apply one step of clinic activity at ``now`` and commit.

    Args:
        conn: a DB-API connection to one sandbox database (pyodbc through psqlODBC; ``?`` parameters).
        now: the local wall-clock time of the tick (naive); ticks are expected in increasing order.
        seed: with ``now`` and the database name, seeds the draws (same state + same args → same tick).
        delete_probability: chance that the tick hard-deletes one booking.

    Returns:
        What changed, by reception id (and the new patients, orders and payments).
    """
    return _Tick(conn, at_ms(now), seed, delete_probability).run()


class _Tick:
    def __init__(self, conn: Any, now: datetime, seed: int, delete_probability: float) -> None:
        self.conn, self.cur, self.now = conn, conn.cursor(), now
        # Seeded by the clinic (its branches), not the database name: a copy of a database ticks alike.
        branches = self._one('SELECT string_agg("Name", \',\' ORDER BY "ID") FROM dbo."OwnCompanies"')[0]
        self.rng = random.Random(f"{seed}:{branches}:{now.isoformat()}")
        self.delete_probability = delete_probability
        self.result = TickResult(now)
        self.touched: set[int] = set()

    def run(self) -> TickResult:
        try:
            self._arrivals()
            self._completions()
            self._bookings()
            self._cancellation()
            self._edits()
            if self.rng.random() < self.delete_probability:
                self._hard_delete()
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.commit()
        return self.result

    # -- SQL helpers ------------------------------------------------------------------------------
    def _rows(self, sql: str, *params: object) -> list:
        self.cur.execute(sql, *params)
        return self.cur.fetchall()

    def _one(self, sql: str, *params: object) -> tuple:
        self.cur.execute(sql, *params)
        return tuple(self.cur.fetchone())

    def _next_id(self, table: str, key: str = "ID") -> int:
        return self._one(f'SELECT COALESCE(MAX("{key}"), 0) + 1 FROM dbo."{table}"')[0]

    def _insert(self, table: str, row: dict) -> None:
        names = ", ".join(f'"{column}"' for column in row)
        marks = ", ".join("?" for _ in row)
        self.cur.execute(f'INSERT INTO dbo."{table}" ({names}) VALUES ({marks})', *row.values())

    def _update(self, ident: int, **values: object) -> None:
        values.setdefault("DateTimeChanged", self.now)
        sets = ", ".join(f'"{column}" = ?' for column in values)
        self.cur.execute(f'UPDATE dbo."Receptions" SET {sets} WHERE "ID" = ?', *values.values(), ident)
        self.touched.add(ident)

    # -- the clinic's day -------------------------------------------------------------------------
    def _arrivals(self) -> None:
        due = self._rows(
            'SELECT "ID", "PlanStart", "ID_Staffs" FROM dbo."Receptions"'
            ' WHERE "PlanStart" <= ? AND "PlanStart" > ?'
            ' AND "PatientAppeared" IS NULL AND "ReceptionCanceled" IS NULL ORDER BY "ID"',
            self.now, self.now - timedelta(hours=12),
        )  # fmt: skip
        for ident, start, doctor in due:
            if self.rng.random() < 0.1:
                continue  # not here (yet)
            appeared = min(self.now, at_ms(start - timedelta(minutes=self.rng.uniform(0, 15))))
            started = min(self.now, at_ms(start + timedelta(minutes=self.rng.uniform(0, 10))))
            self._update(ident, PatientAppeared=appeared, ReceptionStarted=started, ID_StaffsChanged=doctor)
            self.result.arrived.append(ident)

    def _completions(self) -> None:
        due = self._rows(
            'SELECT r."ID", r."ID_Patients", r."ID_Staffs", r."ReceptionStarted", r."PlanEnd",'
            ' a."ID_OwnCompanies"'
            ' FROM dbo."Receptions" r LEFT JOIN dbo."Armchairs" a ON a."ID" = r."ID_Armchairs"'
            ' WHERE r."ReceptionStarted" IS NOT NULL AND r."ReceptionEnded" IS NULL'
            ' AND r."ReceptionCanceled" IS NULL'
            ' AND r."PlanEnd" <= ? ORDER BY r."ID"',
            self.now,
        )  # fmt: skip
        prices = [
            (row[0], Decimal(row[1]))
            for row in self._rows('SELECT "ID", "Price" FROM dbo."ServiceItemPrices" ORDER BY "ID"')
        ]
        for ident, patient, doctor, started, plan_end, branch in due:
            ended = min(self.now, max(started, plan_end))
            checked = min(self.now, at_ms(ended + timedelta(minutes=self.rng.uniform(1, 10))))
            self._update(ident, ReceptionEnded=ended, CheckIssued=checked, ID_StaffsChanged=doctor)
            self.result.completed.append(ident)
            self._bill(ident, patient, doctor, started, ended, checked, branch, prices)

    def _bill(self, reception: int, patient: int, doctor: int, started: datetime, ended: datetime,
              formed: datetime, branch: int | None, prices: list[tuple[int, Decimal]]) -> None:  # fmt: skip
        order = self._next_id("Orders")
        self._insert("Orders", {
            "ID": order, "DateTimeOrder": started, "ID_OwnCompanies": branch, "ID_Receptions": reception,
            "ID_Patients": patient, "ID_Staffs": doctor, "DateTimeBillFormed": formed, "DateTimeBill": formed,
            "IsBillFormed": True, "RoundLength": 0, "ID_ReceptionsForUnique": reception,
            "ID_StaffsAdded": doctor, "DateTimeAdded": started,
            "ID_StaffsChanged": doctor, "DateTimeChanged": formed,
        })  # fmt: skip
        self.result.orders.append(order)
        line_id, total = self._next_id("OrderServiceRelation"), Decimal(0)
        for line in bill_lines(self.rng, prices, []):
            total += line.pop("_amount")
            self._insert("OrderServiceRelation", {
                **line, "ID": line_id, "ID_Orders": order, "ID_StaffsAdded": doctor, "DateTimeAdded": ended,
            })  # fmt: skip
            line_id += 1
        for moment, amount in payment_plan(self.rng, total, formed, self.now):
            payment = self._next_id("PaymentsIn")
            self._insert("PaymentsIn", {
                "ID": payment, "DateTimePayment": moment, "ID_OwnCompanies": branch, "ID_Patients": patient,
                "ID_CashDescs": self.rng.choice((1, 2)), "ID_Staffs": doctor, "Payment": amount,
                "ID_StaffsAdded": doctor, "DateTimeAdded": moment, "DatePayment": moment.date(),
            })  # fmt: skip
            self.result.payments.append(payment)

    def _bookings(self) -> None:
        for _ in range(self.rng.randint(1, 4)):
            chair = self.rng.choice(
                self._rows('SELECT "ID" FROM dbo."Armchairs" WHERE NOT "Archive" ORDER BY "ID"')
            )[0]
            patient = self._new_patient() if self.rng.random() < 0.25 else self._existing_patient()
            self.result.booked.append(self._book(patient, chair, self._doctor(), self._slot()))

    def _book(self, patient: int, chair: int, doctor: int, start: datetime, **extra: object) -> int:
        ident = self._next_id("Receptions")
        admin = self._admin()
        self._insert("Receptions", {
            "ID": ident, "ID_Patients": patient, "ID_StaffsReceptionAdded": admin, "ReceptionAdded": self.now,
            "Comment": self.rng.choice(catalog.COMMENTS), "PlanStart": start,
            "PlanEnd": start + timedelta(minutes=self.rng.choice((30, 45, 60))), "ID_Staffs": doctor,
            "ID_Armchairs": chair, "NeedHandReminder": False, "IsNotified": False,
            "ID_StaffsAdded": admin, "DateTimeAdded": self.now, **extra,
        })  # fmt: skip
        self.touched.add(ident)
        return ident

    def _slot(self) -> datetime:
        day = self.now.date() + timedelta(days=self.rng.randint(1, 14))
        return datetime.combine(day, time(9)) + timedelta(minutes=15 * self.rng.randrange(40))

    def _doctor(self) -> int:
        doctors = self._rows(
            'SELECT DISTINCT s."ID_Persons" FROM dbo."Staffs" s'
            ' JOIN dbo."Items" i ON i."ID_Staffs" = s."ID_Persons"'
            ' JOIN dbo."ProfessionNames" p ON p."ID" = i."ID_ProfessionNames"'
            ' WHERE p."ID_Roles" = ? AND NOT s."Archive" ORDER BY 1',
            catalog.ROLE_DOCTOR,
        )  # fmt: skip
        return self.rng.choice(doctors)[0]

    def _admin(self) -> int:
        admins = self._rows(
            'SELECT i."ID_Staffs" FROM dbo."Items" i'
            ' JOIN dbo."ProfessionNames" p ON p."ID" = i."ID_ProfessionNames"'
            ' WHERE p."ID_Roles" = ? ORDER BY 1',
            catalog.ROLE_ADMINISTRATOR,
        )  # fmt: skip
        return self.rng.choice(admins)[0]

    def _existing_patient(self) -> int:
        count = self._one('SELECT COUNT(*) FROM dbo."Patients"')[0]
        return self._one('SELECT "ID_Persons" FROM dbo."Patients" ORDER BY 1 OFFSET ? LIMIT 1',
                         self.rng.randrange(count))[0]  # fmt: skip

    def _new_patient(self) -> int:
        person = self._next_id("Persons")
        surname, name, patronymic = catalog.person_name(self.rng)
        self._insert("Persons", {
            "ID": person, "Surname": surname, "Name": name, "Patronymic": patronymic,
            "Birthday": catalog.messy_birthday(self.rng, self.now.date()),
            "MobilePhone": catalog.messy_phone(self.rng),
            "DateTimeAdded": self.now, "DateTimeChanged": self.now,
        })  # fmt: skip
        self._insert("Patients", {
            "ID_Persons": person, "MinStatus": 0,
            "InitialBalance": Decimal(0), "InitialTreatmentSum": Decimal(0),
            "CardNumber": str(person + 1000), "PatientNumber": str(person + 1000), "ConformToSending": True,
            "SMSRejection": False, "BillIsNecessary": False, "EGISZRejection": False, "Status": 1,
            "DateTimeChanged": self.now,
        })  # fmt: skip
        self.result.new_patients.append(person)
        return person

    def _scheduled(self) -> list:
        """Future bookings nobody has acted on, not touched in this tick (by id)."""
        rows = self._rows(
            'SELECT "ID", "ID_Patients", "ID_Armchairs", "ID_Staffs", "PlanStart" FROM dbo."Receptions"'
            ' WHERE "PlanStart" > ? AND "PatientAppeared" IS NULL AND "ReceptionCanceled" IS NULL'
            ' ORDER BY "ID"',
            self.now,
        )  # fmt: skip
        return [row for row in rows if row[0] not in self.touched]

    def _cancellation(self) -> None:
        scheduled = self._scheduled()
        if not scheduled:
            return
        ident, patient, chair, doctor, start = self.rng.choice(scheduled)
        admin = self._admin()
        self._update(
            ident, ReceptionCanceled=self.now,
            ID_ReceptionCancelReasons=self.rng.choice(catalog.CANCEL_REASONS)[0],
            ID_StaffsReceptionCanceled=admin, ID_StaffsChanged=admin,
        )  # fmt: skip
        self.result.cancelled.append(ident)
        if self.rng.random() < 0.4:
            moved = self._book(patient, chair, doctor, start + timedelta(days=self.rng.randint(1, 7)),
                               ID_ReceptionsTransferFrom=ident)  # fmt: skip
            self.result.transferred.append(moved)

    def _edits(self) -> None:
        scheduled = self._scheduled()
        for ident, _, _, _, start in self.rng.sample(scheduled, min(len(scheduled), self.rng.randint(1, 2))):
            if self.rng.random() < 0.5:
                shift = timedelta(minutes=15 * self.rng.choice((-2, -1, 1, 2, 4)))
                self._update(ident, PlanStart=start + shift, Comment="Время изменено")
            else:
                self._update(ident, Comment=self.rng.choice(catalog.COMMENTS[1:]))
            self.result.edited.append(ident)

    def _hard_delete(self) -> None:
        billed = {row[0] for row in self._rows('SELECT DISTINCT "ID_Receptions" FROM dbo."Orders"')}
        candidates = [row for row in self._scheduled() if row[0] not in billed]
        if not candidates:
            return
        ident = self.rng.choice(candidates)[0]
        self.cur.execute('DELETE FROM dbo."Receptions" WHERE "ID" = ?', ident)
        self.result.deleted.append(ident)

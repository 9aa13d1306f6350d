"""Deterministic synthetic Alaqan data: a stable roster of valid IINs and each day's visits.

Pure and cheap: ``day(d)`` seeds its own ``random.Random`` from ``(seed, d)``, so a day's payload does
not depend on which other days were generated, and 5,000 employees take a few tens of milliseconds.
The quirks of the real feed are reproduced on purpose: events out of time order, duplicated events,
missing exits, and a low rate of malformed records (see :class:`AlaqanDataset`).
"""

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from elt_platform.sources.alaqan.iin import check_digit

_HOUR = 3600
_MINUTE = 60

#: Kinds of malformed record the generator injects, with the parser's quarantine code (None = valid shape).
MALFORMED_KINDS = {
    "unknown_event": "unknown_event",  # "enter" instead of "entry"
    "bad_time": "bad_time",  # "25:61:00"
    "short_iin_key": "bad_iin_key",  # the IIN key cut to 11 digits
    "bad_check_digit": None,  # 12 digits, wrong check digit: passes parsing, silver rejects it
}
_MALFORMED_ORDER = tuple(MALFORMED_KINDS)


@dataclass(frozen=True, slots=True)
class EmployeeProfile:
    """One person's habits; times are seconds after midnight.

    Attributes:
        iin: A valid Kazakhstan IIN.
        weekday_attendance: Probability of coming on a Monday-Friday.
        weekend_attendance: Probability of coming on a Saturday/Sunday.
        arrival: Mean entry time.
        departure: Mean exit time.
        spread: Half-width of the (triangular) variation around both means.
        lunch_rate: Probability of a lunch exit/entry pair on a day present.
        late_night_rate: Probability of staying until 20:00-23:30 on a day present.
    """

    iin: str
    weekday_attendance: float
    weekend_attendance: float
    arrival: int
    departure: int
    spread: int
    lunch_rate: float
    late_night_rate: float


# Two small lookup tables make "HH:MM:SS" one concatenation: f-string formatting was half of day()'s time.
_HH_MM = tuple(f"{minute // 60:02d}:{minute % 60:02d}" for minute in range(24 * 60))
_COLON_SS = tuple(f":{second:02d}" for second in range(60))


def _make_iin(rng: random.Random) -> str | None:
    birth = date(1955, 1, 1) + timedelta(days=int(rng.random() * 18_250))  # 1955 .. ~2004
    female = rng.random() < 0.5
    century_digit = (3 if birth.year < 2000 else 5) + int(female)
    serial = int(rng.random() * 10_000)
    first_eleven = f"{birth:%y%m%d}{century_digit}{serial:04d}"
    digit = check_digit(first_eleven)
    return None if digit is None else f"{first_eleven}{digit}"


class AlaqanDataset:
    """A deterministic Alaqan population and its daily visits.

    Knobs (all keyword arguments, defaults in brackets):

    * ``seed`` [42], ``employees`` [200]: the roster; the first N employees of a bigger roster with the
      same seed are the same people.
    * ``weekday_attendance`` [0.8], ``weekend_attendance`` [0.05]: mean share of the roster present;
      each employee varies around it.
    * ``lunch_rate`` [0.3]: mean share of present employees with a lunch exit (12:00-13:30) and re-entry.
    * ``late_night_rate`` [0.03]: mean share leaving at 20:00-23:30 instead of ~17:00-20:00.
    * ``missing_exit_rate`` [0.02]: share of present employees whose final exit is missing.
    * ``duplicate_rate`` [0.01]: share whose list repeats one identical event (same event and time).
    * ``malformed_rate`` [0.01]: share of present employees who get one malformed record, one of
      :data:`MALFORMED_KINDS` in equal proportion (three of the four are quarantined by the parser).

    Entries fall at ~08:00-10:15, exits at ~17:00-20:00; every list is shuffled (the API does not sort).
    """

    def __init__(
        self,
        seed: int = 42,
        employees: int = 200,
        *,
        weekday_attendance: float = 0.8,
        weekend_attendance: float = 0.05,
        lunch_rate: float = 0.3,
        late_night_rate: float = 0.03,
        missing_exit_rate: float = 0.02,
        duplicate_rate: float = 0.01,
        malformed_rate: float = 0.01,
    ) -> None:
        """Build the roster (the only work done up front).

        Args:
            seed: Seed of the roster and of every day.
            employees: Roster size.
            weekday_attendance: See the class docstring.
            weekend_attendance: See the class docstring.
            lunch_rate: See the class docstring.
            late_night_rate: See the class docstring.
            missing_exit_rate: See the class docstring.
            duplicate_rate: See the class docstring.
            malformed_rate: See the class docstring.

        Raises:
            ValueError: If ``employees`` is negative.
        """
        if employees < 0:
            raise ValueError(f"employees must be >= 0, got {employees}")
        self.seed = seed
        self.missing_exit_rate = missing_exit_rate
        self.duplicate_rate = duplicate_rate
        self.malformed_rate = malformed_rate
        rng = random.Random(f"alaqan-roster:{seed}")
        seen: set[str] = set()
        profiles: list[EmployeeProfile] = []
        while len(profiles) < employees:
            iin = _make_iin(rng)
            if iin is None or iin in seen:
                continue
            seen.add(iin)
            profiles.append(
                EmployeeProfile(
                    iin=iin,
                    weekday_attendance=min(1.0, max(0.0, weekday_attendance + rng.uniform(-0.15, 0.15))),
                    weekend_attendance=min(1.0, weekend_attendance * rng.uniform(0.0, 2.0)),
                    arrival=int(rng.uniform(8.5, 9.75) * _HOUR),
                    departure=int(rng.uniform(17.5, 19.5) * _HOUR),
                    spread=int(rng.uniform(10, 30) * _MINUTE),
                    lunch_rate=min(1.0, lunch_rate * rng.uniform(0.0, 2.0)),
                    late_night_rate=min(1.0, late_night_rate * rng.uniform(0.0, 2.0)),
                )
            )
        self.profiles: tuple[EmployeeProfile, ...] = tuple(profiles)

    @property
    def employees(self) -> list[str]:
        """The roster's IINs, in roster order."""
        return [profile.iin for profile in self.profiles]

    def day(self, d: date) -> dict[str, list[dict[str, str]]]:
        """Return what ``employees/byDate?date=<d>`` answers in ``data``.

        Args:
            d: The visit date.

        Returns:
            IIN → list of ``{"event": ..., "time": "HH:MM:SS"}`` in shuffled order; only people present
            appear, plus the occasional malformed key. A fresh object on every call.
        """
        rng = random.Random(f"alaqan-day:{self.seed}:{d.toordinal()}")
        rand = rng.random
        weekday = d.weekday() < 5
        missing_exit, duplicate, malformed = self.missing_exit_rate, self.duplicate_rate, self.malformed_rate
        hh_mm, colon_ss = _HH_MM, _COLON_SS
        data: dict[str, list[dict[str, str]]] = {}
        for p in self.profiles:
            if rand() >= (p.weekday_attendance if weekday else p.weekend_attendance):
                continue
            # Sum of two uniforms: a triangular bump around the person's habit, cheap to draw.
            entry = int(p.arrival + (rand() + rand() - 1.0) * p.spread)
            if rand() < p.late_night_rate:
                leave = int(20 * _HOUR + rand() * 3.5 * _HOUR)
            else:
                leave = int(p.departure + (rand() + rand() - 1.0) * p.spread)
            events = [("entry", entry)]
            if rand() < p.lunch_rate:
                lunch_out = int(12 * _HOUR + rand() * 1.5 * _HOUR)
                events += [("exit", lunch_out), ("entry", lunch_out + int((20 + rand() * 50) * _MINUTE))]
            if rand() >= missing_exit:
                events.append(("exit", leave))
            if rand() < duplicate:
                events.append(events[int(rand() * len(events))])
            # Fisher-Yates on rand(): Random.shuffle's integer draws cost more than the rest of the loop.
            for i in range(len(events) - 1, 0, -1):
                j = int(rand() * (i + 1))
                events[i], events[j] = events[j], events[i]
            records = [
                {"event": event, "time": hh_mm[seconds // 60] + colon_ss[seconds % 60]}
                for event, seconds in events
            ]
            data[p.iin] = records
            if rand() < malformed:
                self._inject_malformed(data, p.iin, records, rand)
        return data

    @staticmethod
    def _inject_malformed(
        data: dict[str, list[dict[str, str]]],
        iin: str,
        records: list[dict[str, str]],
        rand: Callable[[], float],
    ) -> None:
        kind = _MALFORMED_ORDER[int(rand() * len(_MALFORMED_ORDER))]
        if kind == "unknown_event":
            records[0]["event"] = "enter"
        elif kind == "bad_time":
            records[0]["time"] = "25:61:00"
        elif kind == "short_iin_key":
            data[iin[:11]] = [dict(records[0])]
        else:
            wrong = (int(iin[11]) + 1 + int(rand() * 9)) % 10
            data[f"{iin[:11]}{wrong}"] = [dict(records[0])]

    def by_iin(self, iin: str, start: date, end: date) -> dict[str, list[dict[str, str]]]:
        """Return what ``employees/byIin`` answers in ``data``: one person's visits over a range.

        Args:
            iin: The person (any key present in the daily payloads).
            start: First date, inclusive.
            end: Last date, inclusive.

        Returns:
            ISO date → that day's records, newest date first (as in the spec's example); days without
            visits are absent; empty when ``start > end``.
        """
        result: dict[str, list[dict[str, str]]] = {}
        d = end
        while d >= start:
            records = self.day(d).get(iin)
            if records:
                result[d.isoformat()] = records
            d -= timedelta(days=1)
        return result

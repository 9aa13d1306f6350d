"""Turn a raw ``employees/byDate`` body into bronze rows and quarantined records; pure, no I/O.

Contract with the bronze writer:

* a body that is unusable as a whole (not JSON, cut short, no ``data`` object) raises
  :class:`~elt_platform.sources.alaqan.errors.AlaqanPayloadError`, so the task fails and the raw body
  already landed by the caller stays for inspection;
* every record in a usable body ends up either in ``rows`` or in ``quarantined`` — nothing is dropped,
  nothing is deduplicated or reordered (silver does that, dbt);
* the IIN check digit is not validated here (silver does), only the 12-digit shape of the key.
"""

import json
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from elt_platform.http.decoding import json_type_name
from elt_platform.sources.alaqan.errors import AlaqanPayloadError
from elt_platform.sources.alaqan.settings import EVENTS

#: Reason codes a quarantined record can carry (the part of ``reason`` before ``": "``). Analysts read them
#: mapped onto one vocabulary in ``silver.alaqan_rejected`` (``dbt/macros/alaqan_rejected.sql``): a new code
#: must be added there too.
QUARANTINE_REASONS = (
    "bad_iin_key",
    "events_not_array",
    "record_not_object",
    "duplicate_keys",
    "missing_keys",
    "extra_keys",
    "unknown_event",
    "bad_time",
)

_IIN_KEY = re.compile(r"[0-9]{12}")
# Strict HH:MM:SS on a 24-hour clock: "9:00:15", "24:00:00" and "23:59:60" are all rejected.
_TIME = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]")
_RECORD_KEYS = frozenset({"event", "time"})
_COMPACT: dict[str, Any] = {"separators": (",", ":"), "ensure_ascii": False}
_DETAIL_LIMIT = 60


@dataclass(frozen=True, slots=True)
class ParsedDay:
    """One byDate response, flattened.

    Attributes:
        visit_date: The day that was requested (the response does not repeat it).
        rows: One dict per valid event, in payload order, with keys ``visit_date`` (date), ``iin`` (str,
            12 digits), ``event`` (``"entry"``/``"exit"``), ``event_time`` (str ``"HH:MM:SS"``) and
            ``raw_json`` (the record's own compact JSON with its IIN first, e.g.
            ``{"iin":"910505350319","event":"entry","time":"09:00:15"}``).
        quarantined: One dict per rejected record with keys ``visit_date`` (date), ``iin`` (the raw JSON key
            as sent, str), ``raw_json`` (``{"iin":<key>,"record":<the offending JSON value>}``) and
            ``reason`` (``"<code>: <detail>"``, code from :data:`QUARANTINE_REASONS`).
    """

    visit_date: date
    rows: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)


class _DuplicateKeys(list):
    """A JSON object whose keys repeat, kept as its ``(key, value)`` pairs so no value is lost."""


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any] | _DuplicateKeys:
    obj = dict(pairs)
    # json.loads silently keeps the last of repeated keys; that would drop a whole IIN's events.
    return obj if len(obj) == len(pairs) else _DuplicateKeys(pairs)


def _json_type(value: Any) -> str:
    # A _DuplicateKeys is a list only in Python: in the payload it was an object.
    return "object" if isinstance(value, _DuplicateKeys) else json_type_name(value)


def _detail(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 3] + "..."


def _record_problem(record: Any) -> str | None:
    if isinstance(record, _DuplicateKeys):
        keys = [key for key, _ in record]
        return f"duplicate_keys: {sorted({key for key in keys if keys.count(key) > 1})}"
    if not isinstance(record, dict):
        return f"record_not_object: {_json_type(record)}"
    present = record.keys()
    if present != _RECORD_KEYS:
        missing = sorted(_RECORD_KEYS - present)
        if missing:
            return f"missing_keys: {missing}"
        return f"extra_keys: {sorted(present - _RECORD_KEYS)}"
    event = record["event"]
    if not isinstance(event, str) or event not in EVENTS:
        return f"unknown_event: {_detail(event)}"
    event_time = record["time"]
    if not isinstance(event_time, str) or not _TIME.fullmatch(event_time):
        return f"bad_time: {_detail(event_time)}"
    return None


def load_data_object(body: bytes, what: str) -> list[tuple[str, Any]]:
    """Decode a response body and return the entries of its ``data`` object.

    Args:
        body: The raw response body.
        what: Names the request in error messages, e.g. ``"byDate 2024-03-01"``.

    Returns:
        The ``(key, value)`` pairs of ``data`` in payload order; repeated keys are all kept.
        ``"data": []`` counts as an empty object, because PHP-style backends encode an empty map as ``[]``.

    Raises:
        AlaqanPayloadError: The body is not JSON (e.g. truncated), not an object, or has no ``data`` object.
    """
    try:
        doc = json.loads(body, object_pairs_hook=_object_pairs)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and UnicodeDecodeError. The body itself is not quoted: PII.
        raise AlaqanPayloadError(
            f"{what}: response body is not valid JSON ({type(exc).__name__}: {exc}); "
            f"{len(body)} bytes received, possibly truncated"
        ) from exc
    if isinstance(doc, _DuplicateKeys):
        raise AlaqanPayloadError(f"{what}: top-level JSON object has duplicate keys")
    if not isinstance(doc, dict):
        raise AlaqanPayloadError(f"{what}: top-level JSON is {_json_type(doc)}, expected an object")
    if "data" not in doc:
        message = doc.get("message")
        hint = f"; message: {_detail(message)}" if message is not None else ""
        raise AlaqanPayloadError(f"{what}: no 'data' key (keys: {sorted(doc)[:10]}){hint}")
    data = doc["data"]
    if isinstance(data, _DuplicateKeys):
        return list(data)
    if isinstance(data, dict):
        return list(data.items())
    if data == []:
        return []
    raise AlaqanPayloadError(f"{what}: 'data' is {_json_type(data)}, expected an object")


def parse_by_date(day: date, body: bytes) -> ParsedDay:
    """Flatten a ``GET employees/byDate?date=<day>`` body into rows and quarantined records.

    Args:
        day: The date that was requested; becomes ``visit_date`` of every output dict.
        body: The raw response body, exactly as received.

    Returns:
        A :class:`ParsedDay`. Events keep payload order (the API does not sort them by time) and
        duplicates are kept.

    Raises:
        AlaqanPayloadError: The body as a whole is unusable; the message names the date.
    """
    parsed = ParsedDay(visit_date=day)
    rows, quarantined = parsed.rows, parsed.quarantined
    dumps = json.dumps

    def quarantine(key: str, value: Any, reason: str) -> None:
        quarantined.append(
            {
                "visit_date": day,
                "iin": key,
                "raw_json": dumps({"iin": key, "record": value}, **_COMPACT),
                "reason": reason,
            }
        )

    for key, events in load_data_object(body, f"byDate {day.isoformat()}"):
        if not isinstance(events, list) or isinstance(events, _DuplicateKeys):
            quarantine(key, events, f"events_not_array: {_json_type(events)}")
            continue
        key_problem = None if _IIN_KEY.fullmatch(key) else f"bad_iin_key: {_detail(key)}"
        for record in events:
            reason = key_problem or _record_problem(record)
            if reason is not None:
                quarantine(key, record, reason)
                continue
            event, clock = record["event"], record["time"]
            # Key, event and time were just validated (digits, a known word, HH:MM:SS): nothing needs
            # escaping, so formatting is byte-identical to json.dumps and ~40x cheaper per record.
            if next(iter(record)) == "event":
                raw = f'{{"iin":"{key}","event":"{event}","time":"{clock}"}}'
            else:
                raw = f'{{"iin":"{key}","time":"{clock}","event":"{event}"}}'
            rows.append({"visit_date": day, "iin": key, "event": event, "event_time": clock, "raw_json": raw})
    return parsed


def reason_code(reason: str) -> str:
    """Return the machine-friendly code of a quarantine ``reason`` (the part before ``": "``).

    Args:
        reason: A ``reason`` value from :attr:`ParsedDay.quarantined`.

    Returns:
        One of :data:`QUARANTINE_REASONS`.
    """
    return reason.split(":", 1)[0]

"""parse_by_date on hand-written payloads: the spec's example, ordering, quarantine reasons, fatal bodies."""

import json
import re
from datetime import date

import pytest
import yaml

from elt_platform.config import REPO_ROOT
from elt_platform.sources.alaqan.errors import AlaqanPayloadError
from elt_platform.sources.alaqan.iin import IIN_PROBLEMS
from elt_platform.sources.alaqan.parsing import QUARANTINE_REASONS, parse_by_date, reason_code

DAY = date(2025, 1, 30)

# Verbatim byDate example of specs/dwh-alaqan-amocrm.md §1.3 (3 + 2 events).
SPEC_BY_DATE = b"""{
  "data": {
    "650727300949": [
      {"event": "exit", "time": "20:10:56"},
      {"event": "exit", "time": "12:34:27"},
      {"event": "entry", "time": "08:45:00"}
    ],
    "910505350319": [
      {"event": "entry", "time": "09:00:15"},
      {"event": "exit", "time": "18:30:00"}
    ]
  }
}"""


def _body(data: object) -> bytes:
    return json.dumps({"data": data}).encode()


def test_spec_example_rows_exactly() -> None:
    parsed = parse_by_date(DAY, SPEC_BY_DATE)

    assert parsed.visit_date == DAY
    assert parsed.quarantined == []
    assert parsed.rows == [
        {
            "visit_date": DAY,
            "iin": "650727300949",
            "event": "exit",
            "event_time": "20:10:56",
            "raw_json": '{"iin":"650727300949","event":"exit","time":"20:10:56"}',
        },
        {
            "visit_date": DAY,
            "iin": "650727300949",
            "event": "exit",
            "event_time": "12:34:27",
            "raw_json": '{"iin":"650727300949","event":"exit","time":"12:34:27"}',
        },
        {
            "visit_date": DAY,
            "iin": "650727300949",
            "event": "entry",
            "event_time": "08:45:00",
            "raw_json": '{"iin":"650727300949","event":"entry","time":"08:45:00"}',
        },
        {
            "visit_date": DAY,
            "iin": "910505350319",
            "event": "entry",
            "event_time": "09:00:15",
            "raw_json": '{"iin":"910505350319","event":"entry","time":"09:00:15"}',
        },
        {
            "visit_date": DAY,
            "iin": "910505350319",
            "event": "exit",
            "event_time": "18:30:00",
            "raw_json": '{"iin":"910505350319","event":"exit","time":"18:30:00"}',
        },
    ]


def test_out_of_order_and_duplicate_events_are_kept_as_sent() -> None:
    times = ["18:00:00", "09:00:00", "13:00:00", "09:00:00", "12:00:00"]
    events = ["exit", "entry", "entry", "entry", "exit"]
    body = _body({"650727300949": [{"event": e, "time": t} for e, t in zip(events, times, strict=True)]})

    parsed = parse_by_date(DAY, body)

    assert [(row["event"], row["event_time"]) for row in parsed.rows] == list(zip(events, times, strict=True))


def test_record_key_order_is_preserved_in_raw_json() -> None:
    parsed = parse_by_date(DAY, b'{"data": {"650727300949": [{"time": "09:00:00", "event": "entry"}]}}')

    assert parsed.rows[0]["raw_json"] == '{"iin":"650727300949","time":"09:00:00","event":"entry"}'


@pytest.mark.parametrize(
    ("key", "events", "reason"),
    [
        ("65072730094", [{"event": "entry", "time": "09:00:00"}], "bad_iin_key: '65072730094'"),
        ("6507273009490", [{"event": "entry", "time": "09:00:00"}], "bad_iin_key: '6507273009490'"),
        ("65072730094x", [{"event": "entry", "time": "09:00:00"}], "bad_iin_key: '65072730094x'"),
        ("650727300949", {"event": "entry", "time": "09:00:00"}, "events_not_array: object"),
        ("650727300949", None, "events_not_array: null"),
        ("650727300949", ["entry 09:00:00"], "record_not_object: string"),
        ("650727300949", [["entry", "09:00:00"]], "record_not_object: array"),
        ("650727300949", [None], "record_not_object: null"),
        ("650727300949", [{"event": "entry"}], "missing_keys: ['time']"),
        ("650727300949", [{"time": "09:00:00"}], "missing_keys: ['event']"),
        ("650727300949", [{"event": "entry", "time": "09:00:00", "door": "A"}], "extra_keys: ['door']"),
        ("650727300949", [{"event": "enter", "time": "09:00:00"}], "unknown_event: 'enter'"),
        ("650727300949", [{"event": "ENTRY", "time": "09:00:00"}], "unknown_event: 'ENTRY'"),
        ("650727300949", [{"event": 1, "time": "09:00:00"}], "unknown_event: 1"),
        ("650727300949", [{"event": "exit", "time": "25:61:00"}], "bad_time: '25:61:00'"),
        ("650727300949", [{"event": "exit", "time": "24:00:00"}], "bad_time: '24:00:00'"),
        ("650727300949", [{"event": "exit", "time": "23:59:60"}], "bad_time: '23:59:60'"),
        ("650727300949", [{"event": "exit", "time": "9:00:15"}], "bad_time: '9:00:15'"),
        ("650727300949", [{"event": "exit", "time": "09:00"}], "bad_time: '09:00'"),
        ("650727300949", [{"event": "exit", "time": "09:00:15.5"}], "bad_time: '09:00:15.5'"),
        ("650727300949", [{"event": "exit", "time": 32415}], "bad_time: 32415"),
        ("650727300949", [{"event": "exit", "time": None}], "bad_time: None"),
    ],
)
def test_each_quarantine_reason(key: str, events: object, reason: str) -> None:
    valid = {"910505350319": [{"event": "entry", "time": "09:00:15"}]}

    parsed = parse_by_date(DAY, _body({**valid, key: events}))

    assert [row["iin"] for row in parsed.rows] == ["910505350319"]
    assert len(parsed.quarantined) == 1
    item = parsed.quarantined[0]
    assert item["reason"] == reason
    assert reason_code(item["reason"]) in QUARANTINE_REASONS
    assert item["visit_date"] == DAY
    assert item["iin"] == key
    offending = events if not isinstance(events, list) else events[0]
    assert json.loads(item["raw_json"]) == {"iin": key, "record": offending}


def test_duplicate_keys_inside_a_record_are_quarantined() -> None:
    body = b'{"data": {"650727300949": [{"event": "entry", "event": "exit", "time": "09:00:00"}]}}'

    parsed = parse_by_date(DAY, body)

    assert parsed.rows == []
    assert [q["reason"] for q in parsed.quarantined] == ["duplicate_keys: ['event']"]


def test_repeated_iin_keys_keep_every_event() -> None:
    body = (
        b'{"data": {"650727300949": [{"event": "entry", "time": "09:00:00"}],'
        b' "650727300949": [{"event": "exit", "time": "18:00:00"}]}}'
    )

    parsed = parse_by_date(DAY, body)

    assert [row["event_time"] for row in parsed.rows] == ["09:00:00", "18:00:00"]


def test_every_record_of_a_bad_key_is_quarantined_not_dropped() -> None:
    events = [{"event": "entry", "time": "09:00:00"}, {"event": "exit", "time": "18:00:00"}]

    parsed = parse_by_date(DAY, _body({"65072730094": events}))

    assert parsed.rows == []
    assert [json.loads(q["raw_json"])["record"] for q in parsed.quarantined] == events


def test_valid_and_invalid_records_of_one_person_are_split() -> None:
    events = [
        {"event": "entry", "time": "09:00:00"},
        {"event": "enter", "time": "12:00:00"},
        {"event": "exit", "time": "18:00:00"},
    ]

    parsed = parse_by_date(DAY, _body({"650727300949": events}))

    assert [row["event_time"] for row in parsed.rows] == ["09:00:00", "18:00:00"]
    assert [q["reason"] for q in parsed.quarantined] == ["unknown_event: 'enter'"]


def test_wrong_check_digit_is_not_a_parsing_problem() -> None:
    # 12 digits with a bad check digit: bronze keeps it, silver (dbt) filters it.
    parsed = parse_by_date(DAY, _body({"650727300948": [{"event": "entry", "time": "09:00:00"}]}))

    assert [row["iin"] for row in parsed.rows] == ["650727300948"]


@pytest.mark.parametrize(
    "body",
    [b'{"data": {}}', b'{"data": []}', b'\xef\xbb\xbf{"data": {}}'],
    ids=["object", "php-array", "bom"],
)
def test_empty_day(body: bytes) -> None:
    parsed = parse_by_date(DAY, body)

    assert (parsed.rows, parsed.quarantined) == ([], [])


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "not valid JSON"),
        (SPEC_BY_DATE[: len(SPEC_BY_DATE) // 2], "not valid JSON"),
        (SPEC_BY_DATE[:-1], "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b"<html>502 Bad Gateway</html>", "not valid JSON"),
        (b"[]", "top-level JSON is array"),
        (b'"ok"', "top-level JSON is string"),
        (b"{}", "no 'data' key"),
        (b'{"message": "Server Error"}', "message: 'Server Error'"),
        (b'{"data": null}', "'data' is null"),
        (b'{"data": "none"}', "'data' is string"),
        (b'{"data": [{"event": "entry"}]}', "'data' is array"),
        (b'{"data": {}, "data": {}}', "duplicate keys"),
    ],
)
def test_unusable_body_raises_naming_the_date(body: bytes, fragment: str) -> None:
    with pytest.raises(AlaqanPayloadError) as caught:
        parse_by_date(DAY, body)

    message = str(caught.value)
    assert "2025-01-30" in message
    assert fragment in message


def test_payload_error_does_not_quote_the_body() -> None:
    with pytest.raises(AlaqanPayloadError) as caught:
        parse_by_date(DAY, SPEC_BY_DATE[:60])

    assert "650727300949" not in str(caught.value)
    assert "60 bytes" in str(caught.value)


def _reason_mapping() -> dict[str, str]:
    macro = (REPO_ROOT / "dbt" / "macros" / "alaqan_rejected.sql").read_text(encoding="utf-8")
    return dict(re.findall(r"'(\w+)': '([\w:]+)'", macro))


def _documented_vocabulary() -> set[str]:
    doc = yaml.safe_load(
        (REPO_ROOT / "dbt/models/staging/alaqan/_alaqan__models.yml").read_text(encoding="utf-8")
    )
    (model,) = [m for m in doc["models"] if m["name"] == "stg_alaqan__rejected"]
    (column,) = [c for c in model["columns"] if c["name"] == "reason"]
    (accepted,) = [
        t["accepted_values"] for t in column["tests"] if isinstance(t, dict) and "accepted_values" in t
    ]
    return set(accepted["arguments"]["values"])


def test_every_rejection_code_maps_onto_the_documented_vocabulary() -> None:
    # silver.alaqan_rejected maps bronze (parser) and silver (IIN rule, event, time) codes in one macro;
    # a code missing there would land as 'unclassified' and fail the model's accepted_values test.
    mapping = _reason_mapping()
    silver_codes = {*IIN_PROBLEMS, "unknown_event", "bad_time"}
    assert set(mapping) == set(QUARANTINE_REASONS) | silver_codes
    assert set(mapping.values()) == _documented_vocabulary()
    assert mapping["bad_iin_key"] == mapping["not_12_digits"] == "invalid_iin:format"
    assert mapping["bad_check_digit"] == "invalid_iin:checksum"

"""amoCRM pages → bronze rows and quarantine, on recorded bodies (documented shapes where none exist)."""

import json
from datetime import date, timedelta

import pytest
from tests.plugins.sources.amocrm.conftest import CUSTOM_FIELD, EVENT, USER, recorded

from elt_platform.iceberg.tables import load_spec
from elt_platform.sources.amocrm.parsing import (
    QUARANTINE_REASONS,
    SHAPES,
    PageShapeError,
    custom_field_changes,
    has_next,
    page_records,
    parse_records,
    utc_day,
)
from elt_platform.sources.amocrm.settings import ENTITIES

ONE_DAY = timedelta(days=1)


def _parse(entity: str, records: list, day: date, **kwargs):
    return parse_records(entity, records, first=day, end=day + ONE_DAY, **kwargs)


@pytest.mark.parametrize("entity", ENTITIES)
def test_every_shape_fills_exactly_its_bronze_columns(entity: str) -> None:
    shape = SHAPES[entity]
    produced = {shape.slice_column, "id", "raw_json", *shape.ints, *shape.strings, *shape.bools}
    produced |= {*shape.json, *shape.embedded, *shape.nested}
    produced |= {"entity_type"} if entity == "custom_fields" else set()
    declared = {
        c.name for c in load_spec(f"bronze/amocrm/{entity}.yaml").columns if not c.name.startswith("_")
    }

    assert produced == declared - {"loaded_at"}


def test_leads_page_flattens_to_the_spec_columns() -> None:
    page = recorded("leads.list.page2.json")
    records = page_records(page, "leads", "leads page 2")
    day = utc_day(records[0]["updated_at"])

    parsed = _parse("leads", records, day)

    assert parsed.quarantined == []
    assert [row["id"] for row in parsed.rows] == [19619, 14460]
    first = parsed.rows[0]
    assert first["updated_date"] == date(2017, 8, 8)
    assert (first["price"], first["status_id"], first["pipeline_id"]) == (46333, 142, 1300)
    assert first["closed_at"] == 1483005931 and first["is_deleted"] is False
    assert first["custom_fields_values"] is None and first["loss_reason_id"] is None
    assert (first["tags_json"], first["companies_json"], first["contacts_json"]) == ("[]", "[]", None)
    assert json.loads(first["raw_json"]) == records[0]


def test_embedded_parts_are_json_text_with_readable_cyrillic() -> None:
    lead = recorded("lead.get.with_embedded.json")

    (row,) = _parse("leads", [lead], utc_day(lead["updated_at"])).rows

    assert row["tags_json"] == '[{"id":100667,"name":"тест"}]'
    assert json.loads(row["companies_json"])[0]["id"] == 10971463
    assert row["contacts_json"] == "[]"
    # Parts bronze has no column for (loss_reason, catalog_elements) stay in raw_json.
    assert json.loads(row["raw_json"])["_embedded"]["loss_reason"][0]["name"] == "Пропала потребность"


def test_contact_keeps_custom_fields_and_links_as_json() -> None:
    contact = recorded("contact.get.json")

    (row,) = _parse("contacts", [contact], utc_day(contact["updated_at"])).rows

    values = json.loads(row["custom_fields_values"])
    assert [(v["field_id"], v["field_code"]) for v in values] == [(3, "PHONE")]
    assert [lead["id"] for lead in json.loads(row["leads_json"])] == [1, 3916883]
    assert [company["id"] for company in json.loads(row["companies_json"])] == [1]
    assert (row["first_name"], row["last_name"]) == ("Иван", "Иванов")


@pytest.mark.parametrize(
    ("name", "entity", "ids"),
    [
        ("companies.list.json", "companies", [7767077, 7767457]),
        ("contacts.list.json", "contacts", [7143599, 7767065]),
        ("tasks.list.json", "tasks", [7087, 215089]),
    ],
)
def test_recorded_list_pages_parse_without_quarantine(name: str, entity: str, ids: list[int]) -> None:
    records = page_records(recorded(name), entity, name)
    first = min(utc_day(r["updated_at"]) for r in records)
    last = max(utc_day(r["updated_at"]) for r in records)

    parsed = parse_records(entity, records, first=first, end=last + ONE_DAY)

    assert parsed.quarantined == []
    assert [row["id"] for row in parsed.rows] == ids


def test_task_result_text_is_read_from_its_object_and_absent_results_are_null() -> None:
    task = recorded("task.get.json")
    without = {**task, "id": 2, "result": []}  # PHP's empty map

    rows = _parse("tasks", [task, without], utc_day(task["updated_at"])).rows

    assert [row["result_text"] for row in rows] == ["Результат есть", None]
    assert (rows[0]["entity_type"], rows[0]["task_type_id"], rows[0]["is_completed"]) == ("leads", 2, True)


def test_pipelines_snapshot_keeps_statuses_as_json() -> None:
    records = page_records(recorded("pipelines.list.json"), "pipelines", "pipelines")
    snapshot = date(2024, 3, 1)

    (row,) = _parse("pipelines", records, snapshot).rows

    statuses = json.loads(row["statuses_json"])
    assert {status["id"]: status["name"] for status in statuses}[142] == "Успешно реализовано"
    assert {status["id"] for status in statuses} >= {142, 143}
    assert (row["snapshot_date"], row["is_main"], row["is_archive"]) == (snapshot, True, False)


def test_users_custom_fields_and_events_follow_the_documented_shapes() -> None:
    day = date(2024, 3, 1)

    (user,) = _parse("users", [USER], day).rows
    (definition,) = _parse("custom_fields", [CUSTOM_FIELD], day, extra={"entity_type": "contacts"}).rows
    (event,) = _parse("events", [EVENT], day).rows

    assert json.loads(user["rights_json"])["leads"]["view"] == "A" and user["snapshot_date"] == day
    assert (definition["entity_type"], definition["code"], definition["type"]) == (
        "contacts",
        "PHONE",
        "multitext",
    )
    assert [e["value"] for e in json.loads(definition["enums_json"])] == ["WORK", "MOB"]
    assert event["id"] == EVENT["id"] and event["created_date"] == day
    assert json.loads(event["value_after"])[0]["lead_status"]["id"] == 142


LEAD = {
    "id": 7,
    "name": "Сделка +77001234567",
    "price": 100,
    "updated_at": 1709290000,
    "created_at": 1709290000,
}
DAY = date(2024, 3, 1)  # UTC day of 1709290000


@pytest.mark.parametrize(
    ("entity", "record", "code"),
    [
        ("leads", ["not", "an", "object"], "record_not_object"),
        ("leads", {k: v for k, v in LEAD.items() if k != "id"}, "missing_id"),
        ("leads", {**LEAD, "id": "7"}, "bad_id"),
        ("leads", {**LEAD, "id": True}, "bad_id"),
        ("leads", {**LEAD, "id": -7}, "bad_id"),
        ("leads", {**LEAD, "updated_at": None}, "missing_timestamp"),
        ("leads", {**LEAD, "updated_at": "2024-03-01"}, "bad_timestamp"),
        ("leads", {**LEAD, "updated_at": 10**18}, "bad_timestamp"),
        ("leads", {**LEAD, "updated_at": 1709290000 + 86400}, "outside_interval"),
        ("leads", {**LEAD, "price": "100 000"}, "bad_type"),
        ("leads", {**LEAD, "is_deleted": "no"}, "bad_type"),
        ("leads", {**LEAD, "custom_fields_values": {"field_id": 1}}, "bad_type"),
        ("leads", {**LEAD, "name": {"first": "x"}}, "bad_type"),
        ("leads", {**LEAD, "_embedded": "tags"}, "bad_embedded"),
        ("leads", {**LEAD, "_embedded": {"tags": {"id": 1}}}, "bad_embedded"),
        ("events", {**EVENT, "id": 12345, "created_at": 1709290000}, "bad_id"),
        ("users", {**USER, "id": None}, "missing_id"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_malformed_records_are_quarantined_with_a_reason_code(entity: str, record: object, code: str) -> None:
    valid = {"leads": {**LEAD, "id": 8}, "events": EVENT, "users": USER}[entity]
    parsed = _parse(entity, [record, valid], DAY)

    (rejected,) = parsed.quarantined
    assert rejected["reason"].split(":", 1)[0] == code and code in QUARANTINE_REASONS
    assert (rejected["entity"], rejected["slice_date"]) == (entity, DAY)
    assert json.loads(rejected["raw_json"]) == record
    assert "+77001234567" not in rejected["reason"] and "100 000" not in rejected["reason"]
    assert len(parsed.rows) == 1  # the next record is not affected


def test_tolerated_variants_are_not_quarantined() -> None:
    variants = [
        {**LEAD, "id": 1, "price": 100.0},  # integral float from a PHP serialiser
        {**LEAD, "id": 2, "name": 12345},  # a number as a name
        {**LEAD, "id": 3, "_embedded": []},  # PHP's empty map
    ]

    parsed = _parse("leads", variants, DAY)

    assert parsed.quarantined == []
    assert [(r["price"], r["name"]) for r in parsed.rows] == [
        (100, LEAD["name"]),
        (100, "12345"),
        (100, LEAD["name"]),
    ]


def test_a_204_page_has_no_records_and_no_next() -> None:
    assert page_records(None, "leads", "leads page 1") == []
    assert has_next(None) is False


def test_next_link_decides_the_last_page() -> None:
    page = recorded("leads.list.page2.json")
    last = {**page, "_links": {"self": page["_links"]["self"]}}

    assert has_next(page) is True
    assert has_next(last) is False
    assert has_next(recorded("pipelines.list.json")) is False


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ([1, 2], "JSON array"),
        ({"_page": 1, "_links": {}}, "no _embedded.leads"),
        ({"_embedded": {"contacts": []}}, r"found \['contacts'\]"),
        ({"_embedded": {"leads": {"id": 1}}}, "expected an array"),
    ],
)
def test_unusable_pages_raise(body: object, match: str) -> None:
    with pytest.raises(PageShapeError, match=match):
        page_records(body, "leads", "leads page 1")


def test_custom_field_changes_lists_new_renamed_and_removed_per_entity() -> None:
    previous = [("leads", 501, "БИН"), ("leads", 502, "Источник"), ("contacts", 601, "Телефон")]
    current = [("leads", 501, "БИН компании"), ("leads", 503, "Сфера"), ("contacts", 601, "Телефон")]

    report = custom_field_changes(previous, current, ("leads", "contacts", "companies"))

    assert report == {
        "leads": {
            "new": [{"id": 503, "name": "Сфера"}],
            "renamed": [{"id": 501, "from": "БИН", "to": "БИН компании"}],
            "removed": [{"id": 502, "name": "Источник"}],
        },
        "contacts": {"new": [], "renamed": [], "removed": []},
        "companies": {"new": [], "renamed": [], "removed": []},
    }

"""The amoCRM sandbox's write side over real HTTP: adds, updates, ``leads/complex``, validation errors,
``query`` search and lead filters, the clinic's setup, limits and faults on writes, the admin API, and
writes showing up in what the read side (and the extract) serves.

Shapes are compared with the documented bodies in ``../shared/fixtures/amocrm/ogi4i_amocrm-client/``
and the error bodies quoted in amocrm/amocrm-api-php#115 and #21; values are the ones each test sends.
Tests share one server: each works on the entities it creates and finds them by values unique to it.
"""

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from tests.plugins.http.scripted_server import fixture_bytes

from elt_platform.sandbox.amocrm.account import (
    BRANCH_FIELD,
    CLINIC,
    CLINIC_PRIMARY_PIPELINE,
    CLINIC_REPEAT_PIPELINE,
    CONTACT_PHONE_FIELD,
    LOST,
    PATIENT_NUMBER_FIELD,
    RECEPTION_DATE_FIELD,
    RECEPTION_ID_FIELD,
    WON,
)
from elt_platform.sandbox.amocrm.generator import AmoCrmDataset, ListQuery
from elt_platform.sandbox.amocrm.server import AmoCrmSandboxServer
from elt_platform.sandbox.rate_limits import RateLimiter

TOKEN = "amocrm-write-token-5e2b"
NOW = datetime(2024, 7, 1, tzinfo=UTC)
DOCS = "amocrm/ogi4i_amocrm-client"
#: The clinic pipelines' stages as the spec names them (ids: unsorted = first, then +1…).
PRIMARY_OPEN = [56_000_011, 56_000_012, 56_000_013, 56_000_014]
NOT_A_CHOICE = "The value you selected is not a valid choice."


def _documented(name: str) -> Any:
    return json.loads(fixture_bytes(f"{DOCS}/{name}"))


def _shape(value: Any) -> Any:
    """Keys (recursively, first list item) of a body: what must match the documented one."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


@pytest.fixture(scope="module")
def server() -> Iterator[AmoCrmSandboxServer]:
    dataset = AmoCrmDataset(seed=5, leads=150, start=NOW - timedelta(days=90), now=NOW, clinic=CLINIC)
    with AmoCrmSandboxServer(dataset, long_lived_token=TOKEN) as running:
        yield running


@pytest.fixture
def http(server: AmoCrmSandboxServer) -> Iterator[requests.Session]:
    server.set_faults(None)
    server.reset_stats()
    server.sandbox.rate_limiter = None  # the limit has its own test
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        yield session


def _send(
    http: requests.Session, server: AmoCrmSandboxServer, method: str, path: str, body: Any
) -> requests.Response:
    return http.request(method, server.base_url + path, json=body, timeout=10)


def _get(http: requests.Session, server: AmoCrmSandboxServer, path: str, **params: Any) -> requests.Response:
    return http.get(server.base_url + path, params=params, timeout=10)


def _found(response: requests.Response, entity: str) -> list[int]:
    return (
        [] if response.status_code == 204 else [item["id"] for item in response.json()["_embedded"][entity]]
    )


def _phone(value: str, enum_code: str = "MOB") -> dict[str, Any]:
    return {"field_code": "PHONE", "values": [{"value": value, "enum_code": enum_code}]}


# --- shapes -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("entity", ["leads", "contacts"])
def test_add_answers_ids_by_request_id_in_the_documented_shape(http, server, entity) -> None:
    response = _send(
        http,
        server,
        "POST",
        entity,
        [{"name": f"{entity} add A"}, {"name": f"{entity} add B", "request_id": "b"}],
    )

    body = response.json()
    documented = _documented("leads.add.response.json")
    assert (response.status_code, response.headers["content-type"]) == (200, "application/hal+json")
    assert _shape(body) == json.loads(json.dumps(_shape(documented)).replace('"leads"', f'"{entity}"'))
    items = body["_embedded"][entity]
    assert [item["request_id"] for item in items] == ["0", "b"]
    assert [server.dataset.record(entity, item["id"])["name"] for item in items] == [
        f"{entity} add A",
        f"{entity} add B",
    ]
    assert all(item["_links"]["self"]["href"] == f"{server.base_url}{entity}/{item['id']}" for item in items)


def test_update_answers_like_the_documented_update_with_the_write_time(http, server) -> None:
    (created,) = _send(http, server, "POST", "leads", [{"name": "to update"}]).json()["_embedded"]["leads"]

    response = _send(http, server, "PATCH", "leads", [{"id": created["id"], "price": 4_500}])

    body = response.json()
    assert _shape(body) == _shape(_documented("leads.update.response.json"))
    (item,) = body["_embedded"]["leads"]
    assert (item["id"], item["updated_at"]) == (created["id"], server.dataset.clock)
    assert server.dataset.record("leads", created["id"])["price"] == 4_500


def test_patch_of_one_lead_answers_its_id_and_update_time(http, server) -> None:
    (created,) = _send(http, server, "POST", "leads", [{"name": "single patch"}]).json()["_embedded"]["leads"]

    response = _send(http, server, "PATCH", f"leads/{created['id']}", {"name": "single patch, renamed"})

    assert response.json() == {
        "id": created["id"],
        "updated_at": server.dataset.clock,
        "_links": {"self": {"href": f"{server.base_url}leads/{created['id']}"}},
    }
    assert server.dataset.record("leads", created["id"])["name"] == "single patch, renamed"


# --- what a write makes -----------------------------------------------------------------------------------


def test_a_reception_lead_is_listed_with_its_fields_contact_and_events_after_everything_read_before(
    http, server
) -> None:
    before = server.dataset.clock
    (contact,) = _send(
        http,
        server,
        "POST",
        "contacts",
        [
            {
                "first_name": "Асель",
                "last_name": "Нурова",
                "custom_fields_values": [_phone("+7 (701) 400-10-20")],
            }
        ],
    ).json()["_embedded"]["contacts"]
    lead_body = {
        "name": "Первичный приём 9001",
        "pipeline_id": CLINIC_PRIMARY_PIPELINE,
        "status_id": PRIMARY_OPEN[1],
        "price": 15_000,
        "responsible_user_id": CLINIC.responsible_user_id,
        "custom_fields_values": [
            {"field_id": RECEPTION_ID_FIELD, "values": [{"value": 9001}]},
            {"field_id": RECEPTION_DATE_FIELD, "values": [{"value": 1_719_900_000}]},
            {"field_id": BRANCH_FIELD, "values": [{"value": "Дентал Люкс Шымкент"}]},
        ],
        "_embedded": {"contacts": [{"id": contact["id"]}], "tags": [{"name": "iDent"}]},
    }
    (lead,) = _send(http, server, "POST", "leads", [lead_body]).json()["_embedded"]["leads"]

    window = {"filter[updated_at][from]": before + 1, "order[updated_at]": "asc", "with": "contacts"}
    listed = _get(http, server, "leads", **window).json()["_embedded"]["leads"]
    contact_listed = _get(http, server, "contacts", **{"filter[id][]": contact["id"], "with": "leads"}).json()
    added = _get(
        http,
        server,
        "events",
        **{"filter[created_at][from]": before + 1, "filter[type]": "lead_added,contact_added"},
    ).json()

    (record,) = [item for item in listed if item["id"] == lead["id"]]
    assert record["created_at"] == record["updated_at"] > before
    assert (record["pipeline_id"], record["status_id"], record["price"]) == (
        CLINIC_PRIMARY_PIPELINE,
        PRIMARY_OPEN[1],
        15_000,
    )
    assert {f["field_id"]: f["values"] for f in record["custom_fields_values"]} == {
        RECEPTION_ID_FIELD: [{"value": "9001"}],  # numeric fields come back as strings
        RECEPTION_DATE_FIELD: [{"value": 1_719_900_000}],
        BRANCH_FIELD: [{"value": "Дентал Люкс Шымкент", "enum_id": 8_074}],
    }
    assert [c["id"] for c in record["_embedded"]["contacts"]] == [contact["id"]]
    assert [t["name"] for t in record["_embedded"]["tags"]] == ["iDent"]
    assert [item["id"] for item in contact_listed["_embedded"]["contacts"][0]["_embedded"]["leads"]] == [
        lead["id"]
    ]
    assert Counter((e["type"], e["entity_id"]) for e in added["_embedded"]["events"]) == {
        ("contact_added", contact["id"]): 1,
        ("lead_added", lead["id"]): 1,
    }


def test_moving_a_lead_to_won_closes_it_and_records_the_status_event(http, server) -> None:
    (lead,) = _send(
        http, server, "POST", "leads", [{"name": "to win", "pipeline_id": CLINIC_PRIMARY_PIPELINE}]
    ).json()["_embedded"]["leads"]
    before = server.dataset.clock

    _send(http, server, "PATCH", "leads", [{"id": lead["id"], "status_id": WON}])

    record = server.dataset.record("leads", lead["id"])
    moves = server.dataset.events(since=before + 1, types=["lead_status_changed"])
    assert (record["pipeline_id"], record["status_id"], record["closed_at"]) == (
        CLINIC_PRIMARY_PIPELINE,
        WON,
        server.dataset.clock,
    )
    assert [(e["entity_id"], e["value_before"], e["value_after"]) for e in moves] == [
        (
            lead["id"],
            [{"lead_status": {"id": PRIMARY_OPEN[0], "pipeline_id": CLINIC_PRIMARY_PIPELINE}}],
            [{"lead_status": {"id": WON, "pipeline_id": CLINIC_PRIMARY_PIPELINE}}],
        )
    ]


def test_a_generated_lead_written_to_keeps_the_write_and_its_script_stops() -> None:
    dataset = AmoCrmDataset(seed=5, leads=150, start=NOW - timedelta(days=90), now=NOW)
    script = next(
        dataset.book.lead(n)
        for n in range(1, 150)
        if any(at > dataset.clock for at in dataset.book.lead(n).changes)
    )
    lead_id = 30_000_000 + script.number
    dataset.write("leads", "update", [{"id": lead_id, "price": 123_000}])
    written_at = dataset.clock

    dataset.advance(max(script.changes) + 1)

    record = dataset.record("leads", lead_id)
    later = [e for e in dataset.events(since=written_at) if e["entity_id"] == lead_id]
    assert (record["price"], record["updated_at"]) == (123_000, written_at)
    assert [e["type"] for e in later] == ["sale_field_changed"]
    assert lead_id not in dataset.deleted()["leads"]
    assert dataset.lead(lead_id).price == 123_000


def test_a_read_by_id_answers_what_the_full_list_holds_for_those_ids_at_any_moment() -> None:
    dataset = AmoCrmDataset(seed=5, leads=150, start=NOW - timedelta(days=90), now=NOW)
    before = dataset.clock
    taken_id = 30_000_007  # a generated lead, taken over by the update below
    created = dataset.create("leads", [{"name": f"by-id {k}", "price": 100 + k} for k in range(3)])
    dataset.write("leads", "update", [{"id": taken_id, "price": 4_321}, {"id": created[0], "price": 999}])
    later = dataset.create("leads", [{"name": "by-id late", "price": 7}])
    wanted = frozenset([taken_id, 30_000_002, *created, *later, 30_999_999])  # the last one never existed

    def by_id(t: int) -> list[dict[str, Any]]:
        return dataset.render("leads", dataset.select("leads", ListQuery(ids=wanted), t), "", set(), t)

    def listed(t: int) -> list[dict[str, Any]]:
        return [
            record
            for record in dataset.render("leads", dataset.select("leads", ListQuery(), t), "", set(), t)
            if record["id"] in wanted
        ]

    assert by_id(dataset.clock) == listed(dataset.clock)
    assert {r["id"]: r["price"] for r in by_id(dataset.clock)}[taken_id] == 4_321
    assert sorted(r["id"] for r in by_id(dataset.clock)) == sorted(wanted - {30_999_999})
    assert by_id(before) == listed(before)  # before the writes: the generated leads as they were
    assert [r["id"] for r in by_id(before)] == [30_000_002, taken_id]


def test_a_patch_checks_each_lead_without_listing_the_accounts_written_leads(monkeypatch) -> None:
    # A PATCH validates every lead against its current record; listing every written lead for each of
    # them made a 50-lead PATCH cost ~150 ms of CPU once the account held 10,000 written leads.
    dataset = AmoCrmDataset(seed=5, leads=150, start=NOW - timedelta(days=90), now=NOW)
    created = dataset.create("leads", [{"name": f"patched {k}", "price": k} for k in range(50)])

    def listing(*args: Any) -> None:
        raise AssertionError("a PATCH listed every written lead")

    monkeypatch.setattr(dataset.written, "entities", listing)
    dataset.write(
        "leads", "update", [{"id": lead_id, "price": 1_000 + k} for k, lead_id in enumerate(created)]
    )

    assert [dataset.lead(lead_id).price for lead_id in created] == [1_000 + k for k in range(50)]


# --- validation -------------------------------------------------------------------------------------------

#: (case, method, body, expected validation-errors) — one entity each; paths and codes as amoCRM words them.
INVALID_WRITES = [
    ("unknown pipeline", "POST", {"pipeline_id": 1}, [("NotSupportedChoice", "pipeline_id", NOT_A_CHOICE)]),
    (
        "status of another pipeline",
        "POST",
        {"pipeline_id": CLINIC_REPEAT_PIPELINE, "status_id": PRIMARY_OPEN[0]},
        [("NotSupportedChoice", "status_id", NOT_A_CHOICE)],
    ),
    (
        "unknown custom field",
        "POST",
        {"custom_fields_values": [{"field_id": 999_999, "values": [{"value": "x"}]}]},
        [("NotSupportedChoice", "custom_fields_values.0.field_id", NOT_A_CHOICE)],
    ),
    (
        "select value not among its enums",
        "POST",
        {"custom_fields_values": [{"field_id": BRANCH_FIELD, "values": [{"value": "Филиал на Луне"}]}]},
        [("NotSupportedChoice", "custom_fields_values.0.values.0.value", NOT_A_CHOICE)],
    ),
    (
        "numeric field with text",
        "POST",
        {"custom_fields_values": [{"field_id": RECEPTION_ID_FIELD, "values": [{"value": "abc"}]}]},
        [("InvalidType", "custom_fields_values.0.values.0.value", "This value should be of type numeric.")],
    ),
    (
        "price as text",
        "POST",
        {"price": "15000"},
        [("InvalidType", "price", "This value should be of type int.")],
    ),
    (
        "unknown responsible user",
        "POST",
        {"responsible_user_id": 1},
        [("NotSupportedChoice", "responsible_user_id", NOT_A_CHOICE)],
    ),
    (
        "link to a missing contact",
        "POST",
        {"_embedded": {"contacts": [{"id": 1}]}},
        [("NotSupportedChoice", "_embedded.contacts.0.id", NOT_A_CHOICE)],
    ),
    ("update without id", "PATCH", {"price": 1}, [("NotBlank", "id", "This value should not be blank.")]),
    ("update of a missing lead", "PATCH", {"id": 1, "price": 1}, [("NotFound", "id", "Entity not found.")]),
]


@pytest.mark.parametrize(
    ("method", "entity", "errors"),
    [case[1:] for case in INVALID_WRITES],
    ids=[case[0] for case in INVALID_WRITES],
)
def test_an_invalid_lead_gets_the_real_400_body_and_nothing_is_written(
    http, server, method, entity, errors
) -> None:
    if method == "POST":
        valid = {"name": "valid neighbour"}
    else:
        (created,) = _send(http, server, "POST", "leads", [{"name": "x"}]).json()["_embedded"]["leads"]
        valid = {"id": created["id"], "price": 2}
    writes = server.writes()

    response = _send(http, server, method, "leads", [valid, {**entity, "request_id": "bad"}])

    assert (response.status_code, response.headers["content-type"]) == (400, "application/problem+json")
    assert response.json() == {
        "validation-errors": [
            {
                "request_id": "bad",
                "errors": [dict(zip(("code", "path", "detail"), e, strict=True)) for e in errors],
            }
        ],
        "title": "Bad Request",
        "type": "https://httpstatus.es/400",
        "status": 400,
        "detail": "Request validation failed",
    }
    assert server.writes() == writes
    if method == "POST":
        assert "valid neighbour" not in {lead["name"] for lead in server.dataset.records("leads")}
    else:
        assert server.dataset.record("leads", valid["id"])["price"] == 0


def test_a_phone_with_an_unknown_enum_code_is_refused_at_its_path(http, server) -> None:
    response = _send(
        http,
        server,
        "POST",
        "contacts",
        [{"name": "bad phone", "custom_fields_values": [_phone("+77010000000", "SATELLITE")]}],
    )

    assert response.json()["validation-errors"] == [
        {
            "request_id": "0",
            "errors": [
                {
                    "code": "NotSupportedChoice",
                    "path": "custom_fields_values.0.values.0.enum_code",
                    "detail": NOT_A_CHOICE,
                }
            ],
        }
    ]


@pytest.mark.parametrize(
    ("path", "count", "limit"),
    [("leads", 251, 250), ("contacts", 251, 250), ("leads/complex", 51, 50), ("leads", 0, None)],
)
def test_batches_beyond_the_limit_or_empty_are_refused(http, server, path, count, limit) -> None:
    response = _send(http, server, "POST", path, [{"name": f"n{i}"} for i in range(count)])

    detail = (
        f"This collection should contain {limit} elements or less."
        if limit
        else "This collection should contain 1 element or more."
    )
    assert response.status_code == 400
    assert response.json()["validation-errors"] == [
        {"request_id": "0", "errors": [{"code": "Count", "path": "", "detail": detail}]}
    ]


def test_a_body_that_is_not_json_is_an_invalid_request_body(http, server) -> None:
    response = http.post(
        server.base_url + "leads", data=b"[{", headers={"Content-Type": "application/json"}, timeout=10
    )

    assert (response.status_code, response.json()["detail"]) == (400, "Invalid request body")


# --- leads/complex ----------------------------------------------------------------------------------------


def test_complex_creates_the_lead_with_a_new_contact_and_answers_a_plain_array(http, server) -> None:
    item = {
        "name": "Повторный приём 77",
        "pipeline_id": CLINIC_REPEAT_PIPELINE,
        "request_id": "r77",
        "_embedded": {
            "contacts": [{"first_name": "Ерлан", "custom_fields_values": [_phone("8 777 123 45 77", "WORK")]}]
        },
    }

    response = _send(http, server, "POST", "leads/complex", [item])

    (answer,) = response.json()
    assert set(answer) == {"id", "contact_id", "company_id", "request_id", "merged"}
    assert (answer["request_id"], answer["merged"], answer["company_id"]) == (["r77"], False, None)
    contact = server.dataset.record("contacts", answer["contact_id"], with_=["leads"])
    assert contact["name"] == "Ерлан" and [lead["id"] for lead in contact["_embedded"]["leads"]] == [
        answer["id"]
    ]
    assert contact["custom_fields_values"] == [
        {
            "field_id": CONTACT_PHONE_FIELD,
            "field_name": "Телефон",
            "field_code": "PHONE",
            "field_type": "multitext",
            "values": [{"value": "8 777 123 45 77", "enum_id": 6_011, "enum_code": "WORK"}],
        }
    ]
    assert server.dataset.record("leads", answer["id"])["pipeline_id"] == CLINIC_REPEAT_PIPELINE


def test_complex_links_an_existing_contact_and_refuses_two(http, server) -> None:
    (contact,) = _send(http, server, "POST", "contacts", [{"name": "existing"}]).json()["_embedded"][
        "contacts"
    ]

    linked = _send(
        http,
        server,
        "POST",
        "leads/complex",
        [{"name": "c1", "_embedded": {"contacts": [{"id": contact["id"]}]}}],
    )
    refused = _send(
        http,
        server,
        "POST",
        "leads/complex",
        [{"name": "c2", "_embedded": {"contacts": [{"id": contact["id"]}, {"name": "two"}]}}],
    )

    assert linked.json()[0]["contact_id"] == contact["id"]
    assert refused.json()["validation-errors"][0]["errors"] == [
        {
            "code": "Count",
            "path": "_embedded.contacts",
            "detail": "This collection should contain 1 element or less.",
        }
    ]


# --- search and filters -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def patient(server: AmoCrmSandboxServer) -> dict[str, int]:
    """A contact with a phone and two reception leads: one open, one won (created as people would)."""
    (contact,) = server.dataset.create(
        "contacts", [{"name": "Пациент Поиска", "custom_fields_values": [_phone("+7 (705) 318-22-41")]}]
    )
    reception = [
        {"field_id": RECEPTION_ID_FIELD, "values": [{"value": 480_551}]},
        {"field_id": PATIENT_NUMBER_FIELD, "values": [{"value": "PAT-4411"}]},
    ]
    open_lead, won_lead = server.dataset.create(
        "leads",
        [
            {
                "name": "open",
                "pipeline_id": CLINIC_PRIMARY_PIPELINE,
                "custom_fields_values": reception,
                "_embedded": {"contacts": [{"id": contact}]},
            },
            {
                "name": "won",
                "pipeline_id": CLINIC_PRIMARY_PIPELINE,
                "status_id": WON,
                "custom_fields_values": reception,
            },
        ],
    )
    return {"contact": contact, "open": open_lead, "won": won_lead}


@pytest.mark.parametrize(
    "spelling", ["+7 (705) 318-22-41", "87053182241", "77053182241", "7053182241", "705 318 22 41"]
)
def test_contacts_are_found_by_phone_digits_whatever_the_spelling(http, server, patient, spelling) -> None:
    response = _get(http, server, "contacts", query=spelling)

    assert _found(response, "contacts") == [patient["contact"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [("480551", ["open", "won"]), ("PAT-4411", ["open", "won"]), ("pat-4411", ["open", "won"])],
)
def test_leads_are_found_by_custom_field_values(http, server, patient, query, expected) -> None:
    response = _get(http, server, "leads", query=query)

    assert _found(response, "leads") == [patient[name] for name in expected]


def test_filter_by_open_stages_leaves_out_won_and_lost_leads(http, server, patient) -> None:
    open_stages = {f"filter[statuses][{k}][pipeline_id]": CLINIC_PRIMARY_PIPELINE for k in range(4)}
    open_stages |= {f"filter[statuses][{k}][status_id]": status for k, status in enumerate(PRIMARY_OPEN)}

    in_open = _get(http, server, "leads", query="480551", **open_stages)
    in_pipeline = _get(
        http, server, "leads", query="480551", **{"filter[pipeline_id][]": CLINIC_PRIMARY_PIPELINE}
    )
    in_other = _get(
        http, server, "leads", query="480551", **{"filter[pipeline_id][]": CLINIC_REPEAT_PIPELINE}
    )

    assert _found(in_open, "leads") == [patient["open"]]
    assert _found(in_pipeline, "leads") == [patient["open"], patient["won"]]
    assert (in_other.status_code, in_other.content) == (204, b"")


def test_a_search_without_match_is_204_with_an_empty_body(http, server) -> None:
    response = _get(http, server, "contacts", query="+7 700 000 00 00")

    assert (response.status_code, response.content) == (204, b"")


def test_with_contacts_embeds_the_contact_in_found_leads(http, server, patient) -> None:
    body = _get(http, server, "leads", query="480551", **{"with": "contacts"}).json()

    assert [[c["id"] for c in lead["_embedded"]["contacts"]] for lead in body["_embedded"]["leads"]] == [
        [patient["contact"]],
        [],
    ]


# --- the clinic's setup -----------------------------------------------------------------------------------


def test_the_clinic_pipelines_have_the_specs_stages_and_closing_statuses(http, server) -> None:
    pipelines = {p["id"]: p for p in _get(http, server, "leads/pipelines").json()["_embedded"]["pipelines"]}

    for pipeline_id, name in (
        (CLINIC_PRIMARY_PIPELINE, "Первичные приёмы"),
        (CLINIC_REPEAT_PIPELINE, "Повторные приёмы"),
    ):
        statuses = {s["id"]: s["name"] for s in pipelines[pipeline_id]["_embedded"]["statuses"]}
        assert pipelines[pipeline_id]["name"] == name
        assert (statuses[WON], statuses[LOST]) == ("Успешно завершена", "Не реализована")
        assert len(statuses) == 7


def test_lead_custom_fields_list_the_reception_fields(http, server) -> None:
    fields = {
        f["id"]: (f["name"], f["type"])
        for f in _get(http, server, "leads/custom_fields").json()["_embedded"]["custom_fields"]
    }

    assert {fid: fields[fid] for fid in range(801, 808)} == {
        801: ("ID Приёма", "numeric"),
        802: ("Порядковый номер в МИС", "text"),
        803: ("Дата приёма", "date_time"),
        804: ("Врач", "text"),
        805: ("Услуга", "text"),
        806: ("Стоимость приёма", "numeric"),
        807: ("Филиал", "select"),
    }


def test_an_account_without_the_clinic_setup_has_neither_its_pipelines_nor_its_fields() -> None:
    dataset = AmoCrmDataset(seed=5, leads=20, start=NOW - timedelta(days=10), now=NOW)

    assert CLINIC_PRIMARY_PIPELINE not in {p.id for p in dataset.pipelines}
    assert [f["id"] for f in dataset.custom_fields["leads"]] == [501, 502]


# --- limits, faults -----------------------------------------------------------------------------------------


def test_writes_beyond_seven_per_second_get_429_and_are_not_written(http, server) -> None:
    server.sandbox.rate_limiter = RateLimiter(7, clock=lambda: 0.0)  # frozen time: no slot comes back
    before = server.writes().get("leads_add", 0)

    statuses = Counter(
        _send(http, server, "POST", "leads", [{"name": f"burst {i}"}]).status_code for i in range(20)
    )

    assert statuses == {200: 7, 429: 13}
    assert server.writes()["leads_add"] - before == 7
    assert server.stats()["faults"]["rate_limited"] == 13


@pytest.mark.parametrize("fault", ["500", "429"])
def test_an_injected_fault_on_a_write_route_writes_nothing(http, server, fault) -> None:
    server.set_faults(**{f"next_{fault}": 1, "routes": ["leads_add"], "retry_after": 1})
    before = server.writes().get("leads_add", 0)

    failed = _send(http, server, "POST", "leads", [{"name": "faulted"}])
    passed = _send(http, server, "POST", "leads", [{"name": "after the fault"}])

    assert (failed.status_code, failed.json()["status"], passed.status_code) == (int(fault), int(fault), 200)
    assert server.writes()["leads_add"] - before == 1


# --- admin API ----------------------------------------------------------------------------------------------


def test_a_person_moves_a_lead_through_the_admin_api_and_counters_tell_apart_api_and_people(
    http, server
) -> None:
    before = server.writes()
    created = http.post(
        server.root_url + "/__sandbox/create/leads",
        json=[{"name": "by a person", "pipeline_id": CLINIC_PRIMARY_PIPELINE}],
        timeout=10,
    )
    lead_id = created.json()["ids"][0]

    edited = http.post(
        server.root_url + f"/__sandbox/leads/{lead_id}/edit",
        json={"status_id": PRIMARY_OPEN[2], "by": CLINIC.responsible_user_id},
        timeout=10,
    )
    refused = http.post(
        server.root_url + f"/__sandbox/leads/{lead_id}/edit", json={"status_id": 1}, timeout=10
    )
    shown = http.get(server.root_url + f"/__sandbox/records/leads/{lead_id}", timeout=10)
    counters = http.get(server.root_url + "/__sandbox/writes", timeout=10).json()["writes"]

    assert (
        edited.json()["status_id"] == PRIMARY_OPEN[2]
        and edited.json()["updated_by"] == CLINIC.responsible_user_id
    )
    assert (
        refused.status_code == 422
        and refused.json()["validation-errors"][0]["errors"][0]["path"] == "status_id"
    )
    assert shown.json()["status_id"] == PRIMARY_OPEN[2]
    assert {k: counters.get(k, 0) - before.get(k, 0) for k in ("create", "admin_edit", "leads_add")} == {
        "create": 1,
        "admin_edit": 1,
        "leads_add": 0,
    }


# --- the read side and the extract see writes ---------------------------------------------------------------


def test_the_extract_loads_the_leads_the_api_wrote(server, catalog) -> None:
    from tests.plugins.sources.amocrm.conftest import Conn

    from elt_platform.sources.amocrm.client import AmoCrmClient
    from elt_platform.sources.amocrm.extract import load_interval

    names = [f"extract sees me {i}" for i in range(3)]
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        server.sandbox.rate_limiter = None
        ids = [
            item["id"]
            for item in _send(session, server, "POST", "leads", [{"name": n} for n in names]).json()[
                "_embedded"
            ]["leads"]
        ]
    day = datetime.fromtimestamp(server.dataset.clock, UTC).date()

    with AmoCrmClient.from_connection(Conn(host=server.base_url, password=TOKEN)) as client:
        summary = load_interval(client, day, day + timedelta(days=1), run_id="writes-1", catalog=catalog)

    leads = catalog.load_table("bronze.amocrm_leads").scan().to_arrow().to_pylist()
    assert {row["id"]: row["name"] for row in leads if row["id"] in ids} == dict(zip(ids, names, strict=True))
    assert summary.rows["leads"] == sum(
        1
        for r in server.dataset.records("leads")
        if datetime.fromtimestamp(r["updated_at"], UTC).date() == day
    )

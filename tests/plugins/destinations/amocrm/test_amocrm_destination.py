"""The amoCRM destination client against the sandbox (writes, search, OAuth refresh, the shared budget)
and against a scripted server (answers out of order, refusals, partial failures, masking).

Expected values are what each test sends (names, field values) read back from the sandbox's own state,
or the ids a scripted answer names; never what the client computed.
"""

import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.plugins.http.scripted_server import Reply, ScriptedServer

from elt_platform.destinations.amocrm.client import (
    AmoCrmDestination,
    AmoCrmValidationError,
    ComplexIds,
    PartialWriteError,
    phone_query,
)
from elt_platform.http.errors import PayloadError, ServerError
from elt_platform.sandbox.amocrm.account import (
    CLINIC,
    CLINIC_PRIMARY_PIPELINE,
    RECEPTION_ID_FIELD,
    WON,
)
from elt_platform.sandbox.amocrm.generator import AmoCrmDataset
from elt_platform.sandbox.amocrm.server import DEFAULT_CLIENT_SECRET, AmoCrmSandboxServer
from elt_platform.sources.amocrm.auth import exchange_authorization_code
from elt_platform.sources.amocrm.client import AmoCrmClient

TOKEN = "amocrm-destination-token-3c9d"
NOW = datetime(2024, 7, 1, tzinfo=UTC)
PRIMARY_OPEN = (56_000_011, 56_000_012, 56_000_013, 56_000_014)
REDIRECT = "https://clinic.example.kz/amocrm/callback"


@dataclass
class Conn:
    """The attributes of an Airflow connection the client reads."""

    host: str
    password: str
    login: str | None = None
    extra_dejson: dict[str, Any] = field(default_factory=dict)
    port: int | None = None
    schema: str | None = None


class CountingBudget:
    """A request budget that only counts: the one budget both clients must draw from."""

    def __init__(self) -> None:
        self.taken = 0

    def acquire(self) -> float:
        self.taken += 1
        return 0.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def _no_sleep(seconds: float) -> None:
    """Retries wait for nothing in tests."""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[AmoCrmSandboxServer]:
    dataset = AmoCrmDataset(seed=9, leads=120, start=NOW - timedelta(days=60), now=NOW, clinic=CLINIC)
    with AmoCrmSandboxServer(dataset, long_lived_token=TOKEN) as running:
        yield running


@pytest.fixture
def amo(sandbox: AmoCrmSandboxServer) -> Iterator[AmoCrmDestination]:
    sandbox.set_faults(None)
    sandbox.reset_stats()
    # Each test's client starts with a full budget of its own: the server's 7/s (tested in the sandbox's
    # tests) would refuse one test's first requests after the previous test's last ones.
    sandbox.sandbox.rate_limiter = None
    with AmoCrmDestination.from_connection(Conn(sandbox.base_url, TOKEN), sleep=_no_sleep) as destination:
        yield destination


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


def _scripted_amo(scripted: ScriptedServer, **options: Any) -> AmoCrmDestination:
    batch_size = options.pop("batch_size", 50)
    client = AmoCrmClient(
        scripted.url + "api/v4/", _Bearer(), requests_per_second=None, sleep=_no_sleep, **options
    )
    return AmoCrmDestination(client, batch_size=batch_size)


class _Bearer:
    def apply(self, request: Any) -> None:
        request.headers["Authorization"] = f"Bearer {TOKEN}"

    def secrets(self) -> list[str]:
        return [TOKEN]


def _sent(scripted: ScriptedServer) -> list[list[dict[str, Any]]]:
    return [json.loads(request.body) for request in scripted.received]


# --- writes against the sandbox -----------------------------------------------------------------------------


def test_120_leads_go_in_three_requests_and_ids_come_back_in_input_order(amo, sandbox) -> None:
    names = [f"Приём {i:03d}" for i in range(120)]

    ids = amo.add_leads([{"name": name, "pipeline_id": CLINIC_PRIMARY_PIPELINE} for name in names])

    assert sandbox.stats()["by_route"] == {"leads_add": 3}
    assert len(set(ids)) == 120
    assert [sandbox.dataset.record("leads", lead_id)["name"] for lead_id in ids] == names


def test_update_moves_the_stage_and_sets_the_reception_field(amo, sandbox) -> None:
    ids = amo.add_leads(
        [{"name": "to update 1"}, {"name": "to update 2", "pipeline_id": CLINIC_PRIMARY_PIPELINE}]
    )

    updated = amo.update_leads(
        [
            {"id": ids[1], "status_id": WON},
            {
                "id": ids[0],
                "custom_fields_values": [{"field_id": RECEPTION_ID_FIELD, "values": [{"value": 31}]}],
            },
        ]
    )

    first, second = (sandbox.dataset.record("leads", lead_id) for lead_id in ids)
    assert updated == [ids[1], ids[0]]
    assert (second["pipeline_id"], second["status_id"]) == (CLINIC_PRIMARY_PIPELINE, WON)
    assert first["custom_fields_values"][0]["values"] == [{"value": "31"}]


def test_contacts_are_added_updated_and_found_by_any_spelling_of_their_phone(amo, sandbox) -> None:
    (contact_id,) = amo.add_contacts(
        [
            {
                "name": "Жанар",
                "custom_fields_values": [
                    {"field_code": "PHONE", "values": [{"value": "+7 (747) 555-12-34", "enum_code": "MOB"}]}
                ],
            }
        ]
    )
    amo.update_contacts([{"id": contact_id, "last_name": "Ахметова"}])

    found = {
        spelling: [c["id"] for c in amo.search_contacts(spelling)]
        for spelling in ("8 747 555 12 34", "+77475551234", "7475551234")
    }

    assert found == dict.fromkeys(found, [contact_id])
    assert sandbox.dataset.record("contacts", contact_id)["last_name"] == "Ахметова"


def test_complex_creates_lead_and_contact_per_item_in_input_order(amo, sandbox) -> None:
    items = [
        {"name": f"complex {k}", "_embedded": {"contacts": [{"first_name": f"Пациент {k}"}]}}
        for k in range(3)
    ]

    made = amo.add_complex(items)

    assert [sandbox.dataset.record("leads", m.lead_id)["name"] for m in made] == [
        "complex 0",
        "complex 1",
        "complex 2",
    ]
    assert [sandbox.dataset.record("contacts", m.contact_id)["name"] for m in made] == [
        "Пациент 0",
        "Пациент 1",
        "Пациент 2",
    ]
    assert all(m.company_id is None and not m.merged for m in made)


def test_a_refused_entity_is_named_by_its_input_index_and_earlier_requests_are_reported(amo, sandbox) -> None:
    leads = [{"name": f"batch {i}"} for i in range(60)]
    leads[55] = {"name": "bad", "pipeline_id": 1}

    with pytest.raises(AmoCrmValidationError) as caught:
        amo.add_leads(leads)

    error = caught.value
    assert [(e.index, [(f.code, f.path) for f in e.errors]) for e in error.entities] == [
        (55, [("NotSupportedChoice", "pipeline_id")])
    ]
    assert sorted(error.written) == list(range(50))
    assert [sandbox.dataset.record("leads", error.written[i])["name"] for i in range(50)] == [
        f"batch {i}" for i in range(50)
    ]
    assert "batch 51" not in {lead["name"] for lead in sandbox.dataset.records("leads")}


def test_a_429_on_a_write_is_retried_and_writes_once(amo, sandbox) -> None:
    sandbox.set_faults(next_429=1, routes=["leads_add"])
    before = sandbox.writes()["leads_add"]

    ids = amo.add_leads([{"name": f"after 429 {i}"} for i in range(5)])

    assert sandbox.stats()["by_status"] == {"429": 1, "200": 1}
    assert sandbox.writes()["leads_add"] - before == 5
    assert [sandbox.dataset.record("leads", i)["name"] for i in ids] == [f"after 429 {i}" for i in range(5)]


def test_a_server_error_on_an_add_is_not_repeated_but_on_an_update_it_is(amo, sandbox) -> None:
    (lead_id,) = amo.add_leads([{"name": "retry rules"}])
    sandbox.set_faults(next_500=2, routes=["leads_add", "leads_update"])  # the add's, then the update's
    before = sandbox.writes().get("leads_add", 0)

    with pytest.raises(ServerError, match="not repeated"):
        amo.add_leads([{"name": "may have run"}])
    updated = amo.update_leads([{"id": lead_id, "price": 900}])

    assert sandbox.writes().get("leads_add", 0) == before
    # The add: 200, then 500 once (not repeated); the update: 500, then 200 on its retry.
    assert Counter(sandbox.stats()["by_status"]) == Counter({"200": 2, "500": 2})
    assert sandbox.stats()["by_route"] == {"leads_add": 2, "leads_update": 2}
    assert (updated, sandbox.dataset.record("leads", lead_id)["price"]) == ([lead_id], 900)


# --- search and account setup ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def receptions(sandbox: AmoCrmSandboxServer) -> dict[str, int]:
    reception = [{"field_id": RECEPTION_ID_FIELD, "values": [{"value": 770_314}]}]
    open_lead, won_lead = sandbox.dataset.create(
        "leads",
        [
            {
                "name": "open reception",
                "pipeline_id": CLINIC_PRIMARY_PIPELINE,
                "custom_fields_values": reception,
            },
            {
                "name": "won reception",
                "pipeline_id": CLINIC_PRIMARY_PIPELINE,
                "status_id": WON,
                "custom_fields_values": reception,
            },
        ],
    )
    return {"open": open_lead, "won": won_lead}


def test_search_leads_by_reception_id_in_open_stages_only(amo, receptions) -> None:
    everywhere = amo.search_leads("770314")
    in_open = amo.search_leads("770314", statuses=[(CLINIC_PRIMARY_PIPELINE, s) for s in PRIMARY_OPEN])
    in_pipeline = amo.search_leads("770314", pipeline_ids=[CLINIC_PRIMARY_PIPELINE])

    assert [lead["id"] for lead in everywhere] == [receptions["open"], receptions["won"]]
    assert [lead["id"] for lead in in_open] == [receptions["open"]]
    assert [lead["id"] for lead in in_pipeline] == [receptions["open"], receptions["won"]]
    assert all("contacts" in lead["_embedded"] for lead in everywhere)


def test_leads_by_ids_returns_the_existing_ones(amo, sandbox, receptions) -> None:
    ids = [receptions["won"], 39_999_999, receptions["open"]]

    found = amo.leads_by_ids(ids)

    assert [lead["id"] for lead in found] == sorted([receptions["open"], receptions["won"]])
    assert sandbox.stats()["by_route"] == {"leads": 1}


def test_a_search_without_match_is_an_empty_list(amo, sandbox) -> None:
    assert amo.search_contacts("+7 700 000 00 01") == []
    assert sandbox.stats()["by_status"] == {"204": 1}


def test_account_setup_reads_match_the_sandbox_account(amo, sandbox) -> None:
    pipelines = {p["id"]: p["name"] for p in amo.pipelines()}
    lead_fields = {f["id"] for f in amo.lead_custom_fields()}
    phone = [f["id"] for f in amo.contact_custom_fields() if f["code"] == "PHONE"]

    assert pipelines == {p.id: p.name for p in sandbox.dataset.pipelines}
    assert lead_fields == {f["id"] for f in sandbox.dataset.custom_fields["leads"]} >= set(range(801, 808))
    assert phone == [601]
    assert [u["id"] for u in amo.users()] == [u.id for u in sandbox.dataset.users]


def test_a_phone_search_is_logged_masked(amo, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="elt_platform.http.client"):
        amo.search_contacts("8 (701) 765-43-21")

    # The client's own lines (the sandbox's access log is the test double's, not ours).
    logged = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("elt_platform"))
    assert "7654321" not in logged and "765-43" not in logged
    assert "query=***21" in logged


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        ("8 (701) 123-45-67", "77011234567"),
        ("+7 701 123 45 67", "77011234567"),
        ("87011234567", "77011234567"),
        ("7011234567", "77011234567"),
        ("  +7(701)1234567 ", "77011234567"),
        ("12-34", "12-34"),  # too short for a national number: as typed
        ("+44 20 7946 0958", "+44 20 7946 0958"),  # 12 digits: not a KZ/RU number
        ("Иванова", "Иванова"),
    ],
)
def test_phone_query_sends_full_numbers_as_country_code_and_national_digits(typed, sent) -> None:
    assert phone_query(typed) == sent


# --- one budget, one token store ------------------------------------------------------------------------


def test_the_sync_and_the_extract_draw_from_one_budget(sandbox) -> None:
    sandbox.sandbox.rate_limiter = None
    budget = CountingBudget()
    conn = Conn(sandbox.base_url, TOKEN)

    with AmoCrmDestination.from_connection(conn, budget=budget) as amo:
        amo.add_leads([{"name": f"budget {i}"} for i in range(120)])
    after_writes = budget.taken
    with AmoCrmClient.from_connection(conn, budget=budget) as extract:
        extract.get("account")

    assert (after_writes, budget.taken) == (3, 4)


@pytest.fixture
def state_store(tmp_path):
    from elt_platform.state.store import StateStore

    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.upgrade()
    yield store
    store.close()


def test_an_expired_token_during_writes_is_refreshed_once_and_the_write_goes_through(state_store) -> None:
    clock = FakeClock()
    dataset = AmoCrmDataset(seed=2, leads=20, start=NOW - timedelta(days=10), now=NOW, clinic=CLINIC)
    with AmoCrmSandboxServer(dataset, redirect_uri=REDIRECT, token_clock=clock) as server:
        conn = Conn(
            server.base_url,
            DEFAULT_CLIENT_SECRET,
            login=server.client_id,
            extra_dejson={"redirect_uri": REDIRECT},
        )
        exchange_authorization_code(conn, server.issue_authorization_code(REDIRECT), store=state_store)
        with AmoCrmDestination.from_connection(conn, store=state_store, sleep=_no_sleep) as amo:
            first = amo.add_leads([{"name": "before expiry"}])
            server.reset_stats()
            clock.now += 86_400  # the access token expires on the server's clock
            second = amo.add_leads([{"name": f"after expiry {i}"} for i in range(60)])

        stats = server.stats()
        names = [dataset.record("leads", i)["name"] for i in first + second]

    assert stats["by_route"] == {"leads_add": 3, "oauth": 1}
    assert stats["by_status"] == {"401": 1, "200": 3}
    assert names == ["before expiry"] + [f"after expiry {i}" for i in range(60)]


# --- against a scripted server --------------------------------------------------------------------------


def test_ids_follow_request_ids_not_the_order_of_the_answer(scripted) -> None:
    answer = {
        "_embedded": {
            "leads": [
                {"id": 103, "request_id": "2"},
                {"id": 101, "request_id": "0"},
                {"id": 102, "request_id": "1"},
            ]
        }
    }
    scripted.script(Reply(200, answer, content_type="application/hal+json"))
    leads = [{"name": "a"}, {"name": "b"}, {"name": "c"}]

    with _scripted_amo(scripted) as amo:
        ids = amo.add_leads(leads)

    assert ids == [101, 102, 103]
    assert _sent(scripted) == [[{"name": n, "request_id": str(i)} for i, n in enumerate("abc")]]
    assert leads == [{"name": "a"}, {"name": "b"}, {"name": "c"}]  # the caller's dicts are left alone


def test_complex_answers_are_matched_by_every_request_id_of_an_item(scripted) -> None:
    answer = [
        {"id": 9, "contact_id": 19, "company_id": None, "request_id": ["1", "2"], "merged": True},
        {"id": 8, "contact_id": 18, "company_id": 28, "request_id": ["0"], "merged": False},
    ]
    scripted.script(Reply(200, answer, content_type="application/hal+json"))

    with _scripted_amo(scripted) as amo:
        made = amo.add_complex([{"name": "x"}, {"name": "y"}, {"name": "y again"}])

    assert made == [
        ComplexIds(8, 18, 28, False),
        ComplexIds(9, 19, None, True),
        ComplexIds(9, 19, None, True),
    ]


def test_an_answer_missing_a_request_id_is_a_payload_error(scripted) -> None:
    scripted.script(Reply(200, {"_embedded": {"leads": [{"id": 1, "request_id": "0"}]}}))

    with _scripted_amo(scripted) as amo, pytest.raises(PayloadError, match="1 of the 2 sent are missing"):
        amo.add_leads([{"name": "a"}, {"name": "b"}])


def test_a_refusal_in_a_later_request_names_the_input_index_and_masks_phones(scripted) -> None:
    refusal = {
        "validation-errors": [
            {
                "request_id": "2",
                "errors": [
                    {
                        "code": "InvalidValue",
                        "path": "custom_fields_values.0.values.0.value",
                        "detail": "+7 701 123 45 67 is not valid",
                    }
                ],
            }
        ],
        "title": "Bad Request",
        "type": "https://httpstatus.es/400",
        "status": 400,
        "detail": "Request validation failed",
    }
    scripted.script(
        Reply(
            200, {"_embedded": {"contacts": [{"id": 41, "request_id": "0"}, {"id": 42, "request_id": "1"}]}}
        ),
        Reply(400, refusal, content_type="application/problem+json"),
    )

    with _scripted_amo(scripted, batch_size=2) as amo, pytest.raises(AmoCrmValidationError) as caught:
        amo.add_contacts([{"name": f"c{i}"} for i in range(3)])

    error = caught.value
    (entity,) = error.entities
    assert (entity.index, error.written) == (2, {0: 41, 1: 42})
    assert entity.errors[0].detail == "***67 is not valid"
    assert "701 123" not in str(error) and "7011234567" not in str(error)
    assert [len(body) for body in _sent(scripted)] == [2, 1]


def test_a_server_failure_after_an_earlier_request_is_a_partial_write(scripted) -> None:
    scripted.script(
        Reply(200, {"_embedded": {"leads": [{"id": 7, "request_id": "0"}]}}),
        Reply(503, {"title": "Service Unavailable", "status": 503}, content_type="application/problem+json"),
    )

    with (
        _scripted_amo(scripted, batch_size=1, max_retries=1) as amo,
        pytest.raises(PartialWriteError) as caught,
    ):
        amo.add_leads([{"name": "a"}, {"name": "b"}])

    assert caught.value.written == {0: 7}
    assert isinstance(caught.value.cause, ServerError)
    assert scripted.count == 3  # one request, then the second and its one retry


def test_an_update_without_ids_is_refused_before_anything_is_sent(scripted) -> None:
    with _scripted_amo(scripted) as amo, pytest.raises(ValueError, match="first at index 1"):
        amo.update_leads([{"id": 5, "price": 1}, {"price": 2}])

    assert scripted.count == 0

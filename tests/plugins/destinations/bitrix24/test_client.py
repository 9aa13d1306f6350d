"""Bitrix24Client against the scripted server: calls, error bodies, limits, batches, lists and look-ups."""

import logging

import pytest
from tests.plugins.destinations.bitrix24.conftest import (
    DOCS,
    REAL,
    TOKEN,
    Conn,
    batch_answer,
    recorded,
    sent,
    webhook,
)
from tests.plugins.http.scripted_server import Reply, ScriptedServer, fixture_bytes

from elt_platform.destinations.bitrix24.client import Bitrix24Client
from elt_platform.destinations.bitrix24.commands import add
from elt_platform.destinations.bitrix24.errors import (
    NOT_EXECUTED,
    Bitrix24AuthError,
    Bitrix24BatchInterrupted,
    Bitrix24MethodError,
    Bitrix24OperationLimitError,
)
from elt_platform.http.errors import (
    AuthError,
    BannedError,
    CircuitOpenError,
    PayloadError,
    RateLimitedError,
    RequestError,
)
from elt_platform.http.limits import LocalBreaker

#: Documented bodies (docs system-errors.md / limits.md); no public recording of them exists.
QUERY_LIMIT = {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
OPERATION_LIMIT = {
    "error": "OPERATION_TIME_LIMIT",
    "error_description": "Method is blocked due to operation time limit.",
}
NO_AUTH = {"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization data"}
SCOPE = {
    "error": "insufficient_scope",
    "error_description": "The request requires higher privileges than provided by the webhook token",
}
OVERLOAD = {"error": "OVERLOAD_LIMIT", "error_description": "REST API is blocked due to overload"}


def test_call_posts_json_to_the_method_and_returns_its_result(client, server: ScriptedServer) -> None:
    server.script(Reply(200, fixture_bytes(f"bitrix24/{DOCS}/crm.deal.list.200.json")))

    result = client.call("crm.deal.list", {"filter": {"CATEGORY_ID": 1}, "select": ["ID", "STAGE_ID"]})

    assert [deal["ID"] for deal in result] == [
        d["ID"] for d in recorded(f"{DOCS}/crm.deal.list.200.json")["result"]
    ]
    (request,) = server.received
    assert (request.method, request.path) == ("POST", f"/rest/1/{TOKEN}/crm.deal.list.json")
    assert sent(request) == {"filter": {"CATEGORY_ID": 1}, "select": ["ID", "STAGE_ID"]}


@pytest.mark.parametrize(
    "fixture",
    [
        "crm.deal.list.400.json",
        "crm.contact.list.400.json",
        "crm.status.list.400.json",
        "crm.duplicate.findbycomm.400.json",
    ],
    ids=["empty-code", "empty-code-access-denied", "free-text-code", "free-text-code-2"],
)
def test_an_error_body_raises_a_method_error_with_bitrix24s_code(
    client, server: ScriptedServer, fixture: str
) -> None:
    server.script(Reply(400, fixture_bytes(f"bitrix24/{DOCS}/{fixture}")))
    expected = recorded(f"{DOCS}/{fixture}")

    with pytest.raises(Bitrix24MethodError) as caught:
        client.call("crm.deal.list")

    error = caught.value
    assert (error.code, error.description, error.method, error.status) == (
        expected["error"],
        expected["error_description"],
        "crm.deal.list",
        400,
    )
    assert isinstance(error, RequestError)
    assert server.count == 1  # a refused request is not retried


def test_query_limit_exceeded_is_retried_by_the_http_layer(client, server, budget, slept) -> None:
    server.script(
        Reply(503, QUERY_LIMIT), Reply(200, fixture_bytes(f"bitrix24/{DOCS}/crm.deal.list.200.json"))
    )

    result = client.call("crm.deal.list")

    assert len(result) == recorded(f"{DOCS}/crm.deal.list.200.json")["total"]
    assert server.count == 2
    assert budget.calls == 2  # every attempt draws from the portal's budget
    assert len(slept) == 1  # one backoff


@pytest.mark.parametrize(
    ("headers", "pause"), [({}, 600.0), ({"Retry-After": "30"}, 30.0)], ids=["pause", "retry-after"]
)
def test_operation_time_limit_waits_then_tries_the_method_once_more(
    client, server: ScriptedServer, slept: list, headers: dict, pause: float
) -> None:
    server.script(
        Reply(429, OPERATION_LIMIT, headers=headers),
        Reply(200, fixture_bytes(f"bitrix24/{DOCS}/crm.duplicate.findbycomm.200.json")),
    )

    result = client.call("crm.duplicate.findbycomm", {"type": "PHONE", "values": ["+77011234567"]})

    assert result == recorded(f"{DOCS}/crm.duplicate.findbycomm.200.json")["result"]
    assert slept == [pause]
    assert server.count == 2


def test_operation_time_limit_gives_up_and_refuses_the_method_while_it_is_blocked(
    server: ScriptedServer,
) -> None:
    now = [1000.0]
    slept: list[float] = []
    server.script(Reply(429, OPERATION_LIMIT))
    client = Bitrix24Client(
        webhook(server), sleep=slept.append, clock=lambda: now[0], operation_limit_pause=120
    )

    with pytest.raises(Bitrix24OperationLimitError) as caught:
        client.call("crm.deal.list")
    assert isinstance(caught.value, RateLimitedError)
    assert (caught.value.code, caught.value.method, caught.value.attempts) == (
        "OPERATION_TIME_LIMIT",
        "crm.deal.list",
        2,
    )
    assert (server.count, slept) == (2, [120.0])

    with pytest.raises(Bitrix24OperationLimitError, match="not sent"):
        client.call("crm.deal.list")
    assert server.count == 2  # refused here: the method is blocked

    server.script(Reply(200, {"result": [], "total": 0}))
    assert client.call("crm.lead.list") == []  # other methods keep working
    now[0] += 121
    assert client.call("crm.deal.list") == []  # and the method again once the pause is over
    client.close()


@pytest.mark.parametrize(
    ("status", "body", "code", "hint"),
    [
        (401, NO_AUTH, "NO_AUTH_FOUND", "check the crm_bitrix24 connection"),
        (403, SCOPE, "insufficient_scope", "scope"),
        (403, fixture_bytes(f"bitrix24/{DOCS}/crm.contact.list.400.json"), "", "CRM rights"),
    ],
    ids=["401-no-auth", "403-scope", "403-empty-code"],
)
def test_auth_errors_are_not_retried_and_say_what_to_check(
    client, server: ScriptedServer, status: int, body: object, code: str, hint: str
) -> None:
    server.script(Reply(status, body))

    with pytest.raises(Bitrix24AuthError) as caught:
        client.call("crm.deal.list")

    assert isinstance(caught.value, AuthError)
    assert (caught.value.status, caught.value.code) == (status, code)
    assert hint in str(caught.value)
    assert server.count == 1


def test_the_webhook_token_never_reaches_errors_reprs_or_logs(
    client, server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.script(Reply(200, {"result": [], "total": 0}), Reply(401, NO_AUTH))

    client.call("crm.deal.list")
    with pytest.raises(Bitrix24AuthError) as caught:
        client.batch({"a": add("lead", {"TITLE": "x", "PHONE": [{"VALUE": "+77011234567"}]})})

    texts = [caplog.text, str(caught.value), repr(caught.value.__dict__), repr(client)]
    assert [TOKEN in text for text in texts] == [False] * len(texts)
    assert "/rest/1/***/crm.deal.list.json" in caplog.text  # the request lines are there, masked


def test_overload_limit_opens_the_breaker_and_stops_every_call(server: ScriptedServer) -> None:
    breaker = LocalBreaker("bitrix24:test")
    server.script(Reply(503, OVERLOAD))

    with Bitrix24Client(webhook(server), limits=(None, breaker), sleep=lambda _: None) as client:
        with pytest.raises(BannedError):
            client.call("crm.deal.list")
        with pytest.raises(CircuitOpenError):
            client.call("crm.lead.list")

    assert server.count == 1  # not retried, and nothing sent once the breaker is open


def _ids_answer(keys: list[str], first_id: int) -> dict:
    return batch_answer({key: first_id + index for index, key in enumerate(keys)})


def test_batch_of_120_commands_is_three_calls_of_at_most_50(client, server: ScriptedServer) -> None:
    commands = {f"lead{i}": add("lead", {"TITLE": f"#{i}"}) for i in range(120)}
    keys = list(commands)
    server.script(
        *(Reply(200, _ids_answer(keys[start : start + 50], 1000 + start)) for start in (0, 50, 100))
    )

    results = client.batch(commands)

    assert server.count == 3
    cmds = [sent(request)["cmd"] for request in server.received]
    assert [len(cmd) for cmd in cmds] == [50, 50, 20]
    assert [key for cmd in cmds for key in cmd] == keys
    assert cmds[0]["lead1"] == "crm.lead.add?fields%5BTITLE%5D=%231"
    assert {sent(request)["halt"] for request in server.received} == {0}
    assert {key: result.unwrap() for key, result in results.items()} == {
        key: 1000 + i for i, key in enumerate(keys)
    }


def test_batch_with_halt_sends_no_call_after_a_failure(client, server: ScriptedServer) -> None:
    commands = {f"lead{i}": add("lead", {"TITLE": f"#{i}"}) for i in range(60)}
    error = {"error": "", "error_description": "Не заполнено обязательное поле"}
    server.script(Reply(200, batch_answer({f"lead{i}": 500 + i for i in range(3)}, errors={"lead3": error})))

    results = client.batch(commands, halt=True)

    assert server.count == 1 and sent(server.received[0])["halt"] == 1
    assert [results[f"lead{i}"].result for i in range(3)] == [500, 501, 502]
    assert results["lead3"].error.description == error["error_description"]
    assert {results[f"lead{i}"].error.code for i in range(4, 60)} == {NOT_EXECUTED}


def test_a_call_failing_after_others_ran_keeps_their_results(client, server: ScriptedServer) -> None:
    commands = {f"lead{i}": add("lead", {"TITLE": f"#{i}"}) for i in range(110)}
    keys = list(commands)
    refusal = {"error": "ERROR_BATCH_LENGTH_EXCEEDED", "error_description": "Max batch length exceeded"}
    server.script(Reply(200, _ids_answer(keys[:50], 1000)), Reply(400, refusal))

    with pytest.raises(Bitrix24BatchInterrupted) as caught:
        client.batch(commands)

    results = caught.value.results
    assert list(results) == keys
    assert [results[key].result for key in keys[:50]] == list(range(1000, 1050))  # they ran: ids kept
    assert {results[key].error.code for key in keys[50:100]} == {""}  # the failed call
    assert refusal["error"] in results[keys[50]].error.description
    assert {results[key].error.code for key in keys[100:]} == {NOT_EXECUTED}  # never sent
    assert isinstance(caught.value.__cause__, Bitrix24MethodError)
    assert server.count == 2


def test_batch_places_a_real_error_list_on_its_commands(client, server: ScriptedServer) -> None:
    body = recorded(f"{REAL}/crm_get_batch_mix_success_and_errors.json")
    server.script(Reply(200, body))

    results = client.batch({key: ("crm.lead.get", {"ID": int(key)}) for key in ("0", "1", "35943")})

    errors = body["result"]["result_error"]
    assert results["35943"].unwrap() == body["result"]["result"]["35943"]
    assert [results[key].error.description for key in ("0", "1")] == [e["error_description"] for e in errors]


def _lead_pages(total: int) -> list[dict]:
    """``total`` leads in 50-record pages: real recorded leads, renumbered so every id is distinct."""
    leads = recorded(f"{REAL}/crm_lead_list_one_page_success.json")["result"]
    records = [{**leads[i % len(leads)], "ID": str(100 + i)} for i in range(total)]
    return [records[start : start + 50] for start in range(0, total, 50)]


def test_list_all_follows_next_page_by_page(client, server: ScriptedServer) -> None:
    pages = _lead_pages(120)
    server.script(
        Reply(200, {"result": pages[0], "next": 50, "total": 120}),
        Reply(200, {"result": pages[1], "next": 100, "total": 120}),
        Reply(200, {"result": pages[2], "total": 120}),
    )

    leads = list(
        client.list_all("crm.lead.list", select=["ID", "TITLE"], order={"ID": "ASC"}, batch_pages=False)
    )

    assert [lead["ID"] for lead in leads] == [lead["ID"] for page in pages for lead in page]
    assert [sent(r)["start"] for r in server.received] == [0, 50, 100]
    assert {tuple(sent(r)["select"]) for r in server.received} == {("ID", "TITLE")}


def test_list_all_fetches_the_pages_after_the_first_in_one_batch(client, server: ScriptedServer) -> None:
    pages = _lead_pages(120)
    server.script(
        Reply(200, {"result": pages[0], "next": 50, "total": 120}),
        Reply(
            200,
            batch_answer(
                {"page_50": pages[1], "page_100": pages[2]},
                totals={"page_50": 120, "page_100": 120},
                nexts={"page_50": 100},
            ),
        ),  # noqa: E501
    )

    leads = list(client.list_all("crm.lead.list", filter={">ID": 0}, order={"ID": "ASC"}))

    assert [lead["ID"] for lead in leads] == [lead["ID"] for page in pages for lead in page]
    assert server.count == 2
    assert sent(server.received[1])["cmd"] == {
        "page_50": "crm.lead.list?filter%5B%3EID%5D=0&order%5BID%5D=ASC&start=50",
        "page_100": "crm.lead.list?filter%5B%3EID%5D=0&order%5BID%5D=ASC&start=100",
    }


def test_a_next_that_never_ends_stops_the_walk(client, server: ScriptedServer, monkeypatch) -> None:
    monkeypatch.setattr("elt_platform.destinations.bitrix24.client.MAX_PAGES", 2)
    server.script(Reply(200, {"result": [{"ID": "1"}], "next": 1}))

    with pytest.raises(PayloadError, match="still a next page after 2 pages"):
        list(client.list_all("crm.lead.list", batch_pages=False))

    assert server.count == 3  # the first page, then two more


def test_deal_categories_read_the_wrapped_list_without_next(client, server: ScriptedServer) -> None:
    body = recorded(f"{REAL}/crm_category_list.json")
    server.script(Reply(200, body))

    categories = client.deal_categories()

    assert [c["id"] for c in categories] == [c["id"] for c in body["result"]["categories"]]
    assert len(categories) == body["total"]  # 52 in one answer: no next, no second request
    assert server.count == 1 and sent(server.received[0])["entityTypeId"] == 2


@pytest.mark.parametrize(
    ("read", "entity"),
    [
        (lambda c: c.deal_stages(0), "DEAL_STAGE"),
        (lambda c: c.deal_stages(2), "DEAL_STAGE_2"),
        (lambda c: c.lead_statuses(), "STATUS"),
    ],
    ids=["default-pipeline", "pipeline-2", "lead-statuses"],
)
def test_dictionaries_are_read_from_crm_status_list(
    client, server: ScriptedServer, read, entity: str
) -> None:
    body = recorded(f"{DOCS}/crm.status.list.200.json")
    server.script(Reply(200, body))

    statuses = read(client)

    assert [s["STATUS_ID"] for s in statuses] == [s["STATUS_ID"] for s in body["result"]]
    (request,) = server.received
    assert request.path.endswith("/crm.status.list.json")
    assert sent(request)["filter"] == {"ENTITY_ID": entity}


def test_find_by_phone_asks_one_command_per_phone_and_type(client, server: ScriptedServer) -> None:
    contacts = recorded(f"{DOCS}/crm.duplicate.findbycomm.200.json")["result"]
    server.script(
        Reply(
            200,
            batch_answer({"p0_CONTACT": contacts, "p0_LEAD": [], "p1_CONTACT": [], "p1_LEAD": {"LEAD": [7]}}),
        )
    )

    found = client.find_by_phone(["8 (701) 123-45-67", "+7 702 000 00 01", "+77011234567"])

    assert found == {
        "8 (701) 123-45-67": {"CONTACT": sorted(contacts["CONTACT"]), "LEAD": []},
        "+7 702 000 00 01": {"CONTACT": [], "LEAD": [7]},
        "+77011234567": {"CONTACT": sorted(contacts["CONTACT"]), "LEAD": []},
    }
    (request,) = server.received
    assert sent(request)["cmd"] == {
        "p0_CONTACT": "crm.duplicate.findbycomm?type=PHONE&values%5B0%5D=%2B77011234567&entity_type=CONTACT",
        "p0_LEAD": "crm.duplicate.findbycomm?type=PHONE&values%5B0%5D=%2B77011234567&entity_type=LEAD",
        "p1_CONTACT": "crm.duplicate.findbycomm?type=PHONE&values%5B0%5D=%2B77020000001&entity_type=CONTACT",
        "p1_LEAD": "crm.duplicate.findbycomm?type=PHONE&values%5B0%5D=%2B77020000001&entity_type=LEAD",
    }


def test_find_by_phone_refuses_a_non_phone_without_quoting_it(client, server: ScriptedServer) -> None:
    with pytest.raises(ValueError) as caught:
        client.find_by_phone(["+77011234567", "12-34"])

    assert "#1" in str(caught.value) and "12-34" not in str(caught.value)
    assert server.count == 0


def test_deals_by_field_looks_up_50_values_per_command_and_follows_a_long_answer(
    client, server: ScriptedServer
) -> None:
    values = [f"F1_{n}" for n in range(60)]  # 50 in the first command, 10 in the second
    recorded_deals = recorded(f"{DOCS}/crm.deal.list.200.json")["result"]
    # Six real deals, given external ids: two of F1_3, one of F1_7, F1_55, F1_59 and one of no value asked.
    owners = ["F1_3", "F1_3", "F1_7", "F1_99", "F1_55", "F1_59"]
    deals = [
        {**deal, "UF_CRM_EXTERNAL_ID": owner} for deal, owner in zip(recorded_deals, owners, strict=False)
    ]
    first, second = deals[:4], deals[4:]
    server.script(
        Reply(200, batch_answer({"v0": first[:2], "v1": second}, totals={"v0": 4, "v1": 2}, nexts={"v0": 2})),
        Reply(200, {"result": first[2:], "total": 4}),
    )

    found = client.deals_by_field("UF_CRM_EXTERNAL_ID", values, select=["TITLE"])

    ids = {value: [d["ID"] for d in items] for value, items in found.items() if items}
    assert ids == {
        "F1_3": [deals[0]["ID"], deals[1]["ID"]],
        "F1_7": [deals[2]["ID"]],
        "F1_55": [deals[4]["ID"]],
        "F1_59": [deals[5]["ID"]],
    }
    assert set(found) == set(values)
    batch_request, page_request = server.received
    assert sent(batch_request)["cmd"]["v1"] == (
        "crm.deal.list?"
        + "&".join(f"filter%5B%40UF_CRM_EXTERNAL_ID%5D%5B{i}%5D=F1_{50 + i}" for i in range(10))
        + "&select%5B0%5D=ID&select%5B1%5D=UF_CRM_EXTERNAL_ID&select%5B2%5D=TITLE&order%5BID%5D=ASC"
    )
    assert sent(page_request)["start"] == 2
    assert sent(page_request)["filter"] == {"@UF_CRM_EXTERNAL_ID": values[:50]}


def test_from_connection_charges_the_portals_shared_budget(server: ScriptedServer, state_store) -> None:
    from sqlalchemy import select

    from elt_platform.state.schema import request_budgets

    server.script(Reply(200, {"result": [], "total": 0}))
    conn = Conn(host=f"{server.url}rest/1/", extra_dejson={"requests_per_second": 5, "burst": 250})

    with Bitrix24Client.from_connection(connection=conn, store=state_store) as client:
        client.call("crm.deal.list")

    host = server.url.split("//", 1)[1].rstrip("/")
    assert client.account == f"bitrix24:{host}"
    with state_store.transaction(write=False) as db:
        row = db.execute(select(request_budgets).where(request_budgets.c.account == client.account)).one()
    assert (row.rate, row.burst) == (5.0, 250)
    assert sent(server.received[0]) == {}

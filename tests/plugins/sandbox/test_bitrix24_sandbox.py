"""The Bitrix24 sandbox over real HTTP: webhook auth, PHP-style and JSON parameters, old-style list paging,
duplicate search by phone, multi-field updates, batch with ``$result``, both ``result_error`` shapes, the
leaky bucket, faults, the admin API and the seeded generator; shapes compared with real recorded bodies
from ``../shared/fixtures/bitrix24``.
"""

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from elt_platform.http.auth import WebhookUrl
from elt_platform.http.client import HttpClient
from elt_platform.http.errors import RequestError
from elt_platform.sandbox.bitrix24.app import Bitrix24Sandbox
from elt_platform.sandbox.bitrix24.faults import CommandFailure
from elt_platform.sandbox.bitrix24.generator import populate
from elt_platform.sandbox.bitrix24.phones import normalize_phone
from elt_platform.sandbox.bitrix24.php import dumps, parse_query
from elt_platform.sandbox.bitrix24.portal import Portal
from elt_platform.sandbox.bitrix24.server import Bitrix24SandboxServer

TOKEN = "b24-test-webhook-5f2a9c"
#: The portal clock: 2024-07-03 14:46:40 +05:00.
NOW = 1_720_000_000.0
STORED_PHONE = "+7 701 123 45 67"
NO_AUTH = {"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization data"}


def _fixtures() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file() and (parent / "plugins").is_dir():
            return (parent / ".." / "shared" / "fixtures" / "bitrix24").resolve()
    raise RuntimeError("no repository root above the test")


def fixture(relative: str) -> Any:
    """A real recorded Bitrix24 body (``b24-rest-docs/…`` or ``fast_bitrix24_real_responses/…``)."""
    path = _fixtures() / relative
    if not path.is_file():
        pytest.fail(f"shared fixture missing: {path} (the ../shared/fixtures checkout is required)")
    return json.loads(path.read_text(encoding="utf-8"))


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def server() -> Iterator[Bitrix24SandboxServer]:
    with Bitrix24SandboxServer(token=TOKEN, clock=lambda: NOW) as running:
        yield running


@pytest.fixture
def b24(server: Bitrix24SandboxServer) -> Bitrix24SandboxServer:
    server.portal.clear()
    server.portal.strict_findbycomm = False
    server.set_faults(None)
    server.set_bitrix_faults()
    server.reset_stats()
    server.sandbox.rate_limiter = None  # the bucket has its own tests; the others must not meet it
    return server


def post(b24: Bitrix24SandboxServer, method: str, body: Any = None, **kwargs: Any) -> requests.Response:
    """POST a JSON body to ``<webhook>/<method>``."""
    return requests.post(b24.webhook_url + method, json=body, timeout=10, **kwargs)


def result(b24: Bitrix24SandboxServer, method: str, body: Any = None) -> Any:
    response = post(b24, method, body)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def batch(b24: Bitrix24SandboxServer, commands: dict[str, str], halt: int = 0) -> dict[str, Any]:
    return result(b24, "batch", {"halt": halt, "cmd": commands})


def command(method: str, params: dict[str, Any]) -> str:
    """One batch command, its query string form-encoded as a client builds it."""
    return f"{method}?{urlencode(params)}"


# --- auth and parameters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "token", "status"),
    [("1", TOKEN, 200), ("2", TOKEN, 401), ("1", TOKEN + "x", 401)],
    ids=["right", "wrong-user", "wrong-token"],
)
def test_webhook_path_is_the_credential(
    b24: Bitrix24SandboxServer, user: str, token: str, status: int
) -> None:
    response = requests.post(f"{b24.root_url}/rest/{user}/{token}/crm.status.list.json", timeout=10)

    assert response.status_code == status
    if status == 401:
        assert response.json() == NO_AUTH


@pytest.mark.parametrize(
    "send",
    [
        lambda url: requests.get(
            url, params={"filter[UF_CRM_IDENT_ID]": "F1_7", "select[]": ["ID", "TITLE"]}
        ),
        lambda url: requests.post(url, data=[("filter[UF_CRM_IDENT_ID]", "F1_7"), ("select[]", "ID")]),
        lambda url: requests.post(
            url, json={"filter": {"UF_CRM_IDENT_ID": "F1_7"}, "select": ["ID", "TITLE"]}
        ),
        lambda url: requests.post(url + "?filter[UF_CRM_IDENT_ID]=F1_7", json={"select": ["ID"]}),
    ],
    ids=["get-query", "post-form", "post-json", "query-plus-json"],
)
def test_php_style_and_json_parameters_select_the_same_deal(b24: Bitrix24SandboxServer, send: Any) -> None:
    wanted = b24.seed_deal(TITLE="Приём", CATEGORY_ID=2, UF_CRM_IDENT_ID="F1_7")
    b24.seed_deal(TITLE="Другой", CATEGORY_ID=2, UF_CRM_IDENT_ID="F1_8")

    body = send(b24.webhook_url + "crm.deal.list.json").json()

    assert [deal["ID"] for deal in body["result"]] == [str(wanted)]
    assert body["total"] == 1


@pytest.mark.parametrize(
    "send",
    [
        lambda url: requests.post(
            url,
            data=[
                ("fields[NAME]", "Айгерим"),
                ("fields[PHONE][0][VALUE]", STORED_PHONE),
                ("fields[PHONE][0][VALUE_TYPE]", "MOBILE"),
            ],
        ),
        lambda url: requests.post(
            url,
            json={"FIELDS": {"NAME": "Айгерим", "PHONE": [{"VALUE": STORED_PHONE, "VALUE_TYPE": "MOBILE"}]}},
        ),
    ],
    ids=["form", "json-upper-case-key"],
)
def test_a_contact_added_with_nested_fields_stores_its_phone(b24: Bitrix24SandboxServer, send: Any) -> None:
    contact_id = send(b24.webhook_url + "crm.contact.add").json()["result"]

    contact = b24.portal.record("contact", contact_id)
    assert contact is not None
    assert (contact["NAME"], contact["HAS_PHONE"]) == ("Айгерим", "Y")
    assert [(p["VALUE"], p["VALUE_TYPE"], p["TYPE_ID"]) for p in contact["PHONE"]] == [
        (STORED_PHONE, "MOBILE", "PHONE")
    ]


def test_an_unknown_method_is_the_real_404(b24: Bitrix24SandboxServer) -> None:
    response = post(b24, "crm.deal.explode")

    assert response.status_code == 404
    assert response.json() == {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"}


# --- lists ----------------------------------------------------------------------------------------------


def test_a_list_pages_by_50_with_next_and_total(b24: Bitrix24SandboxServer) -> None:
    clinic = [b24.seed_deal(CATEGORY_ID=2, TITLE=f"Приём {n}") for n in range(123)]
    for n in range(7):
        b24.seed_deal(CATEGORY_ID=0, TITLE=f"Прочее {n}")
    expected_pages = math.ceil(len(clinic) / 50)
    pages, ids, start = [], [], 0
    for _ in range(expected_pages + 2):  # bounded: a list that never ends must fail, not hang
        body = post(b24, "crm.deal.list", {"filter": {"CATEGORY_ID": 2}, "start": start}).json()
        pages.append((len(body["result"]), body["total"], body.get("next")))
        ids += [int(deal["ID"]) for deal in body["result"]]
        if "next" not in body:
            break
        start = body["next"]

    assert [size for size, _, _ in pages] == [50] * (expected_pages - 1) + [
        len(clinic) - 50 * (expected_pages - 1)
    ]
    assert [total for _, total, _ in pages] == [len(clinic)] * expected_pages
    assert [nxt for _, _, nxt in pages] == [50 * (n + 1) for n in range(expected_pages - 1)] + [None]
    assert ids == clinic


@pytest.mark.parametrize(
    ("list_filter", "titles"),
    [
        ({"=STAGE_ID": "C2:WON"}, ["Б"]),
        ({"!STAGE_ID": "C2:WON"}, ["А", "В"]),
        ({"@STAGE_ID": ["C2:WON", "C2:LOSE"]}, ["Б", "В"]),
        ({">OPPORTUNITY": 15000}, ["Б"]),
        ({"<=OPPORTUNITY": 15000}, ["А", "В"]),
        ({"%TITLE": "б"}, ["Б"]),
        ({"uf_crm_branch": "Есиль", "UF_CRM_BRANCH": "Есиль"}, ["А", "Б"]),
        ({"UF_CRM_NOT_DECLARED": "x"}, ["А", "Б", "В"]),
    ],
    ids=["equal", "not", "in", "greater", "at-most", "contains", "user-field", "unknown-field-ignored"],
)
def test_list_filters_read_prefixes_the_old_api_way(
    b24: Bitrix24SandboxServer, list_filter: dict[str, Any], titles: list[str]
) -> None:
    b24.seed_deal(TITLE="А", CATEGORY_ID=2, OPPORTUNITY=15000, UF_CRM_BRANCH="Есиль")
    b24.seed_deal(TITLE="Б", CATEGORY_ID=2, STAGE_ID="C2:WON", OPPORTUNITY=20000.5, UF_CRM_BRANCH="Есиль")
    b24.seed_deal(TITLE="В", CATEGORY_ID=2, STAGE_ID="C2:LOSE", OPPORTUNITY=0, UF_CRM_BRANCH="Нура")

    deals = result(b24, "crm.deal.list", {"filter": list_filter, "order": {"TITLE": "ASC"}})

    assert [deal["TITLE"] for deal in deals] == titles


def test_select_and_order_shape_the_list(b24: Bitrix24SandboxServer) -> None:
    first = b24.seed_deal(TITLE="Первая", OPPORTUNITY=100, UF_CRM_DOCTOR="Ким")
    second = b24.seed_deal(TITLE="Вторая", OPPORTUNITY=900, UF_CRM_DOCTOR="Оспанова")

    deals = result(
        b24, "crm.deal.list", {"select": ["TITLE", "UF_CRM_DOCTOR"], "order": {"OPPORTUNITY": "DESC"}}
    )

    assert deals == [
        {"ID": str(second), "TITLE": "Вторая", "UF_CRM_DOCTOR": "Оспанова"},
        {"ID": str(first), "TITLE": "Первая", "UF_CRM_DOCTOR": "Ким"},
    ]


def test_a_list_answer_has_the_recorded_envelope_and_string_values(b24: Bitrix24SandboxServer) -> None:
    recorded = fixture("b24-rest-docs/crm.deal.list.200.json")
    b24.seed_deal(TITLE="[А] Сделка", CATEGORY_ID=2, OPPORTUNITY="19999.99")

    body = post(b24, "crm.deal.list", {"select": list(recorded["result"][0])}).json()

    assert set(body) == set(recorded)  # one page: result, total, time — no next
    assert set(recorded["time"]) <= set(body["time"])
    assert set(body["result"][0]) == set(recorded["result"][0])
    assert all(value is None or isinstance(value, str) for value in body["result"][0].values())
    assert body["result"][0]["OPPORTUNITY"] == "19999.99"


@pytest.mark.parametrize(
    ("entity", "recorded_path", "portal_specific"),
    [
        ("deal", "b24-rest-docs/crm.deal.get.200.json", {"PARENT_ID_1220", "UF_CRM_1721244482250"}),
        ("lead", "fast_bitrix24_real_responses/call_single_success.json", set()),
    ],
)
def test_get_shows_the_recorded_fields(
    b24: Bitrix24SandboxServer, entity: str, recorded_path: str, portal_specific: set[str]
) -> None:
    recorded = fixture(recorded_path)["result"]
    recorded = recorded["result"]["order0"] if "result" in recorded else recorded
    entity_id = b24.portal.seed(entity, {"TITLE": "Запись"})

    shown = result(b24, f"crm.{entity}.get", {"id": entity_id})

    assert set(recorded) - portal_specific <= set(shown)


# --- duplicate search -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("searched", "matches"),
    [
        ("87011234567", True),
        ("8 (701) 123-45-67", True),
        ("+77011234567", True),
        ("+7(701)1234567", True),
        ("7011234567", False),  # ten digits: Bitrix24 does not add the country code
        ("+7 701 123 45 68", False),
    ],
)
def test_findbycomm_matches_phone_spellings_as_bitrix24_normalises_them(
    b24: Bitrix24SandboxServer, searched: str, matches: bool
) -> None:
    contact = b24.seed_contact(NAME="Асель", PHONE=[{"VALUE": STORED_PHONE}])
    lead = b24.seed_lead(TITLE="Звонок", PHONE=[{"VALUE": "8 701 123 4567"}])

    response = post(b24, "crm.duplicate.findbycomm", {"type": "PHONE", "values": [searched]})

    if matches:
        assert response.json()["result"] == {"LEAD": [lead], "CONTACT": [contact]}
    else:
        assert response.content.startswith(b'{"result":[],')  # PHP's empty array


def test_findbycomm_entity_type_limits_the_search_and_ids_are_integers(b24: Bitrix24SandboxServer) -> None:
    recorded = fixture("b24-rest-docs/crm.duplicate.findbycomm.200.json")
    contacts = [b24.seed_contact(EMAIL=[{"VALUE": "Patient@Mail.ru"}]) for _ in range(2)]
    b24.seed_lead(EMAIL=[{"VALUE": "patient@mail.ru"}])

    body = post(
        b24,
        "crm.duplicate.findbycomm",
        {"type": "EMAIL", "values": [" patient@MAIL.ru "], "entity_type": "CONTACT"},
    ).json()

    assert set(body) == set(recorded)
    assert body["result"] == {"CONTACT": contacts}


@pytest.mark.parametrize(("strict", "status"), [(False, 200), (True, 400)], ids=["real", "strict"])
def test_findbycomm_beyond_20_values(b24: Bitrix24SandboxServer, strict: bool, status: int) -> None:
    b24.portal.strict_findbycomm = strict
    contact = b24.seed_contact(PHONE=[{"VALUE": STORED_PHONE}])
    others = [f"+7 777 000 00 {n:02d}" for n in range(20)]

    response = post(b24, "crm.duplicate.findbycomm", {"type": "PHONE", "values": [*others, STORED_PHONE]})

    assert response.status_code == status
    if not strict:  # the real method looks at the first 20 values only: the 21st is never searched
        assert response.json()["result"] == []
    assert b24.portal.record("contact", contact) is not None  # it exists: the limit hid it


@pytest.mark.parametrize(
    ("body", "recorded_path"),
    [
        ({"values": ["87011234567"]}, "b24-rest-docs/crm.duplicate.findbycomm.400.json"),
        ({"filter": "UF_CRM_IDENT_ID=1"}, "b24-rest-docs/crm.deal.list.400.json"),
    ],
    ids=["findbycomm-without-type", "list-with-scalar-filter"],
)
def test_method_errors_are_the_recorded_bodies(
    b24: Bitrix24SandboxServer, body: dict[str, Any], recorded_path: str
) -> None:
    method = "crm.duplicate.findbycomm" if "values" in body else "crm.deal.list"

    response = post(b24, method, body)

    assert response.status_code == 400
    assert response.json() == fixture(recorded_path)


# --- writes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (lambda old: [{"VALUE": STORED_PHONE}], [STORED_PHONE, STORED_PHONE]),
        (lambda old: [{"ID": old, "VALUE": "+7 707 000 11 22"}], ["+7 707 000 11 22"]),
        (lambda old: [{"ID": old, "VALUE": ""}], []),
        (lambda old: [{"VALUE": "+7 707 000 11 22"}], [STORED_PHONE, "+7 707 000 11 22"]),
        (lambda old: [{"ID": "999999", "VALUE": "+7 707 000 11 22"}], [STORED_PHONE]),
    ],
    ids=[
        "resent-without-id-duplicates",
        "with-id-changes",
        "with-id-and-empty-deletes",
        "new-adds",
        "foreign-id",
    ],
)
def test_phone_update_semantics(b24: Bitrix24SandboxServer, items: Any, expected: list[str]) -> None:
    contact_id = b24.seed_contact(NAME="Дана", PHONE=[{"VALUE": STORED_PHONE}])
    old = result(b24, "crm.contact.get", {"id": contact_id})["PHONE"][0]["ID"]

    assert result(b24, "crm.contact.update", {"id": contact_id, "fields": {"PHONE": items(old)}}) is True

    contact = result(b24, "crm.contact.get", {"id": contact_id})
    assert [phone["VALUE"] for phone in contact.get("PHONE", [])] == expected
    assert contact["HAS_PHONE"] == ("Y" if expected else "N")


@pytest.mark.parametrize(
    ("method", "body", "description"),
    [
        ("crm.deal.update", {"id": 0, "fields": {}}, "ID is not defined or invalid."),
        ("crm.deal.update", {"id": 999_999, "fields": {"TITLE": "x"}}, "Not found"),
        ("crm.deal.get", {"id": "abc"}, "ID is not defined or invalid."),
        ("crm.deal.add", {"fields": {"CATEGORY_ID": 2, "STAGE_ID": "WON"}}, None),
        ("crm.deal.add", {"fields": "TITLE=x"}, "Parameter 'fields' must be array."),
    ],
    ids=["zero-id", "missing", "text-id", "stage-of-another-funnel", "scalar-fields"],
)
def test_write_errors_carry_an_empty_code(
    b24: Bitrix24SandboxServer, method: str, body: dict[str, Any], description: str | None
) -> None:
    response = post(b24, method, body)

    assert response.status_code == 400
    assert response.json()["error"] == ""
    if description is not None:
        assert response.json()["error_description"] == description


def test_deal_update_ignores_category_unknown_user_fields_and_read_only_fields(
    b24: Bitrix24SandboxServer,
) -> None:
    deal_id = b24.seed_deal(CATEGORY_ID=2, TITLE="Приём")
    fields = {
        "CATEGORY_ID": 0,
        "UF_CRM_UNKNOWN": "x",
        "DATE_CREATE": "2020-01-01",
        "STAGE_ID": "C2:PREPARATION",
    }

    result(b24, "crm.deal.update", {"id": deal_id, "fields": fields})

    deal = result(b24, "crm.deal.get", {"id": deal_id})
    assert (deal["CATEGORY_ID"], deal["STAGE_ID"], deal["STAGE_SEMANTIC_ID"]) == ("2", "C2:PREPARATION", "P")
    assert "UF_CRM_UNKNOWN" not in deal
    assert deal["DATE_CREATE"] == "2024-07-03T14:46:40+05:00"


@pytest.mark.parametrize(
    ("stage", "semantic", "closed"),
    [("C2:NEW", "P", "N"), ("C2:WON", "S", "Y"), ("C2:LOSE", "F", "Y"), ("C2:APOLOGY", "F", "Y")],
)
def test_a_deal_stage_sets_its_semantic_group(
    b24: Bitrix24SandboxServer, stage: str, semantic: str, closed: str
) -> None:
    deal_id = result(b24, "crm.deal.add", {"fields": {"CATEGORY_ID": 2, "STAGE_ID": stage}})

    deal = b24.portal.record("deal", deal_id)

    assert deal is not None
    assert (deal["STAGE_SEMANTIC_ID"], deal["CLOSED"], deal["TITLE"]) == (
        semantic,
        closed,
        f"Сделка #{deal_id}",
    )


# --- funnels and dictionaries ---------------------------------------------------------------------------

FUNNELS = {
    0: ["NEW", "PREPARATION", "PREPAYMENT_INVOICE", "EXECUTING", "FINAL_INVOICE", "WON", "LOSE", "APOLOGY"],
    2: [
        "C2:NEW",
        "C2:PREPARATION",
        "C2:PREPAYMENT_INVOICE",
        "C2:EXECUTING",
        "C2:UC_W4LIST",
        "C2:FINAL_INVOICE",
        "C2:WON",
        "C2:LOSE",
        "C2:APOLOGY",
    ],
}


@pytest.mark.parametrize("category", sorted(FUNNELS))
def test_stage_lists_per_funnel_agree(b24: Bitrix24SandboxServer, category: int) -> None:
    entity_id = "DEAL_STAGE" if category == 0 else f"DEAL_STAGE_{category}"

    stages = result(b24, "crm.dealcategory.stage.list", {"id": category})
    statuses = result(b24, "crm.status.list", {"filter": {"ENTITY_ID": entity_id}, "order": {"SORT": "ASC"}})

    assert [stage["STATUS_ID"] for stage in stages] == FUNNELS[category]
    assert [status["STATUS_ID"] for status in statuses] == FUNNELS[category]
    assert [stage["SORT"] for stage in stages] == [10 * (n + 1) for n in range(len(FUNNELS[category]))]


def test_the_default_funnel_matches_the_documented_status_list(b24: Bitrix24SandboxServer) -> None:
    recorded = fixture("b24-rest-docs/crm.status.list.200.json")
    compared = (
        "ENTITY_ID",
        "STATUS_ID",
        "NAME",
        "NAME_INIT",
        "SORT",
        "SYSTEM",
        "CATEGORY_ID",
        "SEMANTICS",
        "EXTRA",
    )

    statuses = result(b24, "crm.status.list", {"filter": {"ENTITY_ID": "DEAL_STAGE"}})

    assert [set(status) for status in statuses] == [set(status) for status in recorded["result"]]
    assert [[s[k] for k in compared] for s in statuses] == [
        [s[k] for k in compared] for s in recorded["result"]
    ]


def test_stage_list_of_a_batch_of_one_is_a_php_list(b24: Bitrix24SandboxServer) -> None:
    request = fixture("fast_bitrix24_real_responses/crm_dealcategory_stage_list_batch_of_one.request.json")
    recorded = fixture("fast_bitrix24_real_responses/crm_dealcategory_stage_list_batch_of_one.json")["result"]

    answer = result(b24, "batch", request)

    assert {part: type(value) for part, value in answer.items()} == {
        part: type(value) for part, value in recorded.items()
    }
    assert [set(stage) for stage in answer["result"][0]] == [set(stage) for stage in recorded["result"][0]]
    assert [stage["STATUS_ID"] for stage in answer["result"][0]] == FUNNELS[0]


def test_dealcategory_list_omits_the_default_funnel(b24: Bitrix24SandboxServer) -> None:
    categories = post(b24, "crm.dealcategory.list").json()

    assert [(c["ID"], c["NAME"]) for c in categories["result"]] == [("2", "Клиника")]
    assert categories["total"] == 1


def test_deal_user_fields_are_listed_with_labels_on_request(b24: Bitrix24SandboxServer) -> None:
    plain = result(b24, "crm.deal.userfield.list")
    labelled = result(
        b24, "crm.deal.userfield.list", {"filter": {"LANG": "ru", "FIELD_NAME": "UF_CRM_IDENT_ID"}}
    )

    assert "UF_CRM_IDENT_ID" in [field["FIELD_NAME"] for field in plain]
    assert all("EDIT_FORM_LABEL" not in field for field in plain)
    assert [(f["FIELD_NAME"], f["ENTITY_ID"], f["EDIT_FORM_LABEL"]) for f in labelled] == [
        ("UF_CRM_IDENT_ID", "CRM_DEAL", "ID записи iDent")
    ]


# --- batch ----------------------------------------------------------------------------------------------


def test_batch_substitutes_earlier_results(b24: Bitrix24SandboxServer) -> None:
    commands = {
        "contact": command(
            "crm.contact.add", {"fields[NAME]": "Мадина", "fields[PHONE][0][VALUE]": "+77015550000"}
        ),
        "deal": command(
            "crm.deal.add",
            {"fields[CONTACT_ID]": "$result[contact]", "fields[CATEGORY_ID]": 2, "fields[TITLE]": "К"},
        ),
        "read": command("crm.deal.get", {"id": "$result[deal]"}),
        "found": command("crm.duplicate.findbycomm", {"type": "PHONE", "values[]": "87015550000"}),
        "again": command("crm.contact.get", {"id": "$result[found][CONTACT][0]"}),
        "title": command(
            "crm.deal.update", {"id": "$result[deal]", "fields[COMMENTS]": "к $result[read][TITLE]"}
        ),
    }

    answer = batch(b24, commands)

    contact_id = answer["result"]["contact"]
    assert answer["result"]["read"]["CONTACT_ID"] == str(contact_id)
    assert answer["result"]["again"]["ID"] == str(contact_id)
    assert b24.portal.find("deal", ID=answer["result"]["deal"])[0]["COMMENTS"] == "к К"
    assert answer["result_error"] == []


def test_batch_answer_has_the_documented_parts(b24: Bitrix24SandboxServer) -> None:
    recorded = fixture("b24-rest-docs/batch.200.json")
    deal_id = b24.seed_deal(TITLE="Один")

    body = post(b24, "batch", {"cmd": {"one": f"crm.deal.get?id={deal_id}", "all": "crm.deal.list"}}).json()

    assert set(body) == set(recorded)
    assert set(body["result"]) == set(recorded["result"])
    assert body["result"]["result_total"] == {"all": 1}
    assert (body["result"]["result_error"], body["result"]["result_next"]) == ([], [])
    assert set(recorded["result"]["result_time"]["get_user"]) <= set(body["result"]["result_time"]["one"])


@pytest.mark.parametrize("as_list", [False, True], ids=["documented-object", "captured-list"])
def test_failed_batch_commands_land_in_result_error(b24: Bitrix24SandboxServer, as_list: bool) -> None:
    recorded = fixture("fast_bitrix24_real_responses/crm_get_batch_mix_success_and_errors.json")["result"]
    b24.set_bitrix_faults(batch_errors_as_list=as_list)
    lead = b24.seed_lead(TITLE="Есть")

    answer = batch(
        b24, {"ok": f"crm.lead.get?id={lead}", "bad": "crm.lead.get?id=0", "gone": "crm.lead.get?id=99999"}
    )

    assert list(answer["result"]) == ["ok"]
    expected_errors = recorded["result_error"]  # ID is not defined or invalid. / Not found, empty codes
    assert answer["result_error"] == (
        expected_errors if as_list else dict(zip(["bad", "gone"], expected_errors, strict=True))
    )
    assert list(answer["result_time"]) == ["ok"]


def test_batch_halt_stops_at_the_first_error(b24: Bitrix24SandboxServer) -> None:
    answer = batch(
        b24,
        {
            "first": "crm.contact.add?fields[NAME]=A",
            "bad": "crm.lead.get?id=0",
            "never": "crm.contact.add?fields[NAME]=B",
        },
        halt=1,
    )

    assert list(answer["result"]) == ["first"]
    assert list(answer["result_error"]) == ["bad"]
    assert [c["NAME"] for c in b24.snapshot()["contacts"]] == ["A"]


@pytest.mark.parametrize(
    ("commands", "status", "code"),
    [
        ({f"c{n}": "crm.status.list" for n in range(51)}, 400, "ERROR_BATCH_LENGTH_EXCEEDED"),
        ({"inner": "batch?cmd[a]=crm.status.list"}, 200, "ERROR_BATCH_METHOD_NOT_ALLOWED"),
    ],
    ids=["51-commands", "nested-batch"],
)
def test_batch_limits(b24: Bitrix24SandboxServer, commands: dict[str, str], status: int, code: str) -> None:
    response = post(b24, "batch", {"cmd": commands})

    assert response.status_code == status
    error = response.json() if status != 200 else response.json()["result"]["result_error"]["inner"]
    assert error["error"] == code


# --- limits and faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("plan", "burst", "drain"), [("standard", 50, 2), ("enterprise", 250, 5)])
def test_leaky_bucket_refuses_beyond_the_burst_then_drains(
    b24: Bitrix24SandboxServer, plan: str, burst: int, drain: int
) -> None:
    clock = FakeClock()
    b24.sandbox.rate_limiter = Bitrix24Sandbox(
        Portal(), token="t", plan=plan, rate_limit_clock=clock
    ).rate_limiter
    url = b24.webhook_url + "crm.dealcategory.list"
    with requests.Session() as session:
        first = [session.post(url, timeout=10) for _ in range(burst + 3)]
        clock.now = 1.5
        second = [session.post(url, timeout=10).status_code for _ in range(int(1.5 * drain) + 2)]

    assert [r.status_code for r in first] == [200] * burst + [503] * 3
    assert first[-1].json() == {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
    assert second == [200] * int(1.5 * drain) + [503] * 2
    assert b24.stats()["faults"]["rate_limited"] == 5


def test_a_batch_spends_one_request_of_the_bucket(b24: Bitrix24SandboxServer) -> None:
    b24.sandbox.rate_limiter = Bitrix24Sandbox(
        Portal(), token="t", burst=2, rate_limit_clock=FakeClock()
    ).rate_limiter
    full = {f"c{n}": "crm.dealcategory.list" for n in range(50)}

    statuses = [post(b24, "batch", {"cmd": full}).status_code for _ in range(3)]

    assert statuses == [200, 200, 503]
    assert b24.command_counts()["batch_commands"] == {"crm.dealcategory.list": 100}


@pytest.mark.parametrize(
    ("switch", "status", "body"),
    [
        (
            {"next_500": 1},
            500,
            {"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"},
        ),
        ({"next_429": 1}, 503, {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}),
        (
            {"fail_at": 2, "fail_with": "500"},
            500,
            {"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"},
        ),
    ],
    ids=["5xx", "query-limit", "second-request"],
)
def test_shared_faults_answer_with_bitrix24_bodies(
    b24: Bitrix24SandboxServer, switch: dict[str, Any], status: int, body: dict[str, str]
) -> None:
    b24.set_faults(**switch)

    responses = [post(b24, "crm.status.list") for _ in range(2)]

    failing = responses[switch.get("fail_at", 1) - 1]
    assert (failing.status_code, failing.json()) == (status, body)
    assert [r.status_code for r in responses].count(200) == 1


def test_operation_time_limit_blocks_a_method_alone_and_inside_batch(b24: Bitrix24SandboxServer) -> None:
    b24.set_bitrix_faults(operation_time_limit=["crm.deal.list"])

    alone = post(b24, "crm.deal.list")
    answer = batch(b24, {"blocked": "crm.deal.list", "free": "crm.contact.list"})

    blocked = {
        "error": "OPERATION_TIME_LIMIT",
        "error_description": "Method is blocked due to operation time limit.",
    }
    assert (alone.status_code, alone.json()) == (429, blocked)
    assert answer["result_error"] == {"blocked": blocked}
    assert list(answer["result"]) == ["free"]


@pytest.mark.parametrize(
    ("rule", "failing"),
    [
        (CommandFailure(phone="8 (701) 123-45-67"), ["with_phone", "search"]),
        (CommandFailure(method="crm.contact.add", times=1), ["with_phone"]),
        (CommandFailure(at_command=3), ["plain"]),  # the batch itself is command 1
        (CommandFailure(text="Ерлан"), ["plain"]),
    ],
    ids=["touching-a-phone", "first-add-only", "third-command", "text"],
)
def test_chosen_commands_fail_inside_a_batch(
    b24: Bitrix24SandboxServer, rule: CommandFailure, failing: list[str]
) -> None:
    b24.set_bitrix_faults(fail_commands=[rule])
    commands = {
        "with_phone": command("crm.contact.add", {"fields[PHONE][0][VALUE]": STORED_PHONE}),
        "plain": command("crm.contact.add", {"fields[NAME]": "Ерлан"}),
        "search": command("crm.duplicate.findbycomm", {"type": "PHONE", "values[]": "+77011234567"}),
    }

    answer = batch(b24, commands)

    assert sorted(answer["result_error"]) == sorted(failing)
    assert sorted(answer["result"]) == sorted(set(commands) - set(failing))


# --- admin, log and the in-process API ------------------------------------------------------------------


def test_admin_seed_then_state_reads_what_was_seeded(b24: Bitrix24SandboxServer) -> None:
    seeded = {
        "contacts": [{"NAME": "Сауле", "PHONE": [{"VALUE": STORED_PHONE}]}],
        "deals": [
            {"TITLE": "Приём", "CATEGORY_ID": 2, "STAGE_ID": "C2:FINAL_INVOICE", "UF_CRM_IDENT_ID": "F2_5"}
        ],
    }

    ids = requests.post(f"{b24.root_url}/__sandbox/seed", json=seeded, timeout=10).json()
    state = requests.get(f"{b24.root_url}/__sandbox/state", timeout=10).json()

    assert [c["ID"] for c in state["contacts"]] == [str(i) for i in ids["contacts"]]
    assert [(d["ID"], d["STAGE_ID"], d["UF_CRM_IDENT_ID"]) for d in state["deals"]] == [
        (str(ids["deals"][0]), "C2:FINAL_INVOICE", "F2_5")
    ]
    assert state["contacts"][0]["PHONE"][0]["VALUE"] == STORED_PHONE
    assert (state["leads"], ids["leads"]) == ([], [])
    assert b24.command_counts()["total"] == 0  # seeding is not API traffic


@pytest.mark.parametrize("over_http", [False, True], ids=["python", "http"])
def test_a_person_moves_a_deal_to_a_manual_stage(b24: Bitrix24SandboxServer, over_http: bool) -> None:
    deal_id = b24.seed_deal(CATEGORY_ID=2, STAGE_ID="C2:PREPARATION")

    if over_http:
        edited = requests.post(
            f"{b24.root_url}/__sandbox/deals/{deal_id}/edit", json={"STAGE_ID": "C2:UC_W4LIST"}, timeout=10
        ).json()
    else:
        edited = b24.edit_deal_as_person(deal_id, STAGE_ID="C2:UC_W4LIST")

    assert (edited["STAGE_ID"], edited["MODIFY_BY_ID"], edited["MOVED_BY_ID"]) == ("C2:UC_W4LIST", "7", "7")
    assert b24.command_counts()["total"] == 0


def test_the_command_log_counts_batch_commands_and_shows_a_silent_rerun(b24: Bitrix24SandboxServer) -> None:
    deal_id = b24.seed_deal(TITLE="Приём")
    batch(b24, {str(n): f"crm.deal.get?id={deal_id}" for n in range(3)})
    before = b24.command_counts()
    b24.reset_stats()

    after = b24.command_counts()
    calls = requests.get(
        f"{b24.root_url}/__sandbox/calls", params={"method": "crm.deal.get"}, timeout=10
    ).json()

    assert before == {
        "commands": {"batch": 1, "crm.deal.get": 3},
        "batch_commands": {"crm.deal.get": 3},
        "total": 4,
    }
    assert after == {"commands": {}, "batch_commands": {}, "total": 0}
    assert (calls["total"], calls["log"]) == (0, [])


def test_the_platform_http_client_works_through_the_webhook(b24: Bitrix24SandboxServer) -> None:
    deal_id = b24.seed_deal(TITLE="Приём", UF_CRM_IDENT_ID="F3_77")
    hook = WebhookUrl(b24.webhook_url)
    client = HttpClient(hook.base_url, auth=hook, account="bitrix24:sandbox", max_retries=0)

    page = client.request("POST", "crm.deal.list.json", json={"filter": {"UF_CRM_IDENT_ID": "F3_77"}}).json()
    with pytest.raises(RequestError) as refused:
        client.request("POST", "crm.deal.update.json", json={"id": deal_id + 1, "fields": {"TITLE": "x"}})

    assert [deal["ID"] for deal in page["result"]] == [str(deal_id)]
    assert (refused.value.code, refused.value.detail) == ("", "Not found")


# --- generator, phones and PHP conventions --------------------------------------------------------------


def test_the_generator_is_deterministic_per_seed() -> None:
    def content(seed: int) -> dict[str, Any]:
        portal = Portal(clock=lambda: NOW)
        populate(portal, seed=seed, contacts=60, leads=20, deals=80)
        return portal.snapshot()

    assert content(5) == content(5)
    assert content(5) != content(6)


def test_generated_content_at_benchmark_scale_is_searchable(b24: Bitrix24SandboxServer) -> None:
    code = normalize_phone
    population = populate(b24.portal, seed=3, contacts=2000, leads=300, deals=10_000)
    external, deal_id = sorted(population.ident_ids.items())[len(population.ident_ids) // 2]
    holders_of = {
        phone: [cid for cid, own in population.phones.items() if code(phone) in map(code, own)]
        for phone in population.shared_phones
    }
    shared, holders = next((phone, ids) for phone, ids in holders_of.items() if len(ids) >= 2)

    found = result(b24, "crm.deal.list", {"filter": {"UF_CRM_IDENT_ID": external}, "select": ["ID"]})
    duplicates = result(
        b24, "crm.duplicate.findbycomm", {"type": "PHONE", "values": [shared], "entity_type": "CONTACT"}
    )

    assert b24.portal.counts() == {"contacts": 2000, "leads": 300, "deals": 10_000}
    assert found == [{"ID": str(deal_id)}]
    assert duplicates == {"CONTACT": holders}


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("+7 701 123-45-67", "77011234567"),
        ("8 (701) 123 45 67", "77011234567"),
        ("87011234567", "77011234567"),
        ("7011234567", "7011234567"),
        ("+7 701 1234567 #12", "77011234567"),
        ("8 800 555 35 35", "78005553535"),
        ("8 10 44 20 7946 0958", "810442079460958"),  # 810: the old international prefix, kept
        ("0044 20 7946 0958", "442079460958"),
        ("нет", ""),
    ],
)
def test_phone_match_codes(typed: str, code: str) -> None:
    assert normalize_phone(typed) == code


@pytest.mark.parametrize(
    ("query", "params"),
    [
        ("a=1&a=2", {"a": "2"}),
        ("select[]=ID&select[]=TITLE", {"select": {"0": "ID", "1": "TITLE"}}),
        (
            "fields[PHONE][0][VALUE]=%2B7+701&fields[PHONE][0][VALUE_TYPE]=WORK",
            {"fields": {"PHONE": {"0": {"VALUE": "+7 701", "VALUE_TYPE": "WORK"}}}},
        ),
        (
            "filter[%3EOPPORTUNITY]=5&filter[@ID][]=1&filter[@ID][]=2",
            {"filter": {">OPPORTUNITY": "5", "@ID": {"0": "1", "1": "2"}}},
        ),
        ("cmd[a]=crm.deal.get%3Fid%3D%24result%5Bb%5D", {"cmd": {"a": "crm.deal.get?id=$result[b]"}}),
    ],
)
def test_parameters_parse_like_php(query: str, params: dict[str, Any]) -> None:
    assert parse_query(query) == params


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ({}, b"[]"),
        ({"0": "a", "1": "b"}, b'["a","b"]'),
        ({"1": "a"}, b'{"1":"a"}'),
        ({"x": [], "y": "[B]\u0416[/B]"}, b'{"x":[],"y":"[B]\\u0416[\\/B]"}'),
    ],
    ids=["empty-map", "sequential-keys", "other-keys", "escapes"],
)
def test_answers_encode_like_php(value: Any, encoded: bytes) -> None:
    assert dumps(value) == encoded

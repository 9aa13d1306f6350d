"""The amoCRM sandbox: deterministic data that changes over time, and the API's paging, filters, embeds,
encoding, OAuth, limits, faults and ban answered over real HTTP."""

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import astuple
from datetime import UTC, datetime, timedelta

import pytest
import requests

from elt_platform.sandbox.amocrm.account import LOST, PIPELINES, UNSORTED_TYPE, WON
from elt_platform.sandbox.amocrm.generator import AmoCrmDataset, ListQuery
from elt_platform.sandbox.amocrm.server import AmoCrmSandboxServer
from elt_platform.sandbox.launch import SandboxOptions
from elt_platform.sandbox.launch import amocrm as launch_amocrm
from elt_platform.sandbox.rate_limits import RateLimiter
from elt_platform.sources.alaqan.iin import check_digit

TOKEN = "amocrm-test-token-7c1d"
SECRET = "amocrm-test-secret"
NOW = datetime(2024, 7, 1, tzinfo=UTC)
UNAUTHORIZED = {
    "title": "Unauthorized",
    "type": "https://httpstatus.es/401",
    "status": 401,
    "detail": "Неверный логин или пароль",
}


def _dataset(seed: int = 7, leads: int = 300) -> AmoCrmDataset:
    return AmoCrmDataset(seed=seed, leads=leads, start=NOW - timedelta(days=120), now=NOW)


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def token_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def server(token_clock: FakeClock) -> Iterator[AmoCrmSandboxServer]:
    with AmoCrmSandboxServer(
        _dataset(), client_secret=SECRET, long_lived_token=TOKEN, token_clock=token_clock
    ) as running:
        yield running


@pytest.fixture
def http(server: AmoCrmSandboxServer) -> Iterator[requests.Session]:
    server.set_faults(None)
    server.reset_stats()
    server.ban(False)
    server.sandbox.rate_limiter = None  # the limit has its own test; the others must not meet it
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        yield session


def _get(
    http: requests.Session, server: AmoCrmSandboxServer, path: str, **params: object
) -> requests.Response:
    return http.get(server.base_url + path, params=params, timeout=10)


def _walk(http: requests.Session, server: AmoCrmSandboxServer, path: str, **params: object) -> list[dict]:
    """Follow ``_links.next`` to the end, checking each page's shape on the way."""
    response = _get(http, server, path, **params)
    items, pages = [], 0
    while response.status_code == 200:
        body = response.json()
        pages += 1
        assert body["_page"] == pages
        items += next(iter(body["_embedded"].values()))
        if "next" not in body["_links"]:
            break
        response = http.get(body["_links"]["next"]["href"], timeout=10)
    return items


# --- data ----------------------------------------------------------------------------------------------


def test_same_seed_gives_the_same_account_and_another_seed_does_not() -> None:
    first, second, other = _dataset(seed=3), _dataset(seed=3), _dataset(seed=4)

    assert first.leads_as_of() == second.leads_as_of()
    assert first.events() == second.events()
    assert first.records("contacts", with_=["leads"]) == second.records("contacts", with_=["leads"])
    assert first.leads_as_of() != other.leads_as_of()


@pytest.mark.parametrize("pipeline", PIPELINES, ids=lambda p: p.name)
def test_every_pipeline_has_unsorted_open_won_and_lost_statuses(pipeline) -> None:
    ids = [s.id for s in pipeline.statuses]
    sorts = [s.sort for s in pipeline.statuses]

    assert [s.type for s in pipeline.statuses].count(UNSORTED_TYPE) == 1
    assert ids[-2:] == [WON, LOST]
    assert len(pipeline.open_statuses) >= 2
    assert sorts == sorted(sorts)


def test_leads_cover_the_funnel_and_the_messy_cases() -> None:
    leads = _dataset(leads=1000).leads_as_of()
    statuses = Counter("won" if lead.is_won else "lost" if lead.is_lost else "open" for lead in leads)

    assert all(statuses[kind] > 100 for kind in ("won", "lost", "open"))
    assert any(lead.created_by == 0 for lead in leads)  # came in unsorted from a form
    assert any(lead.is_deleted for lead in leads)
    assert any(lead.price == 0 for lead in leads)
    assert any(lead.company_ids for lead in leads) and any(not lead.company_ids for lead in leads)
    assert all((lead.closed_at is not None) == (lead.is_won or lead.is_lost) for lead in leads)
    assert all(lead.status_history[0].at == lead.created_at for lead in leads)


def test_contacts_carry_messy_phones_and_companies_mostly_valid_bins() -> None:
    dataset = _dataset(leads=1000)
    phones = [
        value["value"]
        for contact in dataset.records("contacts")
        for field in contact["custom_fields_values"] or []
        if field["field_code"] == "PHONE"
        for value in field["values"]
    ]
    bins = [
        field["values"][0]["value"]
        for company in dataset.records("companies")
        for field in company["custom_fields_values"] or []
        if field["field_id"] == 701
    ]
    valid = [b for b in bins if len(b) == 12 and b.isdigit() and check_digit(b[:11]) == int(b[11])]

    assert {p[:2] for p in phones} >= {"+7", "87"} and "" in phones
    assert any(" " in p for p in phones) and any("(" in p for p in phones)
    assert 0.85 < len(valid) / len(bins) < 1.0


def test_status_events_replay_every_leads_stage_history() -> None:
    dataset = _dataset()
    moves: dict[int, list[tuple[int, int, int]]] = {}
    for event in dataset.events(types=["lead_status_changed"]):
        (before,), (after,) = event["value_before"], event["value_after"]
        moves.setdefault(event["entity_id"], []).append(
            (event["created_at"], before["lead_status"]["id"], after["lead_status"]["id"])
        )

    for lead in dataset.leads_as_of():
        history = lead.status_history
        expected = [(b.at, a.status_id, b.status_id) for a, b in zip(history, history[1:], strict=False)]
        assert moves.get(lead.id, []) == expected, lead.id


def test_advancing_the_clock_changes_exactly_the_leads_its_events_name() -> None:
    dataset = _dataset()
    t1 = dataset.clock
    before = {lead.id: lead for lead in dataset.leads_as_of()}
    t2 = int(dataset.advance(NOW + timedelta(days=3)).timestamp())
    after = {lead.id: lead for lead in dataset.leads_as_of()}

    differs = {
        i for i, lead in after.items() if i not in before or astuple(lead)[:-1] != astuple(before[i])[:-1]
    }
    with_events = {
        e["entity_id"] for e in dataset.events(since=t1 + 1, until=t2) if e["entity_type"] == "lead"
    }
    newly_deleted = set(dataset.deleted()["leads"]) - set(dataset.deleted(t1)["leads"])

    assert len(after) > len(before) and differs
    assert with_events == differs
    assert set(dataset.changed("leads", t1 + 1, t2)) == differs - newly_deleted
    assert all(t1 < after[i].updated_at <= t2 for i in differs - newly_deleted)


def test_the_clock_only_moves_forward() -> None:
    dataset = _dataset()
    with pytest.raises(ValueError, match="only moves forward"):
        dataset.advance(NOW - timedelta(seconds=1))


# --- HTTP: pages, filters, embeds, encoding -----------------------------------------------------------


@pytest.mark.parametrize("entity", ["leads", "contacts", "companies", "tasks"])
def test_walking_next_links_returns_every_visible_record_once(http, server, entity) -> None:
    items = _walk(http, server, entity, limit=70)

    assert items == json.loads(json.dumps(server.dataset.records(entity, root=server.root_url)))


def test_next_link_only_while_more_and_empty_page_is_204(http, server) -> None:
    total = len(server.dataset.select("leads", ListQuery()))
    last_page = -(-total // 100)

    last = _get(http, server, "leads", limit=100, page=last_page)
    before_last = _get(http, server, "leads", limit=100, page=last_page - 1)
    beyond = _get(http, server, "leads", limit=100, page=last_page + 1)

    assert set(last.json()["_links"]) == {"self", "first", "prev"}
    assert "next" in before_last.json()["_links"]
    assert (beyond.status_code, beyond.content, beyond.headers.get("content-type")) == (204, b"", None)


@pytest.mark.parametrize(("limit", "status"), [(250, 200), (251, 400), (0, 400), ("x", 400)])
def test_limit_is_at_most_250(http, server, limit, status) -> None:
    response = _get(http, server, "leads", limit=limit)

    assert response.status_code == status
    if status == 400:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["validation-errors"][0]["errors"][0]["path"] == "limit"
    else:
        assert len(response.json()["_embedded"]["leads"]) == 250


def test_updated_at_filter_is_inclusive_and_ordered(http, server) -> None:
    updated = sorted(lead.updated_at for lead in server.dataset.leads_as_of() if not lead.is_deleted)
    low, high = updated[40], updated[120]

    items = _walk(
        http,
        server,
        "leads",
        **{"filter[updated_at][from]": low, "filter[updated_at][to]": high, "order[updated_at]": "asc"},
    )

    stamps = [item["updated_at"] for item in items]
    assert stamps == sorted(stamps) and stamps[0] == low and stamps[-1] == high
    visible = [lead for lead in server.dataset.leads_as_of() if not lead.is_deleted]
    assert {item["id"] for item in items} == {lead.id for lead in visible if low <= lead.updated_at <= high}


def test_events_filter_by_created_at_inclusive_and_type_newest_first(http, server) -> None:
    moves = server.dataset.events(types=["lead_status_changed"])
    low, high = moves[10]["created_at"], moves[60]["created_at"]

    items = _walk(
        http,
        server,
        "events",
        limit=25,
        **{
            "filter[created_at][from]": low,
            "filter[created_at][to]": high,
            "filter[type][]": "lead_status_changed",
        },
    )

    assert [e["id"] for e in items] == [e["id"] for e in reversed(moves) if low <= e["created_at"] <= high]
    assert items[0]["created_at"] == high and items[-1]["created_at"] == low


def test_with_embeds_contacts_in_leads_and_leads_in_contacts(http, server) -> None:
    plain = _get(http, server, "leads", limit=50).json()["_embedded"]["leads"]
    embedded = _get(http, server, "leads", limit=50, **{"with": "contacts,companies"}).json()["_embedded"][
        "leads"
    ]
    contacts = _walk(http, server, "contacts", limit=250, **{"with": "leads"})
    leads_of = {c["id"]: {lead["id"] for lead in c["_embedded"]["leads"]} for c in contacts}

    assert all(set(lead["_embedded"]) == {"tags", "companies"} for lead in plain)
    assert all(set(lead["_embedded"]) == {"tags", "companies", "contacts"} for lead in embedded)
    for lead in server.dataset.leads_as_of():
        for contact_id in lead.contact_ids:
            assert (lead.id in leads_of[contact_id]) == (not lead.is_deleted)


def test_bodies_are_hal_json_with_non_ascii_escaped(http, server) -> None:
    response = _get(http, server, "leads/pipelines")

    assert response.headers["content-type"] == "application/hal+json"
    assert response.content.isascii() and b"\\u041d\\u0435\\u0440\\u0430\\u0437" in response.content  # Нераз…
    assert response.json()["_total_items"] == len(PIPELINES) and "_page" not in response.json()


def test_account_gives_the_time_zone_when_asked(http, server) -> None:
    body = _get(http, server, "account", **{"with": "datetime_settings"}).json()

    assert (body["subdomain"], body["_embedded"]["datetime_settings"]["timezone"]) == (
        "sandbox",
        "Asia/Almaty",
    )


def test_same_seed_gives_the_same_bodies_on_two_servers() -> None:
    bodies = []
    for _ in range(2):
        with AmoCrmSandboxServer(_dataset(seed=11), long_lived_token=TOKEN) as running:
            response = requests.get(
                running.base_url + "leads",
                params={"limit": 250, "with": "contacts"},
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=10,
            )
            bodies.append(response.content.replace(running.root_url.encode(), b"ROOT"))

    assert bodies[0] == bodies[1]


def test_advancing_the_clock_over_http_serves_new_leads_and_their_events() -> None:
    with AmoCrmSandboxServer(_dataset(), long_lived_token=TOKEN) as running, requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        t1 = running.dataset.clock
        advanced = session.post(
            running.root_url + "/__sandbox/clock",
            json={"now": (NOW + timedelta(days=2)).isoformat()},
            timeout=10,
        )
        window = {"filter[updated_at][from]": t1 + 1, "filter[updated_at][to]": running.dataset.clock}
        changed = _walk(session, running, "leads", **window)
        added = _walk(
            session, running, "events", **{"filter[created_at][from]": t1 + 1, "filter[type]": "lead_added"}
        )

        assert advanced.json()["unix"] == int((NOW + timedelta(days=2)).timestamp())
        assert {lead["id"] for lead in changed} == set(
            running.dataset.changed("leads", t1 + 1, running.dataset.clock)
        )
        assert {e["entity_id"] for e in added} <= {lead["id"] for lead in changed} | set(
            running.dataset.deleted()["leads"]
        )
        assert added and all(
            lead["created_at"] > t1 for lead in changed if lead["id"] in {e["entity_id"] for e in added}
        )


# --- HTTP: auth, limits, faults, ban -------------------------------------------------------------------


def _token_request(server: AmoCrmSandboxServer, **fields: str) -> requests.Response:
    body = {
        "client_id": server.client_id,
        "client_secret": SECRET,
        "redirect_uri": "https://example.kz/cb",
        **fields,
    }
    return requests.post(server.oauth_url, data=body, timeout=10)


def test_authorization_code_is_exchanged_once(http, server) -> None:
    code = server.issue_authorization_code()

    first = _token_request(server, grant_type="authorization_code", code=code)
    second = _token_request(server, grant_type="authorization_code", code=code)
    leads = requests.get(
        server.base_url + "leads",
        headers={"Authorization": f"Bearer {first.json()['access_token']}"},
        timeout=10,
    )

    assert first.status_code == 200 and set(first.json()) == {
        "token_type",
        "expires_in",
        "access_token",
        "refresh_token",
    }
    assert (first.json()["token_type"], first.json()["expires_in"]) == ("Bearer", 86400)
    assert leads.status_code == 200
    assert (second.status_code, second.json()["hint"]) == (400, "Authorization code has been revoked")


def test_refresh_tokens_rotate_and_a_used_one_is_refused(http, server) -> None:
    issued = _token_request(
        server, grant_type="authorization_code", code=server.issue_authorization_code()
    ).json()

    rotated = _token_request(server, grant_type="refresh_token", refresh_token=issued["refresh_token"])
    reused = _token_request(server, grant_type="refresh_token", refresh_token=issued["refresh_token"])
    old_access = requests.get(
        server.base_url + "account", headers={"Authorization": f"Bearer {issued['access_token']}"}, timeout=10
    )

    assert rotated.status_code == 200 and rotated.json()["refresh_token"] != issued["refresh_token"]
    assert reused.status_code == 401 and reused.headers["content-type"] == "application/problem+json"
    assert reused.json() == {
        "hint": "Token has been revoked",
        "title": "Некорректный запрос",
        "type": "https://developers.amocrm.ru/v3/errors/OAuthProblemJson",
        "status": 401,
        "detail": "В запросе отсутствует ряд параметров или параметры невалидны",
    }
    assert old_access.status_code == 200  # valid until it expires


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"grant_type": "refresh_token", "refresh_token": "def502-unknown"}, 401),
        ({"grant_type": "authorization_code", "code": "nope"}, 400),
        ({"grant_type": "client_credentials"}, 400),
        ({"grant_type": "authorization_code", "code": "x", "client_secret": "wrong"}, 401),
    ],
)
def test_bad_token_requests_get_the_oauth_problem_body(http, server, fields, status) -> None:
    response = _token_request(server, **fields)

    assert response.status_code == status
    assert response.json()["type"] == "https://developers.amocrm.ru/v3/errors/OAuthProblemJson"


def test_expired_and_unknown_tokens_get_the_real_401_body(http, server, token_clock) -> None:
    access = _token_request(server, grant_type="authorization_code", code=server.issue_authorization_code())
    headers = {"Authorization": f"Bearer {access.json()['access_token']}"}
    token_clock.now += 86_400

    expired = requests.get(server.base_url + "leads", headers=headers, timeout=10)
    unknown = requests.get(server.base_url + "leads", headers={"Authorization": "Bearer nope"}, timeout=10)

    for response in (expired, unknown):
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json() == UNAUTHORIZED


def test_a_burst_beyond_seven_per_second_gets_429(http, server) -> None:
    server.sandbox.rate_limiter = RateLimiter(7, clock=lambda: 0.0)  # frozen time: no slot comes back

    statuses = Counter(_get(http, server, "account").status_code for _ in range(20))
    refused = _get(http, server, "account")

    assert statuses == {200: 7, 429: 13}
    assert refused.headers["content-type"] == "application/problem+json" and "Retry-After" in refused.headers
    assert server.stats()["by_status"] == {"200": 7, "429": 14}


def test_admin_faults_inject_500_then_recover(http, server) -> None:
    configured = requests.put(server.root_url + "/__sandbox/faults", json={"next_500": 1}, timeout=10)

    failed, recovered = _get(http, server, "leads"), _get(http, server, "leads")

    assert configured.status_code == 200
    assert (failed.status_code, failed.json()["status"]) == (500, 500)
    assert recovered.status_code == 200


def test_a_banned_account_gets_nginx_html_403_everywhere(http, server) -> None:
    switched = requests.post(server.root_url + "/__sandbox/ban", json={"banned": True}, timeout=10)

    answers = [
        _get(http, server, "leads"),
        _token_request(server, grant_type="refresh_token", refresh_token="x"),
    ]
    requests.post(server.root_url + "/__sandbox/ban", json={"banned": False}, timeout=10)

    assert switched.json() == {"banned": True}
    for response in answers:
        assert response.status_code == 403 and response.headers["content-type"].startswith("text/html")
        assert "<title>403 Forbidden</title>" in response.text and "nginx" in response.text
    assert _get(http, server, "leads").status_code == 200
    assert server.stats()["by_status"] == {"403": 2, "200": 1}


def test_launcher_points_the_amocrm_connection_at_the_sandbox(monkeypatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_AMOCRM_DEFAULT", raising=False)

    with launch_amocrm(SandboxOptions(seed=5)) as description:
        connection = json.loads(os.environ["AIRFLOW_CONN_AMOCRM_DEFAULT"])
        response = requests.get(
            connection["host"] + "leads/pipelines",
            headers={"Authorization": f"Bearer {connection['password']}"},
            timeout=10,
        )

    assert "2000 leads" in description and connection["extra"] == {"requests_per_second": 7}
    assert response.status_code == 200
    assert "AIRFLOW_CONN_AMOCRM_DEFAULT" not in os.environ

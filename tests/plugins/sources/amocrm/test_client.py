"""AmoCrmClient against local HTTP servers: pages, 204, 429, bans, OAuth refresh and rotation, secrets."""

import json
import logging
import threading
import traceback
from datetime import UTC, datetime, timedelta

import pytest
from tests.plugins.http.scripted_server import Received, Reply, ScriptedServer, fixture_bytes
from tests.plugins.sources.amocrm.conftest import Conn, FakeAmoCrmServer, recorded

from elt_platform.http.accounts import shared_limits
from elt_platform.http.errors import AuthError, BannedError, CircuitOpenError, HttpError, NonJsonError
from elt_platform.sources.amocrm.auth import GrantError, exchange_authorization_code
from elt_platform.sources.amocrm.client import AmoCrmClient
from elt_platform.sources.amocrm.connection import ConnectionConfig
from elt_platform.state.tokens import TokenPair, TokenStore

HAL = "application/hal+json"
PROBLEM = "application/problem+json"
UNAUTHORIZED = fixture_bytes("amocrm/github_issues/error.401.unauthorized.json")
BAN_PAGE = "<html><head><title>403 Forbidden</title></head><body><center><h1>403 Forbidden</h1></center><hr><center>nginx</center></body></html>"  # noqa: E501
LONG_LIVED = "lt-4b1e9a7c55d2f08e"
CLIENT_SECRET = "cs-8d2f61b0a9e4c7"
OLD_ACCESS, OLD_REFRESH = "at-old-0c5e2b9f41", "rt-old-7a93d0e6c2"
NEW_ACCESS, NEW_REFRESH = "at-new-5f18c3e7a0", "rt-new-2b6e94d1f8"


def _page(number: int, *, last: bool) -> dict:
    body = recorded("leads.list.page2.json")
    body["_page"] = number
    if last:
        body["_links"] = {"self": body["_links"]["self"]}
    return body


def _bearer_conn(server_url: str, **extra: object) -> Conn:
    return Conn(host=server_url, password=LONG_LIVED, extra_dejson=dict(extra))


def _oauth_conn(server_url: str) -> Conn:
    return Conn(
        host=server_url,
        login="client-1",
        password=CLIENT_SECRET,
        extra_dejson={"redirect_uri": "https://x/cb"},
    )


def _client(conn: Conn, **kwargs: object) -> AmoCrmClient:
    kwargs.setdefault("sleep", lambda _: None)
    return AmoCrmClient.from_connection(conn, **kwargs)


def _seed(store, conn: Conn, access: str = OLD_ACCESS, refresh: str = OLD_REFRESH) -> TokenStore:
    tokens = TokenStore(store, ConnectionConfig.from_connection(conn).account)
    tokens.save(TokenPair(access, refresh, datetime.now(UTC) + timedelta(hours=12)))
    return tokens


def _token_body(access: str, refresh: str) -> dict:
    return {"token_type": "Bearer", "expires_in": 86400, "access_token": access, "refresh_token": refresh}


def _refused_after_refresh(server: ScriptedServer, state_store, refusal: object) -> AuthError:
    """A stored OAuth pair refused with ``refusal``, refreshed, the new token refused again: the error.

    Returns:
        The :class:`AuthError` walking ``leads`` raised.
    """
    conn = _oauth_conn(server.url)
    _seed(state_store, conn)
    server.script(
        Reply(401, refusal, PROBLEM),
        Reply(200, _token_body(NEW_ACCESS, NEW_REFRESH), "application/json"),
        Reply(401, refusal, PROBLEM),
    )
    with _client(conn, store=state_store) as client, pytest.raises(AuthError) as caught:
        list(client.iter_pages("leads"))
    return caught.value


def test_pages_are_walked_until_a_page_without_next(server: ScriptedServer) -> None:
    server.script(Reply(200, _page(1, last=False), HAL), Reply(200, _page(2, last=True), HAL))

    with _client(_bearer_conn(server.url)) as client:
        pages = list(client.iter_pages("leads", {"with": "contacts,companies"}))
        stats = client.stats

    assert [page.number for page in pages] == [1, 2]
    assert [r.query["page"] for r in server.received] == [["1"], ["2"]]
    assert {r.query["limit"][0] for r in server.received} == {"250"}
    assert server.received[0].query["with"] == ["contacts,companies"]
    assert server.received[0].headers["Authorization"] == f"Bearer {LONG_LIVED}"
    assert (stats.requests, stats.pages, stats.no_content) == (2, 2, 0)


@pytest.mark.parametrize("first_page_has_next", [False, True], ids=["204-first", "204-after-a-page"])
def test_http_204_without_body_ends_the_walk(server: ScriptedServer, first_page_has_next: bool) -> None:
    replies = [Reply(200, _page(1, last=False), HAL)] if first_page_has_next else []
    server.script(*replies, Reply(204, b"", content_type=None), Reply(599, "must not be asked", "text/plain"))

    with _client(_bearer_conn(server.url)) as client:
        pages = list(client.iter_pages("leads"))
        stats = client.stats

    assert pages[-1].status == 204 and pages[-1].content == b"" and pages[-1].json() is None
    assert server.count == len(replies) + 1
    assert stats.no_content == 1


def test_a_page_that_is_not_json_names_its_status(server: ScriptedServer) -> None:
    server.script(Reply(200, "<html><body>Maintenance</body></html>", "text/html"))

    with _client(_bearer_conn(server.url)) as client:
        pages = client.iter_pages("leads")
        page = next(pages)
        assert page.content.startswith(b"<html>")  # the caller had the raw body to land first
        with pytest.raises(NonJsonError, match="200") as caught:
            page.json()

    assert "text/html" in str(caught.value)


def test_429_waits_retry_after_then_succeeds(server: ScriptedServer) -> None:
    slept: list[float] = []
    server.script(
        Reply(429, {"title": "Too Many Requests", "status": 429}, PROBLEM, headers={"Retry-After": "2"}),
        Reply(200, _page(1, last=True), HAL),
    )

    with _client(_bearer_conn(server.url), sleep=slept.append) as client:
        (page,) = client.iter_pages("leads")
        stats = client.stats

    assert page.json()["_page"] == 1
    assert slept == [2.0]
    assert (stats.requests, stats.pages) == (2, 1)


def test_html_403_opens_the_shared_breaker_and_stops_every_client(
    server: ScriptedServer, state_store
) -> None:
    conn = _bearer_conn(server.url)
    account = ConnectionConfig.from_connection(conn).account
    server.script(Reply(403, BAN_PAGE, "text/html"))

    budget, breaker = shared_limits(account, 7, 7, store=state_store)
    with _client(conn, budget=budget, breaker=breaker) as first, pytest.raises(BannedError) as banned:
        list(first.iter_pages("leads"))
    budget, breaker = shared_limits(account, 7, 7, store=state_store)
    with _client(conn, budget=budget, breaker=breaker) as second, pytest.raises(CircuitOpenError) as refused:
        list(second.iter_pages("contacts"))

    assert server.count == 1  # the second client never sent its request
    assert "blocked" in banned.value.reason
    assert account in str(refused.value) and "breaker reset" in str(refused.value)


def test_json_403_is_a_rights_problem_not_a_ban(server: ScriptedServer, state_store) -> None:
    conn = _bearer_conn(server.url)
    budget, breaker = shared_limits(ConnectionConfig.from_connection(conn).account, 7, store=state_store)
    server.script(Reply(403, {"title": "Forbidden", "status": 403, "detail": "Access denied"}, PROBLEM))

    with _client(conn, budget=budget, breaker=breaker) as client, pytest.raises(AuthError) as caught:
        list(client.iter_pages("leads"))

    assert not isinstance(caught.value, BannedError) and "rights" in str(caught.value)
    breaker.check()  # still closed


def test_oauth_401_refreshes_once_through_the_token_store_and_retries(
    server: ScriptedServer, state_store
) -> None:
    conn = _oauth_conn(server.url)
    tokens = _seed(state_store, conn)
    server.script(
        Reply(401, UNAUTHORIZED, PROBLEM),
        Reply(200, _token_body(NEW_ACCESS, NEW_REFRESH), "application/json"),
        Reply(200, _page(1, last=True), HAL),
    )

    with _client(conn, store=state_store) as client:
        (page,) = client.iter_pages("leads")
        stats = client.stats

    api, refresh, retried = server.received
    assert (api.path, refresh.path, retried.path) == (
        "/api/v4/leads",
        "/oauth2/access_token",
        "/api/v4/leads",
    )
    assert json.loads(refresh.body) == {
        "client_id": "client-1",
        "client_secret": CLIENT_SECRET,
        "redirect_uri": "https://x/cb",
        "grant_type": "refresh_token",
        "refresh_token": OLD_REFRESH,
    }
    assert (api.headers["Authorization"], retried.headers["Authorization"]) == (
        f"Bearer {OLD_ACCESS}",
        f"Bearer {NEW_ACCESS}",
    )
    stored = tokens.get()
    assert (stored.access_token, stored.refresh_token) == (NEW_ACCESS, NEW_REFRESH)
    assert page.json()["_page"] == 1 and stats.requests == 3


def test_oauth_still_401_after_the_refresh_is_a_clear_auth_error(server: ScriptedServer, state_store) -> None:
    error = _refused_after_refresh(server, state_store, UNAUTHORIZED)

    assert [r.path for r in server.received].count("/oauth2/access_token") == 1
    assert server.count == 3
    message = str(error)
    assert "after a credential refresh" in message and "elt amocrm-auth" in message
    assert error.status == 401


def test_oauth_without_a_stored_pair_says_to_run_the_auth_step(server: ScriptedServer, state_store) -> None:
    server.script(Reply(599, "must not be asked", "text/plain"))

    with _client(_oauth_conn(server.url), store=state_store) as client, pytest.raises(AuthError) as caught:
        list(client.iter_pages("leads"))

    assert server.count == 0
    assert "no OAuth token pair is stored" in str(caught.value) and "elt amocrm-auth --code" in str(
        caught.value
    )


def test_a_refused_refresh_token_says_to_reauthorise(server: ScriptedServer, state_store) -> None:
    conn = _oauth_conn(server.url)
    tokens = _seed(state_store, conn)
    revoked = {"title": "Некорректный запрос", "status": 400, "hint": "Token has been revoked"}
    server.script(Reply(401, UNAUTHORIZED, PROBLEM), Reply(400, revoked, PROBLEM))

    with (
        _client(conn, store=state_store) as client,
        pytest.raises(GrantError, match="re-authorise") as caught,
    ):
        list(client.iter_pages("leads"))

    assert str(caught.value).count("elt amocrm-auth") == 1

    assert tokens.get().refresh_token == OLD_REFRESH  # nothing stored from a failed refresh


class RotatingAmoCrm:
    """amoCRM's token rules: one valid access token; a refresh token works once, then the grant rotates."""

    def __init__(self, workers: int) -> None:
        self.lock = threading.Lock()
        self.access, self.refresh, self.generation = OLD_ACCESS, OLD_REFRESH, 0
        self.refreshes = 0
        self.spent: set[str] = set()
        # Every worker's first request must see the old token rejected before anyone refreshes.
        self.first_wave = threading.Barrier(workers, timeout=10)

    def route(self, request: Received) -> Reply:
        if request.path == "/oauth2/access_token":
            body = json.loads(request.body)
            with self.lock:
                if body["refresh_token"] != self.refresh or body["refresh_token"] in self.spent:
                    return Reply(
                        400,
                        {"title": "Bad Request", "status": 400, "hint": "Token has been revoked"},
                        PROBLEM,
                    )
                self.spent.add(self.refresh)
                self.refreshes += 1
                self.generation += 1
                self.access, self.refresh = f"at-gen{self.generation}-91c2", f"rt-gen{self.generation}-7e0d"
                return Reply(200, _token_body(self.access, self.refresh), "application/json")
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token == OLD_ACCESS:
            self.first_wave.wait()
        with self.lock:
            valid = token == self.access and self.generation > 0
        if not valid:
            return Reply(401, UNAUTHORIZED, PROBLEM)
        return Reply(200, _page(1, last=True), HAL)


def test_two_workers_rotating_one_refresh_token_refresh_exactly_once(state_store) -> None:
    amocrm = RotatingAmoCrm(workers=2)
    results: dict[int, object] = {}

    def worker(number: int, conn: Conn) -> None:
        try:
            with _client(conn, store=state_store) as client:
                results[number] = [page.json()["_page"] for page in client.iter_pages("leads")]
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results[number] = exc

    with FakeAmoCrmServer(amocrm.route) as fake:
        conn = _oauth_conn(fake.url)
        tokens = _seed(state_store, conn)
        threads = [threading.Thread(target=worker, args=(n, conn)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)

    assert results == {0: [1], 1: [1]}
    assert amocrm.refreshes == 1
    assert fake.paths("POST") == ["/oauth2/access_token"]
    assert tokens.get().access_token == amocrm.access


def test_exchange_authorization_code_stores_the_first_pair(server: ScriptedServer, state_store) -> None:
    conn = _oauth_conn(server.url)
    server.script(
        Reply(200, fixture_bytes("amocrm/ogi4i_amocrm-client/oauth.access_token.json"), "application/json")
    )

    pair = exchange_authorization_code(conn, " def50200code ", store=state_store)

    (sent,) = server.received
    assert sent.path == "/oauth2/access_token"
    assert json.loads(sent.body)["grant_type"] == "authorization_code"
    assert json.loads(sent.body)["code"] == "def50200code"
    stored = TokenStore(state_store, "amocrm:" + server.url.split("/")[2]).get()
    assert (stored.access_token, stored.refresh_token) == ("ACCESS_TOKEN_VALUE", "REFRESH_TOKEN_VALUE")
    assert stored.expires_at is not None and "ACCESS_TOKEN_VALUE" not in repr(pair)


def _exception_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error) + repr(error.args)


def test_tokens_never_reach_logs_or_exceptions(
    server: ScriptedServer, state_store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    oauth_secrets = [CLIENT_SECRET, OLD_ACCESS, OLD_REFRESH, NEW_ACCESS, NEW_REFRESH]
    # Servers that echo credentials into error bodies exist; the echo must be masked too.
    echo = {"title": "Unauthorized", "status": 401, "detail": " ".join(oauth_secrets)}
    errors: list[HttpError] = []

    server.script(Reply(401, {**echo, "detail": f"token {LONG_LIVED} rejected"}, PROBLEM))
    with _client(_bearer_conn(server.url)) as client, pytest.raises(AuthError) as bearer_error:
        list(client.iter_pages("leads"))
    errors.append(bearer_error.value)

    errors.append(_refused_after_refresh(server, state_store, echo))

    conn = _oauth_conn(server.url)
    _seed(state_store, conn)  # a fresh client: what it handles is the client secret and the stored pair
    spent = {"title": "Bad Request", "status": 400, "hint": f"{CLIENT_SECRET} {OLD_ACCESS} {OLD_REFRESH}"}
    server.script(Reply(401, echo, PROBLEM), Reply(400, spent, PROBLEM))
    with _client(conn, store=state_store) as client, pytest.raises(AuthError) as refresh_error:
        list(client.iter_pages("leads"))
    errors.append(refresh_error.value)

    exposed = caplog.text + " ".join(r.getMessage() for r in caplog.records)
    exposed += " ".join(_exception_text(error) for error in errors)
    assert "***" in exposed  # the echoed secrets were there, masked
    for secret in [LONG_LIVED, *oauth_secrets]:
        assert secret not in exposed

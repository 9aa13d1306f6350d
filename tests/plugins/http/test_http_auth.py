"""Auth objects on a real socket: what reaches the server, OAuth refresh-and-retry, no secret in any text."""

import json
import logging
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from tests.plugins.http.budgets import CountingBudget
from tests.plugins.http.scripted_server import Reply, ScriptedServer, fixture_bytes

from elt_platform.http.auth import (
    ApiKeyHeader,
    BearerToken,
    NoAuth,
    OAuth2RefreshingBearer,
    TokenStoreProvider,
    WebhookUrl,
)
from elt_platform.http.client import HttpClient
from elt_platform.http.errors import AuthError, HttpError

NOW = datetime(2025, 1, 30, 12, 0, 0, tzinfo=UTC)
OLD_TOKEN = "old-access-5c1e9b7a2d"
NEW_TOKEN = "new-access-8f3d6a0c4e"
AMOCRM_401 = fixture_bytes("amocrm/github_issues/error.401.unauthorized.json")
BITRIX_REFRESH = json.loads(fixture_bytes("bitrix24/b24-rest-docs/oauth.refresh.200.json"))


class FakeProvider:
    """Hands out ``tokens`` in order: the first as current, the next one per refresh."""

    def __init__(self, *tokens: str) -> None:
        self._tokens = list(tokens)
        self.refreshed_from: list[str] = []

    def current(self) -> str:
        return self._tokens[0]

    def refresh(self, stale_access_token: str) -> str:
        self.refreshed_from.append(stale_access_token)
        if len(self._tokens) > 1:
            self._tokens.pop(0)
        return self._tokens[0]


def _bearer(server: ScriptedServer, auth: object, **kwargs: object) -> HttpClient:
    options = {"account": "amocrm:127.0.0.1", "max_retries": 2, "sleep": lambda _: None, **kwargs}
    return HttpClient(server.url, auth=auth, **options)


def _sent_tokens(server: ScriptedServer) -> list[str]:
    return [request.headers["Authorization"] for request in server.received]


@pytest.mark.parametrize(
    ("auth", "header", "value"),
    [
        (ApiKeyHeader("X-Api-Key", "k-123456"), "X-Api-Key", "k-123456"),
        (BearerToken("long-lived-token"), "Authorization", "Bearer long-lived-token"),
        (OAuth2RefreshingBearer(FakeProvider(OLD_TOKEN)), "Authorization", f"Bearer {OLD_TOKEN}"),
    ],
    ids=["api-key", "bearer", "oauth"],
)
def test_credential_reaches_the_server(server: ScriptedServer, auth: object, header: str, value: str) -> None:
    server.script(Reply(200, b"{}"))

    with _bearer(server, auth) as client:
        client.request("GET", "api/v4/account")

    assert server.received[0].headers[header] == value


def test_oauth_401_refreshes_once_and_the_retry_succeeds(server: ScriptedServer) -> None:
    server.script(
        Reply(401, AMOCRM_401, content_type="application/problem+json"),
        Reply(
            200,
            fixture_bytes("amocrm/ogi4i_amocrm-client/account.get.json"),
            content_type="application/hal+json",
        ),
    )
    provider = FakeProvider(OLD_TOKEN, NEW_TOKEN)
    budget = CountingBudget()
    sleeps: list[float] = []

    with _bearer(server, OAuth2RefreshingBearer(provider), budget=budget, sleep=sleeps.append) as client:
        response = client.request("GET", "api/v4/account")

    assert response.status == 200
    assert provider.refreshed_from == [OLD_TOKEN]
    assert _sent_tokens(server) == [f"Bearer {OLD_TOKEN}", f"Bearer {NEW_TOKEN}"]
    assert budget.calls == 2 and sleeps == []  # the re-send is an attempt of its own, without a wait


def test_oauth_401_twice_is_an_auth_error_after_exactly_one_refresh(server: ScriptedServer) -> None:
    server.script(Reply(401, AMOCRM_401, content_type="application/problem+json"))
    provider = FakeProvider(OLD_TOKEN, NEW_TOKEN, "never-used-token")

    with _bearer(server, OAuth2RefreshingBearer(provider)) as client, pytest.raises(AuthError) as caught:
        client.request("GET", "api/v4/account", what="account")

    assert provider.refreshed_from == [OLD_TOKEN]
    assert server.count == 2
    assert caught.value.status == 401
    assert "HTTP 401 after a credential refresh" in str(caught.value)
    assert "Unauthorized: Неверный логин или пароль" in str(caught.value)


def test_oauth_refreshes_at_most_once_per_request_across_retries(server: ScriptedServer) -> None:
    server.script(
        Reply(401, AMOCRM_401, content_type="application/problem+json"),
        Reply(503, b"{}"),
        Reply(401, AMOCRM_401, content_type="application/problem+json"),
    )
    provider = FakeProvider(OLD_TOKEN, NEW_TOKEN, "never-used-token")

    with _bearer(server, OAuth2RefreshingBearer(provider)) as client, pytest.raises(AuthError):
        client.request("GET", "api/v4/account")

    assert provider.refreshed_from == [OLD_TOKEN]
    assert server.count == 3


@pytest.mark.parametrize("auth", [ApiKeyHeader("X-Api-Key", "k-123456"), BearerToken("long-lived-token")])
def test_static_credentials_get_no_second_try_on_401(server: ScriptedServer, auth: object) -> None:
    server.script(Reply(401, AMOCRM_401, content_type="application/problem+json"))

    with _bearer(server, auth) as client, pytest.raises(AuthError):
        client.request("GET", "api/v4/account")

    assert server.count == 1


def test_threads_rejected_with_the_same_token_refresh_it_once() -> None:
    provider = FakeProvider(OLD_TOKEN, NEW_TOKEN, "never-used-token")
    auth = OAuth2RefreshingBearer(provider)
    rejected = [_prepared_with(f"Bearer {OLD_TOKEN}") for _ in range(2)]

    assert [auth.on_unauthorized(request) for request in rejected] == [True, True]
    assert provider.refreshed_from == [OLD_TOKEN]  # the second caller found a newer token and reused it


def _prepared_with(authorization: str) -> requests.PreparedRequest:
    return requests.Request("GET", "http://127.0.0.1/", headers={"Authorization": authorization}).prepare()


@dataclass
class Pair:
    access_token: str
    refresh_token: str | None
    expires_at: object


class FakeTokenStore:
    """The TokenStore interface: refresh calls the refresher only when the stored token is the stale one."""

    def __init__(self, pair: Pair | None) -> None:
        self.pair = pair
        self.refresh_calls: list[str | None] = []

    def get(self) -> Pair | None:
        return self.pair

    def refresh(self, refresher, *, stale_access_token: str | None) -> Pair:
        self.refresh_calls.append(stale_access_token)
        if self.pair is not None and self.pair.access_token == stale_access_token:
            self.pair = refresher(self.pair)
        return self.pair


def _bitrix_refresher(_stored: Pair) -> Pair:
    return Pair(
        BITRIX_REFRESH["access_token"],
        BITRIX_REFRESH["refresh_token"],
        datetime.fromtimestamp(BITRIX_REFRESH["expires"], UTC),
    )


@pytest.mark.parametrize(
    ("expires_at", "refreshed"),
    [
        (NOW + timedelta(hours=1), False),
        (NOW + timedelta(minutes=5, seconds=1), False),
        (NOW + timedelta(minutes=4), True),
        (NOW - timedelta(seconds=1), True),
        ((NOW + timedelta(minutes=2)).replace(tzinfo=None), True),  # naive = UTC
        ((NOW + timedelta(minutes=10)).timestamp(), False),  # Unix seconds
        ((NOW + timedelta(minutes=1)).timestamp(), True),
        (None, False),  # no known expiry: used until a 401 says otherwise
    ],
)
def test_token_store_provider_refreshes_ahead_of_expiry(expires_at: object, refreshed: bool) -> None:
    store = FakeTokenStore(Pair(OLD_TOKEN, "r-old", expires_at))
    provider = TokenStoreProvider(store, _bitrix_refresher, now=lambda: NOW)

    token = provider.current()

    assert token == (BITRIX_REFRESH["access_token"] if refreshed else OLD_TOKEN)
    assert store.refresh_calls == ([OLD_TOKEN] if refreshed else [])


def test_token_store_provider_without_a_pair_says_to_authorize() -> None:
    provider = TokenStoreProvider(FakeTokenStore(None), _bitrix_refresher)

    with pytest.raises(AuthError, match="authorization flow"):
        provider.current()


def test_token_store_provider_on_the_real_state_store(server: ScriptedServer, tmp_path: Path) -> None:
    from elt_platform.state.store import StateStore
    from elt_platform.state.tokens import TokenPair, TokenStore

    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.upgrade()
    tokens = TokenStore(store, "amocrm:127.0.0.1")
    tokens.save(TokenPair(OLD_TOKEN, "r-old", datetime.now(UTC) + timedelta(hours=1)))
    refreshed_from: list[str] = []

    def refresher(stored: TokenPair) -> TokenPair:
        refreshed_from.append(stored.refresh_token)
        return TokenPair(NEW_TOKEN, "r-new", datetime.now(UTC) + timedelta(hours=24))

    server.script(Reply(401, AMOCRM_401, content_type="application/problem+json"), Reply(200, b"{}"))
    auth = OAuth2RefreshingBearer(TokenStoreProvider(tokens, refresher))
    try:
        with _bearer(server, auth) as client:
            client.request("GET", "api/v4/account")
    finally:
        store.close()

    assert refreshed_from == ["r-old"]
    assert _sent_tokens(server) == [f"Bearer {OLD_TOKEN}", f"Bearer {NEW_TOKEN}"]


WEBHOOK_TOKEN = "x7k2m9q4w1e8r5t3"


@pytest.mark.parametrize(
    ("url", "base_url", "user_id"),
    [
        (
            f"https://acme.bitrix24.kz/rest/1/{WEBHOOK_TOKEN}/",
            f"https://acme.bitrix24.kz/rest/1/{WEBHOOK_TOKEN}/",
            "1",
        ),
        (
            f"https://acme.bitrix24.kz/rest/17/{WEBHOOK_TOKEN}",
            f"https://acme.bitrix24.kz/rest/17/{WEBHOOK_TOKEN}/",
            "17",
        ),
        (
            f"https://crm.acme.kz/portal/rest/3/{WEBHOOK_TOKEN}/profile.json",
            f"https://crm.acme.kz/portal/rest/3/{WEBHOOK_TOKEN}/",
            "3",
        ),
    ],
    ids=["cloud", "no-slash", "on-prem-with-method"],
)
def test_webhook_url_finds_user_and_token(url: str, base_url: str, user_id: str) -> None:
    auth = WebhookUrl(url)

    assert (auth.base_url, auth.user_id, list(auth.secrets())) == (base_url, user_id, [WEBHOOK_TOKEN])
    assert WEBHOOK_TOKEN not in repr(auth) and "/rest/" in repr(auth)


@pytest.mark.parametrize(
    "url",
    [
        "https://acme.bitrix24.kz/rest/1/",
        f"https://acme.bitrix24.kz/api/1/{WEBHOOK_TOKEN}/",
        "acme/rest/1/x/",
    ],
)
def test_webhook_url_rejects_other_urls_without_quoting_them(url: str) -> None:
    with pytest.raises(ValueError, match="incoming-webhook") as caught:
        WebhookUrl(url)

    assert WEBHOOK_TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    ("make", "args", "match"),
    [(ApiKeyHeader, ("X-Api-Key", ""), "non-empty key"), (BearerToken, ("",), "non-empty token")],
)
def test_empty_static_credentials_are_refused(make: type, args: tuple[str, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make(*args)


SECRET_CASES = ["api-key", "bearer", "oauth", "webhook"]
# Script 401, 429, 500, 500, 400... with 3 attempts per request; OAuth spends its 401 on a refresh.
EXPECTED_ERRORS = {
    "api-key": ["AuthError", "ServerError", "RequestError"],
    "bearer": ["AuthError", "ServerError", "RequestError"],
    "webhook": ["AuthError", "ServerError", "RequestError"],
    "oauth": ["ServerError", "RequestError", "RequestError"],
}


def _secret_setup(kind: str, server: ScriptedServer) -> tuple[str, str, object, list[str]]:
    """(secret, base_url, auth, refresh secrets) for one kind of credential."""
    if kind == "api-key":
        secret = "ak-91f0c3e7d2b4a6"
        return secret, server.url, ApiKeyHeader("X-Api-Key", secret), []
    if kind == "bearer":
        secret = "lt-5e2a9d7c1b3f80"
        return secret, server.url, BearerToken(secret), []
    if kind == "oauth":
        return OLD_TOKEN, server.url, OAuth2RefreshingBearer(FakeProvider(OLD_TOKEN, NEW_TOKEN)), [NEW_TOKEN]
    auth = WebhookUrl(f"{server.url}rest/1/{WEBHOOK_TOKEN}/")
    return WEBHOOK_TOKEN, auth.base_url, auth, []


def _exception_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error) + repr(error.args)


@pytest.mark.parametrize("kind", SECRET_CASES)
def test_secrets_never_reach_messages_logs_or_reprs(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    caplog.set_level(logging.DEBUG)
    secret, base_url, auth, more_secrets = _secret_setup(kind, server)
    # Servers that echo the request (URL, token) into error bodies are common; the echo must be masked too.
    echo = {"error": "", "error_description": f"token {secret} / {' '.join(more_secrets)} rejected"}
    server.script(
        Reply(401, echo),
        Reply(429, echo, headers={"Retry-After": "0"}),
        Reply(500, echo),
        Reply(500, echo),
        Reply(400, echo),
    )
    errors: list[HttpError] = []
    with HttpClient(base_url, auth=auth, account="acct", max_retries=2, sleep=lambda _: None) as client:
        for _ in range(3):
            try:
                client.request("GET", "crm.deal.list.json", params={"filter[ID]": "1"})
            except HttpError as error:
                errors.append(error)
        client_text = f"{client!r} {client} {auth!r}"

    first = server.received[0]
    assert secret in json.dumps(first.headers) + first.path  # it was really sent
    assert [type(error).__name__ for error in errors] == EXPECTED_ERRORS[kind]
    exposed = " ".join([caplog.text, client_text, *(r.getMessage() for r in caplog.records)])
    exposed += " ".join(_exception_text(error) for error in errors)
    for value in [secret, *more_secrets]:
        assert value not in exposed


def test_no_auth_sends_no_credential(server: ScriptedServer) -> None:
    server.script(Reply(200, b"{}"))

    with _bearer(server, NoAuth()) as client:
        client.request("GET", "x")

    assert "Authorization" not in server.received[0].headers and "X-Api-Key" not in server.received[0].headers


def test_token_store_provider_declares_the_pair_it_last_read_as_secrets() -> None:
    store = FakeTokenStore(Pair(OLD_TOKEN, "r-old", NOW - timedelta(minutes=1)))
    provider = TokenStoreProvider(store, _bitrix_refresher, now=lambda: NOW)
    assert provider.secrets() == []

    provider.current()

    assert provider.secrets() == [BITRIX_REFRESH["access_token"], BITRIX_REFRESH["refresh_token"]]

"""HttpClient against a scripted server on 127.0.0.1: retries, waits, errors, bans, budgets, logging."""

import json
import logging
import random
import socket
from datetime import UTC, datetime

import pytest
from tests.plugins.http.budgets import CountingBudget
from tests.plugins.http.scripted_server import Reply, ScriptedServer, fixture_bytes

from elt_platform.http.auth import ApiKeyHeader
from elt_platform.http.client import HttpClient, HttpResponse
from elt_platform.http.decoding import as_mapping
from elt_platform.http.errors import (
    AuthError,
    BannedError,
    CircuitOpenError,
    NonJsonError,
    PayloadError,
    RateLimitedError,
    RequestError,
    ServerError,
)
from elt_platform.http.limits import LocalBreaker

API_KEY = "ak-4f9d2e1c-never-log-me"
ACCOUNT = "test:127.0.0.1"
NOW = datetime(2025, 1, 30, 12, 0, 0, tzinfo=UTC)
SEED = 11
LEADS_PAGE = "amocrm/ogi4i_amocrm-client/leads.list.page2.json"
AMOCRM_401 = "amocrm/github_issues/error.401.unauthorized.json"
NGINX_403 = (
    "<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n"
    "<center><h1>403 Forbidden</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def _client(server: ScriptedServer, **kwargs: object) -> tuple[HttpClient, list[float]]:
    sleeps: list[float] = []
    options: dict[str, object] = {
        "auth": ApiKeyHeader("X-Api-Key", API_KEY),
        "account": ACCOUNT,
        "max_retries": 3,
        "timeout": 5.0,
        "sleep": sleeps.append,
        "rng": random.Random(SEED),
        "now": lambda: NOW,
    }
    return HttpClient(server.url, **{**options, **kwargs}), sleeps


@pytest.mark.parametrize(
    ("status", "retry_after", "client_options", "expected_sleep"),
    [
        (429, "2", {}, 2.0),
        (500, "1", {}, 1.0),
        (502, "Thu, 30 Jan 2025 12:01:00 GMT", {}, 60.0),  # NOW + 60 s
        (503, "0", {}, 0.0),
        (429, "1000", {"max_retry_after": 5.0}, 5.0),
        (503, None, {"backoff_base": 0.5}, random.Random(SEED).uniform(0.0, 0.5)),
        (504, "soon", {"backoff_base": 0.5}, random.Random(SEED).uniform(0.0, 0.5)),  # unreadable header
    ],
    ids=["429-seconds", "500-seconds", "502-http-date", "503-zero", "429-capped", "503-backoff", "504-bad"],
)
def test_retry_then_success_sleeps_what_the_server_asked(
    server: ScriptedServer,
    status: int,
    retry_after: str | None,
    client_options: dict[str, float],
    expected_sleep: float,
) -> None:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    server.script(
        Reply(status, {"title": "busy"}, headers=headers),
        Reply(200, fixture_bytes(LEADS_PAGE), content_type="application/hal+json"),
    )
    client, sleeps = _client(server, **client_options)

    with client:
        response = client.request("GET", "api/v4/leads", params={"page": 2})

    assert sleeps == [expected_sleep]
    assert server.count == 2
    assert response.status == 200
    assert response.json() == json.loads(fixture_bytes(LEADS_PAGE))


def test_backoff_is_full_jitter_under_a_doubling_capped_ceiling(server: ScriptedServer) -> None:
    server.script(Reply(503, {"error": "QUERY_LIMIT_EXCEEDED"}))
    client, sleeps = _client(server, max_retries=5, backoff_base=1.0, backoff_max=4.0)

    with client, pytest.raises(ServerError):
        client.request("GET", "rest/crm.deal.list.json")

    ceilings = [1.0, 2.0, 4.0, 4.0, 4.0]
    draws = random.Random(SEED)
    assert sleeps == [draws.uniform(0.0, ceiling) for ceiling in ceilings]
    assert all(0.0 <= sleep <= ceiling for sleep, ceiling in zip(sleeps, ceilings, strict=True))


def test_jitter_spreads_within_bounds_with_an_unseeded_rng(server: ScriptedServer) -> None:
    server.script(Reply(500))
    sleeps: list[float] = []
    clients = [
        HttpClient(
            server.url,
            auth=ApiKeyHeader("X-Api-Key", API_KEY),
            account=None,
            max_retries=2,
            sleep=sleeps.append,
        )
        for _ in range(20)
    ]
    for client in clients:
        with client, pytest.raises(ServerError):
            client.request("GET", "x")

    first, second = sleeps[0::2], sleeps[1::2]
    assert all(0.0 <= s <= 1.0 for s in first) and all(0.0 <= s <= 2.0 for s in second)
    assert len(set(sleeps)) == len(sleeps)  # 40 draws from a continuous range: no two alike


@pytest.mark.parametrize(
    ("reply", "error_class", "last_error", "status"),
    [
        (Reply(429, {"title": "Too Many Requests"}), RateLimitedError, "HTTP 429", 429),
        (
            Reply(503, fixture_bytes("bitrix24/b24-rest-docs/crm.deal.list.400.json")),
            ServerError,
            "HTTP 503",
            503,
        ),
        (Reply(200, b"{}", delay=1.0), ServerError, "ReadTimeout", None),
        (Reply(200, b'{"data": {"a": 1}}', truncate=True), ServerError, "ChunkedEncodingError", None),
    ],
    ids=["429", "503", "read-timeout", "cut-body"],
)
def test_exhausted_retries_raise_the_right_class_with_attempts(
    server: ScriptedServer, reply: Reply, error_class: type[Exception], last_error: str, status: int | None
) -> None:
    server.script(reply)
    client, sleeps = _client(server, max_retries=2, timeout=(2.0, 0.3))

    with client, pytest.raises(error_class) as caught:
        client.request("GET", "api/v4/leads", what="leads page 1")

    error = caught.value
    assert (error.attempts, error.last_error, error.status) == (3, last_error, status)
    assert (error.what, error.account) == ("leads page 1", ACCOUNT)
    assert str(error).startswith(
        f"leads page 1 ({ACCOUNT}) unavailable after 3 attempt(s); last: {last_error}"
    )
    assert server.count == 3 and len(sleeps) == 2


def test_connection_refused_is_retried_then_a_server_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps: list[float] = []
    client = HttpClient(
        f"http://127.0.0.1:{port}/",
        auth=ApiKeyHeader("X-Api-Key", API_KEY),
        account=None,
        max_retries=2,
        sleep=sleeps.append,
    )

    with client, pytest.raises(ServerError) as caught:
        client.request("GET", "x")

    assert (caught.value.attempts, caught.value.last_error, caught.value.status) == (
        3,
        "ConnectionError",
        None,
    )
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    ("reply", "error_class"),
    [
        (Reply(401, fixture_bytes(AMOCRM_401), content_type="application/problem+json"), AuthError),
        (Reply(403, fixture_bytes("bitrix24/b24-rest-docs/crm.contact.list.400.json")), AuthError),
        (Reply(400, fixture_bytes("bitrix24/b24-rest-docs/crm.deal.list.400.json")), RequestError),
        (Reply(404, "<h1>Not Found</h1>", content_type="text/html"), RequestError),
        (Reply(422, {"message": "bad iin"}), RequestError),
    ],
    ids=["401-problem-json", "403-bitrix", "400-bitrix", "404-html", "422"],
)
def test_auth_and_client_errors_fail_at_once(
    server: ScriptedServer, reply: Reply, error_class: type[Exception]
) -> None:
    server.script(reply)
    client, sleeps = _client(server)

    with client, pytest.raises(error_class) as caught:
        client.request("GET", "api/v4/account")

    assert caught.value.status == reply.status
    assert server.count == 1 and sleeps == []


@pytest.mark.parametrize(
    ("body", "content_type", "title", "detail", "code", "validation_errors"),
    [
        (
            fixture_bytes(AMOCRM_401).replace(b"401", b"400").replace(b"Unauthorized", b"Bad Request"),
            "application/problem+json",
            "Bad Request",
            "Неверный логин или пароль",
            None,
            [],
        ),
        (
            json.dumps(
                {
                    "validation-errors": [
                        {
                            "request_id": "0",
                            "errors": [{"code": "NotSupportedChoice", "path": "status_id", "detail": "bad"}],
                        }
                    ],
                    "title": "Bad Request",
                    "type": "https://httpstatus.es/400",
                    "status": 400,
                    "detail": "Request validation failed",
                }
            ).encode(),
            "application/problem+json",
            "Bad Request",
            "Request validation failed",
            None,
            [
                {
                    "request_id": "0",
                    "errors": [{"code": "NotSupportedChoice", "path": "status_id", "detail": "bad"}],
                }
            ],
        ),
        (
            fixture_bytes("bitrix24/b24-rest-docs/crm.deal.list.400.json"),
            "application/json",
            None,
            "Parameter 'filter' must be array.",
            "",
            [],
        ),
        (
            fixture_bytes("bitrix24/b24-rest-docs/crm.status.list.400.json"),
            "application/json; charset=utf-8",
            None,
            "Переданы некорректные параметры.",
            "Invalid parameters.",
            [],
        ),
    ],
    ids=["amocrm-problem", "amocrm-validation", "bitrix-empty-code", "bitrix-free-text-code"],
)
def test_400_carries_the_apis_explanation(
    server: ScriptedServer,
    body: bytes,
    content_type: str,
    title: str | None,
    detail: str,
    code: str | None,
    validation_errors: list[object],
) -> None:
    server.script(Reply(400, body, content_type=content_type))
    client, _ = _client(server)

    with client, pytest.raises(RequestError) as caught:
        client.request("POST", "api/v4/leads", json=[{"name": "x"}], what="add leads")

    error = caught.value
    assert (error.title, error.detail, error.code, error.validation_errors) == (
        title,
        detail,
        code,
        validation_errors,
    )
    assert detail in str(error) and str(error).startswith(f"add leads ({ACCOUNT}): HTTP 400")


@pytest.mark.parametrize(
    "reply",
    [
        Reply(204, b"", content_type=None),
        Reply(200, b"", content_type="application/hal+json"),
        Reply(200, b" \n"),
    ],
    ids=["204", "empty-200", "whitespace-200"],
)
def test_no_content_decodes_to_none(server: ScriptedServer, reply: Reply) -> None:
    server.script(reply)
    client, _ = _client(server)

    with client:
        response = client.request("GET", "api/v4/leads", params={"query": "nobody"})

    assert response.json() is None
    assert response.status == reply.status


@pytest.mark.parametrize(
    "encode",
    [
        lambda raw: raw,
        lambda raw: b"\xef\xbb\xbf" + raw,
        lambda raw: json.dumps(json.loads(raw), ensure_ascii=True).encode(),  # amoCRM's \uXXXX escaping
    ],
    ids=["plain", "bom", "u-escapes"],
)
def test_real_bodies_decode_whatever_the_encoding_quirk(server: ScriptedServer, encode) -> None:
    raw = fixture_bytes("amocrm/ogi4i_amocrm-client/contact.get.json")
    server.script(Reply(200, encode(raw), content_type="application/hal+json"))
    client, _ = _client(server)

    with client:
        decoded = client.request("GET", "api/v4/contacts/3").json()

    assert decoded == json.loads(raw)
    assert decoded["name"] == "Иван Иванов"


@pytest.mark.parametrize(
    ("fixture", "key"),
    [
        ("bitrix24/fast_bitrix24_real_responses/batch_list_empty.json", "result_error"),
        ("bitrix24/b24-rest-docs/batch.error.halt0.json", "result_next"),
    ],
)
def test_php_empty_list_reads_as_an_empty_map(server: ScriptedServer, fixture: str, key: str) -> None:
    server.script(Reply(200, fixture_bytes(fixture)))
    client, _ = _client(server)

    with client:
        result = client.request("POST", "batch.json").json()["result"]

    assert result[key] == []
    assert as_mapping(result[key], what=f"batch {key}") == {}


def test_html_page_on_success_is_a_non_json_error_without_traceback_noise(server: ScriptedServer) -> None:
    server.script(Reply(200, NGINX_403.replace("403 Forbidden", "Maintenance"), content_type="text/html"))
    client, _ = _client(server)

    with client, pytest.raises(NonJsonError) as caught:
        client.request("GET", "api/v4/leads", what="leads page 1")

    error = caught.value
    assert (
        str(error) == "leads page 1: HTTP 200 returned text/html, not JSON: 'Maintenance Maintenance nginx'"
    )
    assert (error.status, error.content_type, error.excerpt) == (
        200,
        "text/html",
        "Maintenance Maintenance nginx",
    )
    assert error.__cause__ is None and error.__suppress_context__


def test_truncated_json_with_json_content_type_is_a_payload_error_quoting_no_body(
    server: ScriptedServer,
) -> None:
    server.script(Reply(200, b'{"data": {"650727300949": [{"event": "entry"'))
    client, _ = _client(server)

    with client, pytest.raises(PayloadError) as caught:
        client.request("GET", "employees/byDate", what="byDate 2024-03-04")

    assert type(caught.value) is PayloadError
    assert "byDate 2024-03-04: HTTP 200 body is not valid JSON" in str(caught.value)
    assert "650727300949" not in str(caught.value) and "entry" not in str(caught.value)


def test_expect_json_false_returns_an_unparseable_body_as_is(server: ScriptedServer) -> None:
    body = b'{"data": {"x": [1, 2'
    server.script(Reply(200, body))
    client, _ = _client(server)

    with client:
        response = client.request("GET", "employees/byDate", expect_json=False)

    assert response.content == body


def _amocrm_ban(response: HttpResponse) -> str | None:
    content_type = response.content_type or ""
    if response.status == 403 and content_type.startswith("text/html"):
        return "HTML 403 page: API access of the account is blocked"
    return None


def test_classified_ban_opens_the_shared_breaker_and_stops_the_other_clients(server: ScriptedServer) -> None:
    server.script(Reply(403, NGINX_403, content_type="text/html"))
    breaker = LocalBreaker(ACCOUNT)
    first, _ = _client(server, breaker=breaker, classify=_amocrm_ban)
    second, _ = _client(server, breaker=breaker, classify=_amocrm_ban)

    with first, pytest.raises(BannedError) as banned:
        first.request("GET", "api/v4/leads")
    with second, pytest.raises(CircuitOpenError) as refused:
        second.request("GET", "api/v4/contacts")

    assert server.count == 1  # the second client never reached the server
    assert banned.value.reason == "HTML 403 page: API access of the account is blocked"
    assert refused.value.reason == breaker.reason == banned.value.reason
    assert isinstance(banned.value, AuthError) and banned.value.status == 403


def test_html_403_without_a_classifier_is_an_auth_error_naming_type_and_excerpt(
    server: ScriptedServer,
) -> None:
    server.script(Reply(403, NGINX_403, content_type="text/html"))
    client, _ = _client(server)

    with client, pytest.raises(AuthError) as caught:
        client.request("GET", "api/v4/leads", what="leads page 1")

    assert type(caught.value) is AuthError
    assert "HTTP 403" in str(caught.value)
    assert "text/html: '403 Forbidden 403 Forbidden nginx'" in str(caught.value)
    assert "<" not in str(caught.value)


@pytest.mark.parametrize(
    ("replies", "expected_calls"),
    [
        ([Reply(200, b"{}")], 1),
        ([Reply(500), Reply(429, headers={"Retry-After": "0"}), Reply(200, b"{}")], 3),
    ],
    ids=["first-try", "two-retries"],
)
def test_budget_is_charged_once_per_attempt(
    server: ScriptedServer, replies: list[Reply], expected_calls: int
) -> None:
    server.script(*replies)
    budget = CountingBudget()
    client, _ = _client(server, budget=budget)

    with client:
        client.request("GET", "x")

    assert budget.calls == server.count == expected_calls


def test_paths_outside_the_base_host_are_refused_before_sending(server: ScriptedServer) -> None:
    client, _ = _client(server)

    with client, pytest.raises(ValueError, match="outside"):
        client.request("GET", "https://evil.example/api/v4/leads")

    assert server.count == 0


def test_absolute_next_link_on_the_same_host_is_followed(server: ScriptedServer) -> None:
    server.script(Reply(200, b"{}"))
    client, _ = _client(server)

    with client:
        client.request("GET", f"{server.url}api/v4/leads?limit=2&page=3")

    assert (server.received[0].path, server.received[0].query) == (
        "/api/v4/leads",
        {"limit": ["2"], "page": ["3"]},
    )


def test_one_info_line_per_response_and_one_warning_per_retry(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="elt_platform.http")
    server.script(
        Reply(503, b"{}"), Reply(429, b"{}", headers={"Retry-After": "3"}), Reply(200, b'{"ok": 1}')
    )
    client, _ = _client(server, backoff_base=0.0)

    with client:
        client.request("GET", "employees/byDate", params={"date": "2024-03-04"})

    url = f"{server.url}employees/byDate?date=2024-03-04"
    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert [(level, message.split(" (")[0]) for level, message in lines] == [
        (logging.INFO, f"GET {url} -> 503"),
        (logging.WARNING, f"GET {url} failed with HTTP 503; retry 1/3 in 0.00s"),
        (logging.INFO, f"GET {url} -> 429"),
        (logging.WARNING, f"GET {url} failed with HTTP 429; retry 2/3 in 3.00s"),
        (logging.INFO, f"GET {url} -> 200"),
    ]
    assert lines[1][1].endswith("(backoff)") and lines[3][1].endswith("(Retry-After)")
    assert lines[4][1].startswith(f"GET {url} -> 200 (9 bytes, ")


def test_personal_data_in_params_is_masked_in_logs_but_sent_intact(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.script(Reply(200, b"{}"))
    params = {"iin": "650727300949", "email": "ann.lee@example.kz", "phone": "+7 701 123 45 67"}
    client, _ = _client(server)

    with client:
        client.request("GET", "api/v4/contacts", params=params)

    assert server.received[0].query == {name: [value] for name, value in params.items()}
    (line,) = [r.getMessage() for r in caplog.records if r.name.startswith("elt_platform")]
    assert "iin=6507******49&email=***@example.kz&phone=***67 -> 200" in line
    assert not any(value in caplog.text for value in params.values())


@pytest.mark.parametrize(
    ("status", "attempts", "repeated"),
    [(500, 1, False), (502, 1, False), (504, 1, False), (429, 2, True), (503, 2, True)],
)
def test_a_write_is_repeated_only_when_the_server_refused_it_before_running_it(
    server: ScriptedServer, status: int, attempts: int, repeated: bool
) -> None:
    server.script(Reply(status, b"{}"), Reply(200, b'{"ok": true}'))
    client, _ = _client(server)

    with client:
        if repeated:
            assert client.request("POST", "batch", json={}, idempotent=False).json() == {"ok": True}
        else:
            with pytest.raises(ServerError, match="a write, not repeated: it may have run"):
                client.request("POST", "batch", json={}, idempotent=False)

    assert server.count == attempts

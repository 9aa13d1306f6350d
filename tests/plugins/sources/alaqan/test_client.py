"""AlaqanClient against a running sandbox (127.0.0.1 only), plus its pure helpers."""

import json
import logging
import socket
import time
from collections.abc import Iterator
from datetime import date
from types import SimpleNamespace

import pytest
from tests.plugins.http.budgets import CountingBudget

from elt_platform.http.errors import AuthError, RateLimitedError, RequestError, ServerError
from elt_platform.sandbox.alaqan.generator import AlaqanDataset
from elt_platform.sandbox.alaqan.server import SandboxServer
from elt_platform.sources.alaqan.client import AlaqanClient, build_base_url
from elt_platform.sources.alaqan.errors import (
    AlaqanAuthError,
    AlaqanError,
    AlaqanPayloadError,
    AlaqanRequestError,
    AlaqanUnavailableError,
)
from elt_platform.sources.alaqan.parsing import parse_by_date
from elt_platform.sources.alaqan.settings import DEFAULT_BASE_URL

SERVER_KEY = "srv-key-7f3a9c-never-log-me"
WRONG_KEY = "wrong-key-b81d22-never-log-me"
DAY = date(2024, 3, 4)  # a Monday


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(AlaqanDataset(seed=7, employees=60), api_key=SERVER_KEY) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_server(server: SandboxServer) -> None:
    server.set_faults(None)
    server.reset_stats()


def _client(server: SandboxServer, **kwargs: object) -> AlaqanClient:
    options = {"requests_per_second": None, "backoff_base": 0.01, "max_retries": 4, "timeout": 5.0}
    return AlaqanClient(server.base_url, kwargs.pop("api_key", SERVER_KEY), **{**options, **kwargs})


def _retry_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "retry" in r.getMessage()
    ]


def test_by_date_returns_the_body_byte_for_byte(server: SandboxServer) -> None:
    with _client(server) as client:
        body = client.by_date(DAY)

    assert json.loads(body) == {"data": server.dataset.day(DAY)}
    assert server.stats()["by_status"] == {"200": 1}


def test_by_date_logs_url_with_date(server: SandboxServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="elt_platform.http.client")
    with _client(server) as client:
        client.by_date(DAY)

    assert f"{server.base_url}employees/byDate?date=2024-03-04 -> 200" in caplog.text


def test_by_iin_returns_data_and_masks_the_iin_in_logs(
    server: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    iin = server.dataset.employees[0]
    start, end = date(2024, 3, 1), date(2024, 3, 10)
    with _client(server) as client:
        data = client.by_iin(iin, start, end)

    assert data == server.dataset.by_iin(iin, start, end)
    assert data  # a 10-day window of a weekday regular is never empty with this seed
    client_lines = [r.getMessage() for r in caplog.records if r.name.startswith("elt_platform")]
    assert client_lines and not any(iin in line for line in client_lines)
    assert any(f"{iin[:4]}******{iin[-2:]}" in line for line in client_lines)


def test_429_storm_honours_retry_after(server: SandboxServer, caplog: pytest.LogCaptureFixture) -> None:
    # Retry-After: 0 with a 30 s backoff ceiling: finishing fast proves the header set the sleeps.
    server.set_faults(next_429=3, retry_after=0)
    started = time.monotonic()
    with _client(server, backoff_base=30.0) as client:
        body = client.by_date(DAY)

    assert time.monotonic() - started < 5
    assert json.loads(body) == {"data": server.dataset.day(DAY)}
    assert server.stats()["by_status"] == {"429": 3, "200": 1}
    retries = _retry_logs(caplog)
    assert len(retries) == 3
    assert all("HTTP 429" in line and "in 0.00s (Retry-After)" in line for line in retries)
    assert [line.split("retry ")[1][:3] for line in retries] == ["1/4", "2/4", "3/4"]


def test_retry_after_seconds_are_actually_waited(server: SandboxServer) -> None:
    server.set_faults(next_429=1, retry_after=1)
    started = time.monotonic()
    with _client(server, backoff_base=0.0) as client:
        client.by_date(DAY)

    assert time.monotonic() - started >= 1.0
    assert server.stats()["by_status"] == {"429": 1, "200": 1}


def test_5xx_are_retried_with_backoff(server: SandboxServer, caplog: pytest.LogCaptureFixture) -> None:
    server.set_faults(next_500=3)
    with _client(server) as client:
        body = client.by_date(DAY)

    assert json.loads(body) == {"data": server.dataset.day(DAY)}
    assert server.stats()["by_status"] == {"500": 3, "200": 1}
    assert all("(backoff)" in line for line in _retry_logs(caplog))


def test_exhausted_retries_name_the_date_and_last_status(server: SandboxServer) -> None:
    server.set_faults(next_429=10, retry_after=0)
    with _client(server, max_retries=2) as client, pytest.raises(AlaqanUnavailableError) as caught:
        client.by_date(DAY)

    error = caught.value
    assert "byDate 2024-03-04" in str(error) and "HTTP 429" in str(error)
    assert (error.last_status, error.attempts) == (429, 3)
    assert server.stats()["by_status"] == {"429": 3}


@pytest.mark.parametrize("max_retries", [0, 1])
def test_max_retries_counts_extra_attempts(server: SandboxServer, max_retries: int) -> None:
    server.set_faults(next_500=10)
    with _client(server, max_retries=max_retries) as client, pytest.raises(AlaqanUnavailableError):
        client.by_date(DAY)

    assert server.stats()["requests"] == max_retries + 1


def test_wrong_key_fails_fast_without_leaking_it(
    server: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with _client(server, api_key=WRONG_KEY) as client:
        with pytest.raises(AlaqanAuthError) as caught:
            client.by_date(DAY)
        client_text = f"{client!r} {client}"

    error = caught.value
    assert error.status == 401
    assert "2024-03-04" in str(error)
    assert server.stats()["by_status"] == {"401": 1}  # not retried
    exposed = " ".join([str(error), repr(error), repr(error.args), caplog.text, client_text])
    assert WRONG_KEY not in exposed
    assert SERVER_KEY not in exposed


@pytest.mark.parametrize(
    ("faults", "api_key", "alaqan_class", "http_class"),
    [
        ({}, WRONG_KEY, AlaqanAuthError, AuthError),
        ({"next_429": 10, "retry_after": 0}, SERVER_KEY, AlaqanUnavailableError, RateLimitedError),
        ({"next_500": 10}, SERVER_KEY, AlaqanUnavailableError, ServerError),
    ],
    ids=["401", "429-exhausted", "500-exhausted"],
)
def test_errors_belong_to_both_the_alaqan_family_and_the_http_taxonomy(
    server: SandboxServer,
    faults: dict[str, int],
    api_key: str,
    alaqan_class: type[Exception],
    http_class: type[Exception],
) -> None:
    server.set_faults(**faults)
    with _client(server, api_key=api_key, max_retries=1) as client, pytest.raises(alaqan_class) as caught:
        client.by_date(DAY)

    assert isinstance(caught.value, http_class) and isinstance(caught.value, AlaqanError)
    assert caught.value.account == f"alaqan:{server.base_url.split('/')[2]}"


def test_injected_budget_is_charged_once_per_request_sent(server: SandboxServer) -> None:
    server.set_faults(next_500=2)
    budget = CountingBudget()
    with _client(server, budget=budget) as client:
        client.by_date(DAY)

    assert budget.calls == server.stats()["requests"] == 3
    assert "requests_per_second=None" in repr(client)


def test_other_4xx_is_not_retried(server: SandboxServer) -> None:
    with _client(server) as client, pytest.raises(AlaqanRequestError) as caught:
        client.by_iin("123", date(2024, 3, 1), date(2024, 3, 2))

    assert isinstance(caught.value, RequestError)
    assert caught.value.status == 422
    assert server.stats()["requests"] == 1


def test_truncated_body_is_returned_then_rejected_by_the_parser(server: SandboxServer) -> None:
    # A complete HTTP response carrying cut JSON is landed as is (audit), then fails parsing by name.
    server.set_faults(next_truncated=1)
    with _client(server) as client:
        body = client.by_date(DAY)

    with pytest.raises(AlaqanPayloadError, match="byDate 2024-03-04.*not valid JSON"):
        parse_by_date(DAY, body)
    assert server.stats()["faults"] == {"truncated": 1}


def test_truncated_by_iin_body_raises_payload_error(server: SandboxServer) -> None:
    server.set_faults(next_truncated=1)
    with _client(server) as client, pytest.raises(AlaqanPayloadError, match="byIin"):
        client.by_iin(server.dataset.employees[0], date(2024, 3, 1), date(2024, 3, 31))


def test_slow_response_times_out_and_is_retried(
    server: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.set_faults(next_slow=1, slow_seconds=1.0)
    with _client(server, timeout=(2.0, 0.3)) as client:
        body = client.by_date(DAY)

    assert json.loads(body) == {"data": server.dataset.day(DAY)}
    assert server.stats()["faults"] == {"slow": 1}
    retries = _retry_logs(caplog)
    assert len(retries) == 1 and "ReadTimeout" in retries[0]


def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = AlaqanClient(
        f"http://127.0.0.1:{port}/api/astanahub/",
        "k",
        requests_per_second=None,
        max_retries=2,
        backoff_base=0.01,
    )

    with client, pytest.raises(AlaqanUnavailableError) as caught:
        client.by_date(DAY)

    assert (caught.value.last_status, caught.value.last_error, caught.value.attempts) == (
        None,
        "ConnectionError",
        3,
    )


@pytest.mark.parametrize(
    ("host", "port", "schema", "expected"),
    [
        (None, None, None, DEFAULT_BASE_URL),
        ("", None, None, DEFAULT_BASE_URL),
        ("https://api.hub.alaqan.kz/api/astanahub/", None, None, "https://api.hub.alaqan.kz/api/astanahub/"),
        ("https://api.hub.alaqan.kz/api/astanahub", None, None, "https://api.hub.alaqan.kz/api/astanahub/"),
        ("api.hub.alaqan.kz", None, None, "https://api.hub.alaqan.kz/api/astanahub/"),
        ("api.hub.alaqan.kz/api/astanahub", None, None, "https://api.hub.alaqan.kz/api/astanahub/"),
        ("https://api.hub.alaqan.kz", None, None, "https://api.hub.alaqan.kz/api/astanahub/"),
        ("127.0.0.1", 8765, "http", "http://127.0.0.1:8765/api/astanahub/"),
        ("http://127.0.0.1:8765/api/astanahub/", 9999, None, "http://127.0.0.1:8765/api/astanahub/"),
        ("api.hub.alaqan.kz", None, "api/astanahub", "https://api.hub.alaqan.kz/api/astanahub/"),
        ("localhost", 8080, "other/root", "https://localhost:8080/other/root/"),
    ],
)
def test_build_base_url(host: str | None, port: int | None, schema: str | None, expected: str) -> None:
    assert build_base_url(host, port=port, schema=schema) == expected


def test_from_connection_reads_host_password_and_extra() -> None:
    conn = SimpleNamespace(
        host="api.hub.alaqan.kz",
        port=None,
        schema="",
        password="conn-secret-42",
        extra_dejson={"requests_per_second": "2.5", "max_retries": 3},
    )

    client = AlaqanClient.from_connection(conn, timeout=7.0)

    assert client.base_url == "https://api.hub.alaqan.kz/api/astanahub/"
    assert (client.max_retries, client.timeout) == (3, 7.0)
    assert "requests_per_second=2.5" in repr(client)
    assert "conn-secret-42" not in repr(client) and "conn-secret-42" not in str(client)


def test_from_connection_against_sandbox(server: SandboxServer) -> None:
    conn = SimpleNamespace(host=server.base_url, port=None, schema=None, password=SERVER_KEY, extra_dejson={})

    with AlaqanClient.from_connection(conn, requests_per_second=None) as client:
        assert json.loads(client.by_date(DAY)) == {"data": server.dataset.day(DAY)}


@pytest.mark.parametrize("password", [None, ""])
def test_from_connection_without_password_fails(password: str | None) -> None:
    conn = SimpleNamespace(host="api.hub.alaqan.kz", password=password, extra_dejson={})

    with pytest.raises(ValueError, match="API key is empty"):
        AlaqanClient.from_connection(conn)


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"api_key": ""}, "API key is empty"), ({"max_retries": -1}, "max_retries")]
)
def test_constructor_validation(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AlaqanClient(DEFAULT_BASE_URL, **{"api_key": "k", **kwargs})

"""The sandbox base is generic: a two-route sandbox defined here gets faults, limits, admin and a server."""

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import requests
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from elt_platform.sandbox.app import Answer, Sandbox, retry_after_header
from elt_platform.sandbox.faults import FaultConfig
from elt_platform.sandbox.rate_limits import RateLimiter
from elt_platform.sandbox.server import SandboxServer
from elt_platform.sandbox.state import SandboxState

TOKENS = ("token-a", "token-b")
ITEMS = {"items": [{"id": i, "name": f"item {i}"} for i in range(20)]}
STATUS_OF_FAULT = {None: 200, "429": 429, "500": 500}


class ShopSandbox(Sandbox):
    """A made-up API: bearer tokens (one client each), problem+json 429, a list route and a create route."""

    name = "shop"
    api_path = "/api/v1/"

    async def authenticate(self, request: Request) -> str | Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in TOKENS:
            return JSONResponse({"detail": "invalid token"}, status_code=401)
        return token

    def too_many_requests(self, request: Request, retry_after: float | None) -> Response:
        return JSONResponse(
            {"title": "Too Many Requests", "status": 429},
            status_code=429,
            media_type="application/problem+json",
            headers=retry_after_header(retry_after),
        )

    def add_routes(self, app: FastAPI) -> None:
        @app.get("/api/v1/items")
        async def list_items(request: Request) -> Response:
            async def answer() -> Answer:
                return JSONResponse(ITEMS)

            return await self.serve(request, "list", answer)

        @app.post("/api/v1/items")
        async def create_item(request: Request) -> Response:
            async def answer() -> Answer:
                body = await request.json()
                if "name" not in body:
                    return JSONResponse({"detail": "name is required"}, status_code=400)
                return json.dumps({"id": 100, **body}).encode()

            return await self.serve(request, "create", answer)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(ShopSandbox()) as running:
        yield running


@pytest.fixture
def shop(server: SandboxServer) -> SandboxServer:
    server.set_faults(None)
    server.reset_stats()
    server.sandbox.rate_limiter = None
    return server


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKENS[0]}"
        yield session


def _statuses(http: requests.Session, server: SandboxServer, count: int) -> list[int]:
    return [http.get(server.base_url + "items").status_code for _ in range(count)]


# --- faults ------------------------------------------------------------------------------------------


def _draws(config: FaultConfig, count: int) -> list[str | None]:
    state = SandboxState(config)
    return [state.draw_fault("list") for _ in range(count)]


def test_seeded_draws_repeat_and_depend_on_the_seed() -> None:
    config = FaultConfig(rate_429=0.2, rate_500=0.2, rate_truncated=0.1, seed=7)

    first = _draws(config, 200)

    assert first == _draws(config, 200)
    assert first != _draws(FaultConfig(rate_429=0.2, rate_500=0.2, rate_truncated=0.1, seed=8), 200)
    assert set(first) == {None, "429", "500", "truncated"}


def test_http_requests_meet_the_seeded_draws_in_order(shop: SandboxServer, http: requests.Session) -> None:
    config = FaultConfig(rate_429=0.3, rate_500=0.3, retry_after=0, seed=3)
    expected = [STATUS_OF_FAULT[fault] for fault in _draws(config, 30)]

    shop.set_faults(config)
    first = _statuses(http, shop, 30)
    shop.set_faults(config)
    second = _statuses(http, shop, 30)

    assert first == second == expected


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"fail_at": 3}, [200, 200, 500, 200, 200, 200]),
        ({"fail_at": 1, "fail_with": "429"}, [429, 200, 200, 200, 200, 200]),
        ({"fail_at": 2, "fail_count": 3, "fail_with": "429"}, [200, 429, 429, 429, 200, 200]),
        ({"fail_at": 6, "fail_count": 10}, [200, 200, 200, 200, 200, 500]),
    ],
    ids=["third-call", "first-call-429", "burst-of-three", "burst-from-sixth"],
)
def test_fail_at_hits_exactly_the_nth_calls(
    shop: SandboxServer, http: requests.Session, changes: dict[str, object], expected: list[int]
) -> None:
    shop.set_faults(**changes)

    assert _statuses(http, shop, 6) == expected


def test_fail_at_counts_only_the_routes_in_scope(shop: SandboxServer, http: requests.Session) -> None:
    shop.set_faults(fail_at=2, routes=["create"])

    statuses = []
    for _ in range(3):
        statuses.append(http.get(shop.base_url + "items").status_code)
        statuses.append(http.post(shop.base_url + "items", json={"name": "x"}).status_code)

    assert statuses == [200, 200, 200, 500, 200, 200]
    assert shop.stats()["faults"] == {"500": 1}


def test_fault_answers_come_from_the_sandbox_hooks(shop: SandboxServer, http: requests.Session) -> None:
    shop.set_faults(next_429=1, next_500=1, retry_after=7)

    too_many = http.get(shop.base_url + "items")
    server_error = http.get(shop.base_url + "items")

    assert (too_many.status_code, too_many.headers["Retry-After"]) == (429, "7")
    assert too_many.headers["content-type"] == "application/problem+json"
    assert too_many.json() == {"title": "Too Many Requests", "status": 429}
    assert (server_error.status_code, server_error.json()) == (500, {"error": "internal_server_error"})


@pytest.mark.parametrize(
    ("method", "body", "full"),
    [
        ("GET", None, json.dumps(ITEMS, separators=(",", ":")).encode()),
        ("POST", {"name": "lamp"}, b'{"id": 100, "name": "lamp"}'),
    ],
    ids=["response", "bytes"],
)
def test_truncated_fault_cuts_a_2xx_body_in_half(
    shop: SandboxServer, http: requests.Session, method: str, body: object, full: bytes
) -> None:
    shop.set_faults(next_truncated=1)

    response = http.request(method, shop.base_url + "items", json=body)

    assert (response.status_code, response.content) == (200, full[: len(full) // 2])
    assert response.headers["content-type"] == "application/json"


def test_truncated_fault_leaves_error_answers_whole(shop: SandboxServer, http: requests.Session) -> None:
    shop.set_faults(next_truncated=1)

    response = http.post(shop.base_url + "items", json={})

    assert (response.status_code, response.json()) == (400, {"detail": "name is required"})


def test_refused_authentication_draws_no_fault(shop: SandboxServer, http: requests.Session) -> None:
    shop.set_faults(next_500=1)

    refused = requests.get(shop.base_url + "items", headers={"Authorization": "Bearer nope"})
    faulted = http.get(shop.base_url + "items")

    assert (refused.status_code, faulted.status_code) == (401, 500)


# --- rate limiter ------------------------------------------------------------------------------------


def test_rate_limiter_allows_a_burst_then_the_sustained_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, burst=5, clock=clock)

    burst = [limiter.acquire("a") for _ in range(6)]
    clock.now += 1.0
    after_one_second = [limiter.acquire("a") for _ in range(3)]

    assert burst == [None] * 5 + [pytest.approx(0.5)]
    assert after_one_second == [None, None, pytest.approx(0.5)]


def test_rate_limiter_keeps_one_bucket_per_client() -> None:
    limiter = RateLimiter(3, clock=FakeClock())

    assert [limiter.acquire("a") is None for _ in range(4)] == [True, True, True, False]
    assert limiter.acquire("b") is None
    limiter.reset()
    assert limiter.acquire("a") is None


@pytest.mark.parametrize(("per_second", "burst"), [(0, None), (-1, 5), (5, 0)])
def test_rate_limiter_rejects_non_positive_limits(per_second: float, burst: float | None) -> None:
    with pytest.raises(ValueError):
        RateLimiter(per_second, burst=burst)


def test_rate_limited_requests_get_the_sandbox_429(shop: SandboxServer, http: requests.Session) -> None:
    clock = FakeClock()
    shop.sandbox.rate_limiter = RateLimiter(20, clock=clock)

    burst = Counter(_statuses(http, shop, 25))
    other_client = requests.get(shop.base_url + "items", headers={"Authorization": f"Bearer {TOKENS[1]}"})
    refused = http.get(shop.base_url + "items")
    clock.now += 0.25
    refilled = Counter(_statuses(http, shop, 7))

    assert burst == {200: 20, 429: 5}
    assert other_client.status_code == 200
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["Retry-After"] == "1"
    assert refilled == {200: 5, 429: 2}
    assert shop.stats() == {
        "requests": 34,
        "by_status": {"200": 26, "429": 8},
        "by_route": {"list": 34},
        "faults": {"rate_limited": 8},
    }


def test_rate_limiter_holds_the_rate_in_real_time(shop: SandboxServer, http: requests.Session) -> None:
    shop.sandbox.rate_limiter = RateLimiter(20)
    statuses: Counter[int] = Counter()

    started = time.monotonic()
    while time.monotonic() - started < 0.5:
        statuses[http.get(shop.base_url + "items").status_code] += 1
    elapsed = time.monotonic() - started

    assert set(statuses) == {200, 429}
    assert 20 <= statuses[200] <= 20 + 20 * elapsed + 1


def test_rate_limited_requests_draw_no_fault(shop: SandboxServer, http: requests.Session) -> None:
    clock = FakeClock()
    shop.sandbox.rate_limiter = RateLimiter(1, burst=2, clock=clock)
    shop.set_faults(fail_at=3)

    limited = _statuses(http, shop, 3)
    clock.now += 1.0

    assert limited == [200, 200, 429]
    assert _statuses(http, shop, 1) == [500]


# --- admin endpoints ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_admin_sets_faults_and_reports_exact_stats(
    shop: SandboxServer, http: requests.Session, method: str
) -> None:
    admin = shop.root_url + "/__sandbox"
    faults = {"next_500": 1, "fail_at": 3, "fail_with": "429"}
    answer = requests.request(method, admin + "/faults", json=faults)
    assert answer.status_code == 200 and answer.json()["fail_at"] == 3

    statuses = _statuses(http, shop, 4) + [http.post(shop.base_url + "items", json={"name": "x"}).status_code]
    requests.get(shop.base_url + "items")  # unauthenticated: counted, draws no fault

    assert statuses == [500, 200, 429, 200, 200]
    assert requests.get(admin + "/faults").json() == FaultConfig(fail_at=3, fail_with="429").to_dict()
    assert requests.get(admin + "/stats").json() == {
        "requests": 6,
        "by_status": {"500": 1, "200": 3, "429": 1, "401": 1},
        "by_route": {"list": 5, "create": 1},
        "faults": {"500": 1, "429": 1},
    }
    assert requests.delete(admin + "/stats").json() == {
        "requests": 0,
        "by_status": {},
        "by_route": {},
        "faults": {},
    }


@pytest.mark.parametrize(
    "body",
    [
        {"next_429": -1},
        {"rate_500": 1.5},
        {"bogus": 1},
        {"retry_after": "soon"},
        {"fail_count": 0},
        {"fail_with": "404"},
        {"routes": "list"},
        [1, 2],
    ],
)
def test_admin_rejects_bad_fault_configs(shop: SandboxServer, body: object) -> None:
    response = requests.put(shop.root_url + "/__sandbox/faults", json=body)

    assert response.status_code == 422
    assert set(response.json()) == {"message"}
    assert shop.state.faults == FaultConfig()


def test_admin_routes_are_not_counted_or_faulted(shop: SandboxServer) -> None:
    shop.set_faults(rate_500=1.0)

    health = requests.get(shop.root_url + "/__sandbox/health")

    assert (health.status_code, health.json()) == (200, {"status": "ok", "sandbox": "shop"})
    assert shop.stats()["requests"] == 0


# --- server ------------------------------------------------------------------------------------------


def test_servers_bind_distinct_free_ports_and_release_them() -> None:
    with SandboxServer(ShopSandbox()) as first, SandboxServer(ShopSandbox()) as second:
        ports = {first.port, second.port}
        assert first.base_url == f"http://127.0.0.1:{first.port}/api/v1/"
        assert all(requests.get(s.root_url + "/__sandbox/health").ok for s in (first, second))

    assert len(ports) == 2
    for port in ports:
        with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
            pass


def test_stop_is_bounded_even_with_a_request_in_flight(http: requests.Session) -> None:
    server = SandboxServer(ShopSandbox(FaultConfig(next_slow=1, slow_seconds=30))).start()
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(http.get(server.base_url + "items"))
        except requests.RequestException as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    while server.state.faults.next_slow:  # the slow fault is drawn: the request is in the handler
        time.sleep(0.01)
    started = time.monotonic()
    server.stop(timeout=0.3)
    elapsed = time.monotonic() - started
    caller.join(5)

    assert elapsed < 1.5
    assert not caller.is_alive() and len(outcome) == 1


def test_server_lifecycle_errors() -> None:
    server = SandboxServer(ShopSandbox())
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.root_url
    with server, pytest.raises(RuntimeError, match="already started"):
        server.start()
    server.stop()  # a second stop is harmless


def test_a_sandbox_without_routes_cannot_build_its_app() -> None:
    with pytest.raises(NotImplementedError):
        Sandbox().create_app()

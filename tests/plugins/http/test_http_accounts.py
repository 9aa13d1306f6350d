"""The shared per-account budget and breaker: every client of one account, in any process, obeys them."""

from __future__ import annotations

import threading
import time
from datetime import date

import pytest
from tests.plugins.http.scripted_server import Reply

from elt_platform.http.accounts import ConnectionLimits, connection_limits, shared_limits
from elt_platform.http.errors import CircuitOpenError
from elt_platform.sources.alaqan.client import AlaqanClient


@pytest.fixture
def store(tmp_path):
    from elt_platform.state import open_state_store

    return open_state_store(f"sqlite:///{tmp_path / 'state.db'}")


def test_two_budgets_of_one_account_share_one_bucket(store):
    """Two callers at 20 req/s each would send 40/s on their own: together they stay at 20/s."""
    rate, per_caller = 20.0, 15
    stamps: list[float] = []
    lock = threading.Lock()

    def caller():
        budget, _ = shared_limits("test:shared", rate, burst=1, store=store)
        for _ in range(per_caller):
            budget.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=caller) for _ in range(2)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(stamps) == 2 * per_caller
    # 30 tokens, 1 of them from the initial burst: at least 29 / 20 s must have passed.
    assert max(stamps) - began >= (2 * per_caller - 1) / rate - 0.05


def test_a_breaker_opened_by_one_client_stops_another_before_any_request(store, server):
    _, breaker = shared_limits(f"alaqan:{server.url.split('//')[1].split('/')[0]}", None, store=store)
    breaker.open("HTML 403 ban page seen by another task")
    server.script(Reply(200, {"data": {}}))
    budget, other_breaker = shared_limits(breaker.account, None, store=store)
    client = AlaqanClient(server.url, "secret-key", budget=budget, breaker=other_breaker, max_retries=0)

    with pytest.raises(CircuitOpenError) as caught:
        client.by_date(date(2025, 3, 3))

    assert server.count == 0
    assert caught.value.account == breaker.account
    assert f"elt breaker reset {breaker.account}" in str(caught.value)
    assert "secret-key" not in str(caught.value)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (None, ConnectionLimits(5.0, 1, None)),
        ({}, ConnectionLimits(5.0, 1, None)),
        ({"requests_per_second": "2.5", "burst": "3", "max_retries": 0}, ConnectionLimits(2.5, 3, 0)),
        ({"requests_per_second": 0, "burst": None}, ConnectionLimits(5.0, 1, None)),
    ],
)
def test_connection_limits_read_the_extra_with_the_source_defaults(extra, expected):
    assert connection_limits(extra, 5.0, 1) == expected

"""The client's default request budget against amoCRM's 7 requests/s, with network jitter.

amoCRM (and the sandbox, :class:`~elt_platform.sandbox.rate_limits.RateLimiter`) counts 7 requests/s in a
bucket of 7. A client bucket as large as the server's drains both together, after which a request that
reaches the server a little sooner after its predecessor than it left the client is refused. Simulated on
fake clocks: the client sends whenever its budget allows (a client that is never the bottleneck), and each
request takes its own latency to arrive.
"""

from __future__ import annotations

import pytest

from elt_platform.http.limits import LocalBudget
from elt_platform.sandbox.rate_limits import RateLimiter
from elt_platform.sources.amocrm.connection import ConnectionConfig
from elt_platform.sources.amocrm.settings import DEFAULT_BURST, DEFAULT_REQUESTS_PER_SECOND

# The first request opens the connection (slower); then latencies wobble by a millisecond or two.
LATENCIES = [0.005] + [0.001, 0.002, 0.0015] * 40


def _refusals(burst: int, latencies: list[float]) -> tuple[int, float]:
    """429s the server gives a client with ``burst``, and when the last request left the client."""
    sent = [0.0]
    arrival = [0.0]

    def sleep(seconds: float) -> None:
        sent[0] += seconds

    budget = LocalBudget(DEFAULT_REQUESTS_PER_SECOND, burst, clock=lambda: sent[0], sleep=sleep)
    server = RateLimiter(DEFAULT_REQUESTS_PER_SECOND, clock=lambda: arrival[0])
    refused = 0
    for latency in latencies:
        budget.acquire()
        arrival[0] = sent[0] + latency
        refused += server.acquire("integration") is not None
    return refused, sent[0]


def test_a_client_bucket_as_large_as_the_servers_gets_429s_from_jitter():
    refused, _ = _refusals(7, LATENCIES)
    assert refused > 0


def test_the_default_budget_never_finds_the_servers_bucket_empty():
    refused, last_sent = _refusals(DEFAULT_BURST, LATENCIES)
    assert refused == 0
    # ... and loses nothing but the initial burst: the sustained rate is still 7/s.
    assert last_sent == pytest.approx((len(LATENCIES) - 1) / DEFAULT_REQUESTS_PER_SECOND)


@pytest.mark.parametrize("jitter", [0.05, 0.3, 0.8])
def test_spaced_requests_absorb_large_jitter(jitter):
    latencies = [jitter] + [0.0] * 60
    assert _refusals(DEFAULT_BURST, latencies)[0] == 0


def test_a_connection_without_burst_gets_the_spaced_default():
    class Conn:
        host = "example"
        login = None
        password = "token"
        extra_dejson: dict = {}

    assert ConnectionConfig.from_connection(Conn()).burst == DEFAULT_BURST == 1

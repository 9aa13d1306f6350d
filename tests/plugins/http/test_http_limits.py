"""LocalBudget (token bucket) and LocalBreaker, the in-process budget and breaker."""

import threading
import time

import pytest

from elt_platform.http.errors import CircuitOpenError
from elt_platform.http.limits import Breaker, Budget, LocalBreaker, LocalBudget


def test_budget_reserves_future_tokens() -> None:
    slept: list[float] = []
    budget = LocalBudget(2.0, burst=1, clock=lambda: 100.0, sleep=slept.append)

    waits = [budget.acquire() for _ in range(4)]

    assert waits == [0.0, 0.5, 1.0, 1.5]
    assert slept == [0.5, 1.0, 1.5]


def test_budget_refills_after_idle_up_to_burst() -> None:
    now = [0.0]
    budget = LocalBudget(10.0, burst=3, clock=lambda: now[0], sleep=lambda _: None)
    for _ in range(3):
        budget.acquire()
    now[0] = 60.0  # long idle: the bucket refills to 3, not 600

    assert [budget.acquire() for _ in range(4)] == [0.0, 0.0, 0.0, pytest.approx(0.1)]


def test_budget_is_thread_safe_and_real_time() -> None:
    budget = LocalBudget(50.0, burst=1)
    threads = [threading.Thread(target=budget.acquire) for _ in range(11)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # 11 acquisitions at 50/s with no burst: the last waits 10/50 s.
    assert time.monotonic() - started >= 0.19


@pytest.mark.parametrize("rate", [None, 0.0, -1.0])
def test_disabled_budget_never_waits(rate: float | None) -> None:
    budget = LocalBudget(rate, sleep=lambda _: pytest.fail("slept"))

    assert [budget.acquire() for _ in range(100)] == [0.0] * 100


def test_breaker_refuses_once_opened_and_keeps_the_first_reason() -> None:
    breaker = LocalBreaker("amocrm:acme.amocrm.ru")
    breaker.check()

    breaker.open("HTML 403 ban page")
    breaker.open("a later reason")

    with pytest.raises(
        CircuitOpenError, match=r"amocrm:acme\.amocrm\.ru is open since .* UTC \(HTML 403 ban page\)"
    ):
        breaker.check()
    assert breaker.reason == "HTML 403 ban page"


def test_breaker_reset_lets_requests_through_again() -> None:
    breaker = LocalBreaker()
    breaker.open("ban")

    breaker.reset()

    breaker.check()
    assert breaker.reason is None


@pytest.mark.parametrize(("obj", "protocol"), [(LocalBudget(1.0), Budget), (LocalBreaker(), Breaker)])
def test_local_implementations_satisfy_the_protocols(obj: object, protocol: type) -> None:
    assert isinstance(obj, protocol)

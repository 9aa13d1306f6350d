"""Request budgets: token-bucket arithmetic on a fake clock, and the rate held across three processes."""

from __future__ import annotations

import time

import pytest

from elt_platform.state.budget import RequestBudget, list_budgets
from elt_platform.state.store import StateStore
from state import workers


class FakeTime:
    """A clock that only moves when something sleeps on it."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def grant_offsets(calls: int, rate: float, burst: int) -> list[float]:
    """When each of ``calls`` back-to-back single requests may start, from a full bucket.

    Independent of the implementation: request k (0-based) is the (k + 1)-th token taken; the bucket
    holds ``burst`` at t=0 and gains ``rate`` per second, so it may start at max(0, (k + 1 - burst) / rate).
    """
    return [max(0.0, (k + 1 - burst) / rate) for k in range(calls)]


@pytest.mark.parametrize(("rate", "burst"), [(2.0, 1), (2.0, 3), (20.0, 5), (0.5, 2)])
def test_back_to_back_requests_start_on_the_token_bucket_schedule(
    sqlite_store: StateStore, rate, burst
) -> None:
    fake = FakeTime()
    budget = RequestBudget(sqlite_store, "acct", rate=rate, burst=burst, clock=fake.clock, sleep=fake.sleep)

    started = []
    for _ in range(8):
        budget.acquire()
        started.append(fake.now - 1_000_000.0)

    assert started == pytest.approx(grant_offsets(8, rate, burst))


def test_idle_time_refills_the_bucket_only_up_to_burst(sqlite_store: StateStore) -> None:
    fake = FakeTime()
    budget = RequestBudget(sqlite_store, "acct", rate=2.0, burst=3, clock=fake.clock, sleep=fake.sleep)
    for _ in range(5):
        budget.acquire()
    fake.now += 60.0  # an hour's worth of tokens would be 120; the bucket holds 3

    slept = [budget.acquire() for _ in range(5)]

    assert slept == pytest.approx([0.0, 0.0, 0.0, 0.5, 0.5])


def test_acquiring_several_at_once_waits_for_all_of_them(sqlite_store: StateStore) -> None:
    fake = FakeTime()
    budget = RequestBudget(sqlite_store, "acct", rate=4.0, burst=2, clock=fake.clock, sleep=fake.sleep)

    # 2 in the bucket, then 6 more at 4/s: the batch of 8 may start after 1.5 s, the next single 0.25 s later.
    assert budget.acquire(8) == pytest.approx(1.5)
    assert budget.acquire() == pytest.approx(0.25)


def test_budgets_of_different_accounts_are_independent(sqlite_store: StateStore) -> None:
    fake = FakeTime()
    first = RequestBudget(sqlite_store, "a", rate=1.0, burst=1, clock=fake.clock, sleep=fake.sleep)
    second = RequestBudget(sqlite_store, "b", rate=1.0, burst=1, clock=fake.clock, sleep=fake.sleep)

    assert [first.acquire(), second.acquire(), first.acquire()] == pytest.approx([0.0, 0.0, 1.0])


@pytest.mark.parametrize("rate", [None, 0, -1.0])
def test_unlimited_budget_never_sleeps_nor_stores_a_row(sqlite_store: StateStore, rate) -> None:
    fake = FakeTime()
    budget = RequestBudget(sqlite_store, "acct", rate=rate, burst=1, clock=fake.clock, sleep=fake.sleep)

    assert [budget.acquire() for _ in range(50)] == [0.0] * 50
    assert list_budgets(sqlite_store) == []


def test_list_budgets_projects_the_balance_to_now(sqlite_store: StateStore) -> None:
    fake = FakeTime()
    budget = RequestBudget(sqlite_store, "acct", rate=2.0, burst=4, clock=fake.clock, sleep=fake.sleep)
    for _ in range(4):
        budget.acquire()

    listed = list_budgets(sqlite_store, clock=lambda: fake.now + 1.0)

    assert [(row["account"], row["rate"], row["burst"], row["tokens"]) for row in listed] == [
        ("acct", 2.0, 4, pytest.approx(2.0))
    ]


@pytest.mark.parametrize(("burst", "n"), [(0, 1), (1, 0)])
def test_invalid_burst_or_count_is_refused(sqlite_store: StateStore, burst, n) -> None:
    with pytest.raises(ValueError, match="must be at least 1"):
        RequestBudget(sqlite_store, "acct", rate=1.0, burst=burst).acquire(n)


def test_three_processes_together_stay_within_rate_and_burst(store: StateStore, process_pool) -> None:
    rate, burst, per_process = 20.0, 2, 8
    start_at = time.time() + 0.2
    jobs = [
        process_pool.apply_async(
            workers.acquire_many, (store.url, "shared", rate, burst, per_process, start_at)
        )
        for _ in range(3)
    ]
    results = [job.get(timeout=60) for job in jobs]
    granted = sorted(stamp for _, stamps in results for stamp in stamps)
    total = len(granted)

    assert len({pid for pid, _ in results}) == 3
    assert total == 3 * per_process
    # The last request may start no earlier than (K - B) / R after the first. Tolerance: the first
    # timestamp is taken after its commit, up to one request interval (50 ms) after its grant.
    elapsed = granted[-1] - granted[0]
    assert (total - burst) / rate - 1 / rate <= elapsed <= (total - burst) / rate + 1.0
    for window in (0.25, 0.5, 1.0):
        busiest = max(sum(1 for other in granted if start <= other < start + window) for start in granted)
        assert busiest <= rate * window + burst, f"{busiest} requests within {window} s"

"""Circuit breakers: open in one process, seen by every other and after a restart, closed only by reset."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from elt_platform.state.breaker import CircuitBreaker, CircuitOpenError, list_breakers
from elt_platform.state.store import StateStore
from state import workers


def test_breaker_opened_in_another_process_stops_this_one_until_reset(
    store: StateStore, process_pool
) -> None:
    breaker = CircuitBreaker(store, "amocrm:main")
    breaker.check()  # an account never seen is closed

    assert process_pool.apply(workers.open_breaker, (store.url, "amocrm:main", "HTTP 401 invalid_grant"))
    with pytest.raises(CircuitOpenError) as raised:
        breaker.check()
    assert (raised.value.account, raised.value.reason) == ("amocrm:main", "HTTP 401 invalid_grant")
    assert process_pool.apply(workers.breaker_state, (store.url, "amocrm:main")) == "open"

    assert breaker.reset() is True
    breaker.check()
    assert process_pool.apply(workers.breaker_state, (store.url, "amocrm:main")) == "closed"


def test_open_breaker_survives_reopening_the_store(store: StateStore) -> None:
    CircuitBreaker(store, "acct").open("HTTP 403 account suspended")
    store.close()

    reopened = StateStore(store.url)
    status = CircuitBreaker(reopened, "acct").status()
    reopened.close()

    assert (status["state"], status["reason"]) == ("open", "HTTP 403 account suspended")


def test_first_opener_wins(store: StateStore) -> None:
    breaker = CircuitBreaker(store, "acct")

    assert breaker.open("HTTP 401 invalid_grant") is True
    first = breaker.status()
    assert breaker.open("HTTP 429 quota exhausted") is False
    assert breaker.status() == first
    assert first["reason"] == "HTTP 401 invalid_grant"


def test_reset_of_a_closed_breaker_reports_it_was_not_open(store: StateStore) -> None:
    breaker = CircuitBreaker(store, "acct")

    assert breaker.reset() is False
    breaker.open("HTTP 401")
    assert [breaker.reset(), breaker.reset()] == [True, False]
    assert breaker.status()["state"] == "closed"


def test_open_error_names_account_reason_and_the_reset_command() -> None:
    error = CircuitOpenError("amocrm:main", "HTTP 401 invalid_grant", datetime(2025, 3, 1, 8, 30, tzinfo=UTC))

    assert str(error) == (
        "circuit breaker for account 'amocrm:main' is open since 2025-03-01 08:30:00 UTC: "
        "HTTP 401 invalid_grant. Fix the cause, then close it with: elt breaker reset amocrm:main"
    )


def test_long_or_multiline_reasons_are_flattened_and_cut(sqlite_store: StateStore) -> None:
    breaker = CircuitBreaker(sqlite_store, "acct")
    breaker.open("HTTP 500\n" + "x" * 1000)

    assert breaker.status()["reason"] == ("HTTP 500 " + "x" * 1000)[:300]


def test_list_breakers_shows_every_account_ever_opened(sqlite_store: StateStore) -> None:
    CircuitBreaker(sqlite_store, "b").open("HTTP 401")
    CircuitBreaker(sqlite_store, "a").open("HTTP 403")
    CircuitBreaker(sqlite_store, "a").reset()

    listed = list_breakers(sqlite_store)

    assert [(row["account"], row["state"], row["reason"]) for row in listed] == [
        ("a", "closed", "HTTP 403"),
        ("b", "open", "HTTP 401"),
    ]
    assert listed[0]["reset_at"] >= listed[0]["opened_at"]
    assert listed[1]["reset_at"] is None

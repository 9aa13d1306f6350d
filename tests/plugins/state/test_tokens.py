"""OAuth token pairs: one refresh per rotation even when workers race, nothing stored on failure, no leaks."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from elt_platform.state.schema import oauth_tokens
from elt_platform.state.store import StateStore
from elt_platform.state.tokens import (
    TokenDecryptionError,
    TokenNotFoundError,
    TokenPair,
    TokenStore,
    list_tokens,
)
from state import workers

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SEED = TokenPair("access-0", "refresh-0", NOW + timedelta(hours=1))


def fixed_clock() -> datetime:
    return NOW


def refuse(_stored: TokenPair) -> TokenPair:
    raise AssertionError("the refresher must not be called")


def test_two_processes_refreshing_at_once_spend_the_refresh_token_once(
    store: StateStore, tmp_path: Path, process_pool
) -> None:
    TokenStore(store, "amocrm:main").save(
        TokenPair("access-0", "refresh-0", datetime.now(UTC) + timedelta(hours=1))
    )
    provider = tmp_path / "provider"
    provider.mkdir()

    start_at = time.time() + 0.2
    args = (store.url, "amocrm:main", "access-0", str(provider), start_at)
    jobs = [process_pool.apply_async(workers.refresh_token, args) for _ in range(2)]
    results = [job.get(timeout=60) for job in jobs]

    calls = sorted(path.name for path in provider.glob("call-*"))
    assert len({pid for pid, _ in results}) == 2
    assert len(calls) == 1
    winner = calls[0].removeprefix("call-")
    stored = TokenStore(store, "amocrm:main").get()
    assert results[0][1] == results[1][1] == (stored.access_token, stored.refresh_token, stored.expires_at)
    assert (stored.access_token, stored.refresh_token) == (f"access-{winner}", f"refresh-{winner}")


def test_failed_refresh_stores_nothing_and_propagates(store: StateStore) -> None:
    tokens = TokenStore(store, "acct", clock=fixed_clock)
    tokens.save(SEED)

    def provider_down(_stored: TokenPair) -> TokenPair:
        raise ConnectionError("token endpoint unreachable")

    with pytest.raises(ConnectionError, match="token endpoint unreachable"):
        tokens.refresh(provider_down, stale_access_token="access-0")
    assert tokens.get() == SEED


@pytest.mark.parametrize(
    ("stored_expires_at", "stale", "refreshes"),
    [
        (NOW + timedelta(hours=1), "access-0", True),  # the caller's token is the stored one: renew
        (NOW + timedelta(hours=1), "access-old", False),  # someone else renewed it already
        (NOW + timedelta(hours=1), None, False),  # the caller had none; the stored one is valid
        (NOW + timedelta(seconds=30), "access-old", True),  # renewed, but expiring within the margin
        (NOW - timedelta(minutes=5), None, True),  # expired
        (None, "access-old", False),  # expiry unknown counts as valid
    ],
)
def test_refresh_calls_the_provider_only_when_the_stored_token_is_stale(
    sqlite_store: StateStore, stored_expires_at, stale, refreshes
) -> None:
    tokens = TokenStore(sqlite_store, "acct", clock=fixed_clock)
    tokens.save(TokenPair("access-0", "refresh-0", stored_expires_at))
    fresh = TokenPair("access-1", "refresh-1", NOW + timedelta(hours=2))
    calls: list[TokenPair] = []

    def provider(stored: TokenPair) -> TokenPair:
        calls.append(stored)
        return fresh

    result = tokens.refresh(provider, stale_access_token=stale)

    assert [pair.refresh_token for pair in calls] == (["refresh-0"] if refreshes else [])
    assert (
        result
        == tokens.get()
        == (fresh if refreshes else TokenPair("access-0", "refresh-0", stored_expires_at))
    )


def test_refresh_keeps_the_refresh_token_when_the_provider_does_not_rotate(sqlite_store: StateStore) -> None:
    tokens = TokenStore(sqlite_store, "acct", clock=fixed_clock)
    tokens.save(SEED)

    result = tokens.refresh(lambda _: TokenPair("access-1", None, None), stale_access_token="access-0")

    assert result == tokens.get() == TokenPair("access-1", "refresh-0", None)


def test_refresh_without_a_stored_pair_says_how_to_seed_one(sqlite_store: StateStore) -> None:
    with pytest.raises(TokenNotFoundError, match="no OAuth token pair stored for account 'acct'"):
        TokenStore(sqlite_store, "acct").refresh(refuse, stale_access_token=None)


def test_repr_shows_no_token_value() -> None:
    pair = TokenPair("secret-access", "secret-refresh", datetime(2025, 3, 1, 15, 0, tzinfo=UTC))

    assert (
        repr(pair)
        == str(pair)
        == (
            "TokenPair(access_token='***', refresh_token='***', expires_at='2025-03-01T15:00:00+00:00', "
            "token_type='Bearer')"
        )
    )


@pytest.mark.parametrize(
    ("expires_at", "expected"),
    [
        (None, None),
        (
            datetime(2025, 3, 1, 20, 0, tzinfo=timezone(timedelta(hours=5))),
            datetime(2025, 3, 1, 15, 0, tzinfo=UTC),
        ),
    ],
)
def test_expiry_is_normalised_to_utc(expires_at, expected) -> None:
    assert TokenPair("a", "r", expires_at).expires_at == expected


def test_naive_expiry_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        TokenPair("a", "r", datetime(2025, 3, 1, 15, 0))


def test_tokens_round_trip_with_timezone(store: StateStore) -> None:
    TokenStore(store, "acct").save(SEED)

    assert TokenStore(store, "acct").get() == SEED
    assert list_tokens(store)[0]["expires_at"] == SEED.expires_at


def test_with_a_key_tokens_are_encrypted_at_rest(sqlite_store: StateStore, monkeypatch) -> None:
    monkeypatch.setenv("ELT_STATE_ENCRYPTION_KEY", Fernet.generate_key().decode())
    tokens = TokenStore(sqlite_store, "acct")
    tokens.save(SEED)

    with sqlite_store.engine.connect() as conn:
        raw = conn.execute(select(oauth_tokens.c.access_token, oauth_tokens.c.refresh_token)).one()
    assert [value.startswith("fernet:") for value in raw] == [True, True]
    assert "access-0" not in raw.access_token and "refresh-0" not in raw.refresh_token
    assert tokens.get() == SEED


@pytest.mark.parametrize("key", [None, "other"])
def test_encrypted_tokens_without_the_right_key_fail_without_showing_them(
    sqlite_store: StateStore, monkeypatch, key
) -> None:
    monkeypatch.setenv("ELT_STATE_ENCRYPTION_KEY", Fernet.generate_key().decode())
    TokenStore(sqlite_store, "acct").save(SEED)
    if key is None:
        monkeypatch.delenv("ELT_STATE_ENCRYPTION_KEY")
    else:
        monkeypatch.setenv("ELT_STATE_ENCRYPTION_KEY", Fernet.generate_key().decode())

    with pytest.raises(TokenDecryptionError) as raised:
        TokenStore(sqlite_store, "acct").get()
    assert "acct" in str(raised.value)
    assert "access-0" not in str(raised.value) and "refresh-0" not in str(raised.value)


def test_rows_saved_before_a_key_was_set_stay_readable(sqlite_store: StateStore, monkeypatch) -> None:
    TokenStore(sqlite_store, "acct").save(SEED)
    monkeypatch.setenv("ELT_STATE_ENCRYPTION_KEY", Fernet.generate_key().decode())

    assert TokenStore(sqlite_store, "acct").get() == SEED

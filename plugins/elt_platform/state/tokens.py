"""OAuth token pairs per external account, refreshed by exactly one worker at a time.

Providers such as amoCRM rotate refresh tokens: each one is single-use, and using it twice (two workers
that both saw a 401) invalidates the whole grant, which then needs a human to re-authorise.
:meth:`TokenStore.refresh` therefore re-reads the pair under the row lock and calls the provider only if
nobody refreshed it in the meantime, storing the new pair in the same transaction.

Token values never appear in a ``repr``, a log line or an exception message raised here. At rest they
are stored as given unless ``ELT_STATE_ENCRYPTION_KEY`` holds a Fernet key (comma-separated keys: the
first encrypts, all decrypt, for rotation); rows written before a key was set stay readable.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import select

from elt_platform.state.schema import oauth_tokens
from elt_platform.state.store import StateStore, utcnow

log = logging.getLogger(__name__)

KEY_VARIABLE = "ELT_STATE_ENCRYPTION_KEY"
_ENCRYPTED_PREFIX = "fernet:"
#: A token this close to expiry counts as expired: it could lapse between the check and the request.
DEFAULT_EXPIRY_MARGIN = timedelta(seconds=60)


class TokenNotFoundError(LookupError):
    """No token pair is stored for the account (seed one with :meth:`TokenStore.save`)."""


class TokenDecryptionError(RuntimeError):
    """A stored token cannot be decrypted with the key(s) in ``ELT_STATE_ENCRYPTION_KEY``."""


@dataclass(frozen=True, repr=False)
class TokenPair:
    """An access token and the refresh token that renews it.

    Attributes:
        access_token: bearer credential.
        refresh_token: credential for the next refresh (``None`` if the grant has none).
        expires_at: when the access token lapses, UTC-aware (``None``: unknown, treated as valid).
        token_type: the ``Authorization`` scheme.

    Raises:
        ValueError: ``expires_at`` is naive.
    """

    access_token: str
    refresh_token: str | None
    expires_at: datetime | None
    token_type: str = "Bearer"

    def __post_init__(self) -> None:
        if self.expires_at is not None:
            if self.expires_at.tzinfo is None:
                raise ValueError("TokenPair.expires_at must be timezone-aware (UTC)")
            object.__setattr__(self, "expires_at", self.expires_at.astimezone(UTC))

    def __repr__(self) -> str:
        refresh = "None" if self.refresh_token is None else "'***'"
        expires = self.expires_at.isoformat() if self.expires_at else None
        return (
            f"TokenPair(access_token='***', refresh_token={refresh}, expires_at={expires!r}, "
            f"token_type={self.token_type!r})"
        )

    __str__ = __repr__


class TokenStore:
    """The stored token pair of one external account.

    Args:
        store: the state store.
        account: the external account.
        expiry_margin: how long before ``expires_at`` a token already counts as expired.
        clock: the current UTC instant (injected by tests).
    """

    def __init__(
        self,
        store: StateStore,
        account: str,
        *,
        expiry_margin: timedelta = DEFAULT_EXPIRY_MARGIN,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.account = account
        self.expiry_margin = expiry_margin
        self._clock = clock

    def __repr__(self) -> str:
        return f"TokenStore({self.account!r})"

    def get(self) -> TokenPair | None:
        """The stored pair, or ``None`` if the account has none."""
        with self.store.transaction(write=False) as conn:
            row = conn.execute(
                select(oauth_tokens).where(oauth_tokens.c.account == self.account)
            ).one_or_none()
        return None if row is None else self._decode(row)

    def save(self, pair: TokenPair) -> None:
        """Store ``pair``, replacing any previous one (initial authorisation, manual re-seed)."""
        with self.store.transaction() as conn:
            self._write(conn, pair)

    def is_expired(self, pair: TokenPair) -> bool:
        """Whether ``pair``'s access token lapses within the expiry margin."""
        return pair.expires_at is not None and pair.expires_at <= self._clock() + self.expiry_margin

    def refresh(
        self, refresher: Callable[[TokenPair], TokenPair], *, stale_access_token: str | None
    ) -> TokenPair:
        """Renew the pair unless another worker already did, calling the provider at most once.

        Under the row lock the stored pair is re-read. If its access token differs from the one the
        caller found stale and has not expired, another worker refreshed it: that pair is returned
        and ``refresher`` is not called. Otherwise ``refresher(stored)`` runs while the lock is held
        and its result is stored in the same transaction, so a single-use refresh token is spent once.
        If the provider does not rotate (``refresh_token`` is ``None`` in the result), the stored
        refresh token is kept.

        On SQLite the lock is the database's write lock: keep ``refresher`` to the one HTTP call.

        Args:
            refresher: exchanges the stored pair's refresh token for a new pair (one HTTP call).
            stale_access_token: the access token the caller saw rejected or expiring (``None`` if
                it had none).

        Returns:
            The pair now stored.

        Raises:
            TokenNotFoundError: nothing is stored for the account.
            TypeError: ``refresher`` returned something other than a :class:`TokenPair`.
            Exception: whatever ``refresher`` raised; nothing is stored then.
        """
        with self.store.transaction() as conn:
            row = conn.execute(
                select(oauth_tokens).where(oauth_tokens.c.account == self.account).with_for_update()
            ).one_or_none()
            if row is None:
                raise TokenNotFoundError(
                    f"no OAuth token pair stored for account {self.account!r}: authorise the account "
                    "and save the first pair with TokenStore.save()"
                )
            stored = self._decode(row)
            if stored.access_token != stale_access_token and not self.is_expired(stored):
                log.info("token of account %s was already refreshed by another worker", self.account)
                return stored
            fresh = refresher(stored)
            if not isinstance(fresh, TokenPair):
                raise TypeError(f"refresher for account {self.account!r} returned {type(fresh).__name__}")
            if fresh.refresh_token is None:
                fresh = replace(fresh, refresh_token=stored.refresh_token)
            self._write(conn, fresh)
        log.info("refreshed the token of account %s (expires %s)", self.account, fresh.expires_at)
        return fresh

    def _write(self, conn, pair: TokenPair) -> None:
        self.store.upsert(
            conn,
            oauth_tokens,
            {
                "account": self.account,
                "access_token": _encrypt(pair.access_token),
                "refresh_token": None if pair.refresh_token is None else _encrypt(pair.refresh_token),
                "expires_at": pair.expires_at,
                "token_type": pair.token_type,
                "updated_at": utcnow(),
            },
        )

    def _decode(self, row) -> TokenPair:
        return TokenPair(
            access_token=_decrypt(row.access_token, self.account),
            refresh_token=None if row.refresh_token is None else _decrypt(row.refresh_token, self.account),
            expires_at=row.expires_at,
            token_type=row.token_type,
        )


def list_tokens(store: StateStore) -> list[dict[str, Any]]:
    """Which accounts hold a token pair and until when, without any token value.

    Args:
        store: the state store.

    Returns:
        ``account``, ``expires_at``, ``updated_at`` per account, by account.
    """
    columns = (oauth_tokens.c.account, oauth_tokens.c.expires_at, oauth_tokens.c.updated_at)
    with store.transaction(write=False) as conn:
        rows = conn.execute(select(*columns).order_by(oauth_tokens.c.account)).all()
    return [dict(row._mapping) for row in rows]


@lru_cache(maxsize=4)
def _cipher_for(keys: str):
    from cryptography.fernet import Fernet, MultiFernet

    try:
        return MultiFernet([Fernet(key.strip()) for key in keys.split(",") if key.strip()])
    except ValueError:
        # The library's message is generic, but never risk echoing key material.
        raise ValueError(f"{KEY_VARIABLE} is not a valid Fernet key (32 url-safe base64 bytes)") from None


def _cipher():
    keys = os.environ.get(KEY_VARIABLE, "").strip()
    return _cipher_for(keys) if keys else None


def _encrypt(value: str) -> str:
    cipher = _cipher()
    return value if cipher is None else _ENCRYPTED_PREFIX + cipher.encrypt(value.encode()).decode()


def _decrypt(value: str, account: str) -> str:
    if not value.startswith(_ENCRYPTED_PREFIX):
        return value
    cipher = _cipher()
    if cipher is None:
        raise TokenDecryptionError(f"token of account {account!r} is encrypted but {KEY_VARIABLE} is not set")
    from cryptography.fernet import InvalidToken

    try:
        return cipher.decrypt(value[len(_ENCRYPTED_PREFIX) :].encode()).decode()
    except InvalidToken:
        raise TokenDecryptionError(
            f"token of account {account!r} cannot be decrypted with the key(s) in {KEY_VARIABLE}"
        ) from None

"""amoCRM OAuth 2.0: the token endpoint, the first authorization-code exchange, the state-store refresher.

amoCRM's refresh tokens are single-use and rotate on every refresh (SOURCE_FACTS §3): spending one twice
kills the grant, and then a human has to authorise the integration again. So token pairs live in the
state store (:class:`~elt_platform.state.tokens.TokenStore`, one row per account ``amocrm:<host>``), and
the refresh runs under its lock — every worker, process and DAG run shares one pair and at most one of
them refreshes it.

* :func:`exchange_authorization_code` stores the first pair (``elt amocrm-auth --code CODE``);
* :class:`TokenEndpoint` ``.refresh`` is the refresher :class:`~elt_platform.http.auth.TokenStoreProvider`
  calls on a 401 or ahead of expiry.

Neither the client secret nor any token is ever logged, put in a message or returned in a ``repr``: the
token endpoint's HTTP client knows them all as secrets, and :class:`TokenPair` masks its own ``repr``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from elt_platform.http.auth import TokenStoreProvider
from elt_platform.http.client import HttpClient
from elt_platform.http.errors import AuthError, BannedError, HttpError, PayloadError
from elt_platform.http.limits import Breaker
from elt_platform.sources.amocrm.connection import ConnectionConfig
from elt_platform.sources.amocrm.settings import (
    AUTH_OAUTH,
    CONN_ID,
    TOKEN_MAX_RETRIES,
)
from elt_platform.state.tokens import TokenPair, TokenStore

#: What an operator runs to (re-)authorise the account.
AUTH_COMMAND = "elt amocrm-auth --code CODE (make amocrm-auth CODE=...)"


class GrantError(AuthError):
    """The token endpoint refused the grant (code, refresh token or client credentials): re-authorise."""


class _TokenEndpointSecrets:
    """The token endpoint's "auth": adds nothing to requests, but tells the redactor every secret in play."""

    def __init__(self, client_secret: str) -> None:
        self._lock = threading.Lock()
        self._secrets = [client_secret]

    def remember(self, *values: str | None) -> None:
        with self._lock:
            self._secrets.extend(v for v in values if v and v not in self._secrets)

    def apply(self, request: requests.PreparedRequest) -> None:
        """Nothing to add: the credentials travel in the JSON body."""

    def secrets(self) -> list[str]:
        with self._lock:
            return list(self._secrets)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class TokenEndpoint:
    """``POST /oauth2/access_token`` of one account.

    Args:
        config: The connection (OAuth mode).
        breaker: The account's breaker: a banned account is not asked for tokens either.
        session: Session to use (not closed by :meth:`close`).
        now: Current time (tests).
        sleep: Sleeps between retries (tests).
    """

    def __init__(
        self,
        config: ConnectionConfig,
        *,
        breaker: Breaker | None = None,
        session: requests.Session | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if config.auth != AUTH_OAUTH:
            raise ValueError(f"{config.account}: the {CONN_ID} connection is not set up for OAuth 2.0")
        from elt_platform.sources.amocrm.client import classify_ban

        self.config = config
        self.url = config.token_url
        self._now = now
        self._secrets = _TokenEndpointSecrets(config.secret)
        kwargs: dict[str, Any] = {} if sleep is None else {"sleep": sleep}
        # No request budget: the refresh runs under the token lock (on SQLite the database write lock),
        # and it is one request a day.
        self._http = HttpClient(
            self.url,
            auth=self._secrets,
            account=config.account,
            breaker=breaker,
            max_retries=TOKEN_MAX_RETRIES,
            classify=classify_ban,
            session=session,
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, account={self.config.account!r})"

    def close(self) -> None:
        """Close the session if this endpoint created it."""
        self._http.close()

    def _grant(self, grant: dict[str, str], what: str) -> TokenPair:
        body = {
            "client_id": self.config.client_id,
            "client_secret": self.config.secret,
            "redirect_uri": self.config.redirect_uri,
            **grant,
        }
        self._secrets.remember(grant.get("code"), grant.get("refresh_token"))
        try:
            response = self._http.request("POST", self.url, json=body, what=what)
        except BannedError:
            raise
        except HttpError as error:
            if error.status is None or error.status >= 500 or error.status == 429:
                raise
            # 400 "Token has been revoked" / "Authorization code has expired", 401 wrong client secret.
            raise GrantError(
                f"{error}; the grant is not usable (refresh tokens are single-use and expire after 3 months, "
                f"authorization codes after 20 minutes): re-authorise the integration and run {AUTH_COMMAND}",
                status=error.status,
                what=error.what,
                account=self.config.account,
                redactor=self._http.redact,
            ) from None
        return self._pair(response.json(), what)

    def _pair(self, data: Any, what: str) -> TokenPair:
        if not isinstance(data, dict) or not data.get("access_token"):
            keys = sorted(data)[:10] if isinstance(data, dict) else type(data).__name__
            raise PayloadError(
                f"{what}: the token endpoint answered without an access_token (keys {keys})",
                what=what,
                account=self.config.account,
                redactor=self._http.redact,
            )
        self._secrets.remember(data["access_token"], data.get("refresh_token"))
        expires_in = data.get("expires_in")
        expires_at = None
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            expires_at = self._now() + timedelta(seconds=expires_in)
        return TokenPair(
            access_token=data["access_token"],
            refresh_token=data.get("refresh_token") or None,
            expires_at=expires_at,
            token_type=data.get("token_type") or "Bearer",
        )

    def exchange_code(self, code: str) -> TokenPair:
        """Exchange an authorization code (valid 20 minutes, single use) for the first token pair.

        Raises:
            GrantError: The code or the client credentials were refused.
        """
        if not code:
            raise ValueError("the authorization code is empty")
        return self._grant({"grant_type": "authorization_code", "code": code}, "OAuth code exchange")

    def refresh(self, stored: TokenPair) -> TokenPair:
        """The refresher of :meth:`TokenStore.refresh`: spend the stored refresh token for a new pair.

        Raises:
            GrantError: The refresh token was refused (revoked, expired or already spent): re-authorise.
        """
        if not stored.refresh_token:
            raise GrantError(
                f"{self.config.account}: the stored token pair has no refresh token; run {AUTH_COMMAND}",
                account=self.config.account,
            )
        self._secrets.remember(stored.access_token)
        return self._grant(
            {"grant_type": "refresh_token", "refresh_token": stored.refresh_token}, "OAuth token refresh"
        )

    def secrets(self) -> list[str]:
        """Every secret this endpoint has seen: client secret, codes, refresh and access tokens."""
        return self._secrets.secrets()


class AmoCrmTokenProvider(TokenStoreProvider):
    """:class:`TokenStoreProvider` whose "no pair stored" error names the command that stores one."""

    def __init__(self, token_store: TokenStore, refresher: Callable[[TokenPair], TokenPair], **kwargs: Any):
        super().__init__(token_store, refresher, **kwargs)
        self.account = token_store.account

    def current(self) -> str:
        """The stored access token (refreshed first when it is about to expire).

        Raises:
            AuthError: No token pair is stored for the account.
        """
        try:
            return super().current()
        except AuthError as error:
            if error.status is not None or self._store.get() is not None:
                raise
            raise AuthError(
                f"{self.account}: no OAuth token pair is stored yet; authorise the integration in amoCRM and "
                f"run {AUTH_COMMAND} within 20 minutes of getting the code",
                account=self.account,
            ) from None


def exchange_authorization_code(
    conn: Any, code: str, *, store: Any = None, session: requests.Session | None = None
) -> TokenPair:
    """Exchange an authorization code for the first token pair and store it for the account.

    Args:
        conn: The ``amocrm_default`` Airflow connection (OAuth mode), or anything with its attributes.
        code: The authorization code amoCRM shows (or sends to the redirect URI) after authorisation.
        store: The state store (default :func:`~elt_platform.state.store.open_state_store`).
        session: HTTP session (tests).

    Returns:
        The stored pair (its ``repr`` masks the tokens).

    Raises:
        ValueError: The connection is not an OAuth connection.
        AuthError: amoCRM refused the code or the client credentials.
    """
    from elt_platform.state.store import open_state_store

    config = ConnectionConfig.from_connection(conn)
    endpoint = TokenEndpoint(config, session=session)
    try:
        pair = endpoint.exchange_code(code.strip())
    finally:
        endpoint.close()
    TokenStore(store or open_state_store(), config.account).save(pair)
    return pair

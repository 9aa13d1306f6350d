"""Pluggable authentication for :class:`~elt_platform.http.client.HttpClient`.

An auth object has a small protocol: ``apply(request)`` puts the credential on a prepared request just
before it is sent (so a refreshed token is used by the next attempt), ``secrets()`` lists what the
redactor must mask, and the optional ``on_unauthorized(request)`` is asked after a 401: True means "the
credential was renewed, one more try is worth it". Every ``repr`` here masks the secret.
"""

import threading
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import requests

from elt_platform.http.errors import AuthError
from elt_platform.http.redaction import MASK

# amoCRM access tokens live 24 h; refreshing 5 minutes early keeps a long page walk from meeting a 401.
REFRESH_MARGIN = timedelta(minutes=5)
# Recently used OAuth access tokens stay masked for a while after rotation: late log lines may name them.
_REMEMBERED_TOKENS = 8


@runtime_checkable
class Auth(Protocol):
    """What :class:`~elt_platform.http.client.HttpClient` needs from an auth object."""

    def apply(self, request: requests.PreparedRequest) -> None:
        """Put the credential on a request about to be sent."""
        ...

    def secrets(self) -> Iterable[str]:
        """The strings the redactor must mask."""
        ...


class NoAuth:
    """No credential (public endpoints, or the credential is in the body of a token request)."""

    def apply(self, request: requests.PreparedRequest) -> None:
        """Leave the request as it is."""

    def secrets(self) -> tuple[str, ...]:
        """Nothing to mask."""
        return ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ApiKeyHeader:
    """A static key in a header, e.g. Alaqan's ``X-Api-Key``."""

    def __init__(self, header: str, key: str) -> None:
        """Create the auth.

        Args:
            header: Header name.
            key: The key; never logged.

        Raises:
            ValueError: If ``header`` or ``key`` is empty.
        """
        if not header or not key:
            raise ValueError("ApiKeyHeader needs a header name and a non-empty key")
        self.header = header
        self._key = key

    def apply(self, request: requests.PreparedRequest) -> None:
        """Set the key header."""
        request.headers[self.header] = self._key

    def secrets(self) -> tuple[str, ...]:
        """The key."""
        return (self._key,)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(header={self.header!r}, key={MASK!r})"


class BearerToken:
    """A long-lived bearer token (e.g. an amoCRM private integration's long-lived token)."""

    def __init__(self, token: str) -> None:
        """Create the auth.

        Args:
            token: The token; never logged.

        Raises:
            ValueError: If ``token`` is empty.
        """
        if not token:
            raise ValueError("BearerToken needs a non-empty token")
        self._token = token

    def apply(self, request: requests.PreparedRequest) -> None:
        """Set ``Authorization: Bearer <token>``."""
        request.headers["Authorization"] = f"Bearer {self._token}"

    def secrets(self) -> tuple[str, ...]:
        """The token."""
        return (self._token,)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(token={MASK!r})"


class TokenProvider(Protocol):
    """Where :class:`OAuth2RefreshingBearer` gets access tokens from."""

    def current(self) -> str:
        """Return a usable access token (refreshing first when it is about to expire)."""
        ...

    def refresh(self, stale_access_token: str) -> str:
        """Return a newer token than ``stale_access_token``, refreshing at most once across callers."""
        ...


def _bearer_token(request: requests.PreparedRequest) -> str:
    value = request.headers.get("Authorization", "")
    return value[len("Bearer ") :] if value.startswith("Bearer ") else value


class OAuth2RefreshingBearer:
    """OAuth 2.0 access tokens with refresh: on a 401 the token is refreshed once and the request retried.

    The refresh itself belongs to the provider; with rotating single-use refresh tokens (amoCRM) it must
    be backed by shared storage, see :class:`TokenStoreProvider`. Within a process, threads that hit a 401
    together refresh once: the others find a token newer than the one that failed and just retry.
    """

    def __init__(self, provider: TokenProvider) -> None:
        """Create the auth.

        Args:
            provider: Anything with ``current() -> str`` and ``refresh(stale_access_token) -> str``.
        """
        self._provider = provider
        self._lock = threading.Lock()  # guards _used
        self._refresh_lock = threading.Lock()
        self._used: deque[str] = deque(maxlen=_REMEMBERED_TOKENS)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={type(self._provider).__name__})"

    def _remember(self, token: str) -> str:
        with self._lock:
            if token not in self._used:
                self._used.append(token)
        return token

    def apply(self, request: requests.PreparedRequest) -> None:
        """Set ``Authorization: Bearer <current access token>``."""
        request.headers["Authorization"] = f"Bearer {self._remember(self._provider.current())}"

    def secrets(self) -> list[str]:
        """Access tokens used recently, plus whatever the provider declares (e.g. the refresh token)."""
        extra = getattr(self._provider, "secrets", None)
        with self._lock:
            used = list(self._used)
        return used + (list(extra()) if callable(extra) else [])

    def on_unauthorized(self, request: requests.PreparedRequest) -> bool:
        """Refresh the token the rejected request carried.

        Args:
            request: The request that got the 401 (its ``Authorization`` names the stale token).

        Returns:
            True: a newer token exists now, one more try is worth it.
        """
        stale = _bearer_token(request)
        with self._refresh_lock:
            # Held across the refresh: a second thread with the same stale token waits, then sees the
            # new one and does not spend a refresh token of its own.
            current = self._provider.current()
            fresh = current if current != stale else self._provider.refresh(stale_access_token=stale)
        self._remember(fresh)
        return True


class TokenStoreProvider:
    """Adapts a state-store ``TokenStore`` to :class:`TokenProvider`.

    The store guarantees that ``refresh(refresher, stale_access_token=...)`` refreshes at most once across
    processes (a caller holding an already replaced token just gets the newer pair), which is what
    single-use rotating refresh tokens need.
    """

    def __init__(
        self,
        token_store: Any,
        refresher: Callable[..., Any],
        *,
        margin: timedelta = REFRESH_MARGIN,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Create the provider.

        Args:
            token_store: Has ``get() -> TokenPair | None`` and ``refresh(refresher, *, stale_access_token)
                -> TokenPair``; a pair has ``access_token``, ``refresh_token`` and ``expires_at`` (an aware
                or UTC-naive datetime, Unix seconds, or None for "does not expire").
            refresher: Passed through to ``token_store.refresh``: it calls the token endpoint.
            margin: Refresh proactively when the token expires within this margin.
            now: Current time, injectable for tests.
        """
        self._store = token_store
        self._refresher = refresher
        self._margin = margin
        self._now = now
        self._last_pair: Any = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(token_store={type(self._store).__name__})"

    def _expires_soon(self, expires_at: Any) -> bool:
        if expires_at is None:
            return False
        if isinstance(expires_at, int | float):
            expires_at = datetime.fromtimestamp(expires_at, UTC)
        elif expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        return expires_at - self._now() <= self._margin

    def current(self) -> str:
        """Return the stored access token, refreshed first when it expires within the margin.

        Raises:
            AuthError: No token pair is stored (the authorization flow was never completed).
        """
        pair = self._store.get()
        if pair is None:
            raise AuthError(
                "no OAuth token pair is stored: complete the authorization flow (authorization code "
                "exchange) before calling the API"
            )
        if self._expires_soon(pair.expires_at):
            pair = self._store.refresh(self._refresher, stale_access_token=pair.access_token)
        self._last_pair = pair
        return pair.access_token

    def refresh(self, stale_access_token: str) -> str:
        """Return an access token newer than ``stale_access_token`` (the store refreshes at most once)."""
        pair = self._store.refresh(self._refresher, stale_access_token=stale_access_token)
        self._last_pair = pair
        return pair.access_token

    def secrets(self) -> list[str]:
        """The tokens of the pair last read, so a message quoting either is masked.

        Not read from the store: the redactor asks at every log line, a query each time would cost more
        than the request.
        """
        pair = self._last_pair
        return [] if pair is None else [token for token in (pair.access_token, pair.refresh_token) if token]


class WebhookUrl:
    """A Bitrix24 incoming webhook: the URL path ``/rest/<user>/<token>/`` is the credential.

    Use its :attr:`base_url` as the client's base URL; the token is registered with the redactor, so log
    lines and messages show ``/rest/1/***/crm.deal.list.json``.
    """

    def __init__(self, base_url: str) -> None:
        """Create the auth.

        Args:
            base_url: The webhook URL as Bitrix24 shows it, e.g. ``https://x.bitrix24.kz/rest/1/abc123/``.

        Raises:
            ValueError: The URL has no ``/rest/<user id>/<token>`` part (the message does not quote it).
        """
        parts = urlsplit(base_url.strip())
        segments = [segment for segment in parts.path.split("/") if segment]
        index = segments.index("rest") if "rest" in segments else -1
        if parts.scheme not in ("http", "https") or index < 0 or len(segments) < index + 3:
            raise ValueError(
                f"not a Bitrix24 incoming-webhook URL (host {parts.hostname!r}): expected "
                "https://<portal>/rest/<user id>/<token>/"
            )
        self.user_id = segments[index + 1]
        self._token = segments[index + 2]
        path = "/" + "/".join(segments[: index + 3]) + "/"
        self.base_url = urlunsplit((parts.scheme, parts.netloc, path, "", ""))

    def apply(self, request: requests.PreparedRequest) -> None:
        """Nothing to add: the URL already carries the token."""

    def secrets(self) -> tuple[str, ...]:
        """The token part of the path."""
        return (self._token,)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url.replace(self._token, MASK)!r})"

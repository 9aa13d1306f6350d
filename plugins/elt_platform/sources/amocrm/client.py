"""HTTP client for amoCRM API v4 on top of the shared HTTP layer: auth, ban detection, pagination.

The only module of the source that calls the API (the token endpoint aside, :mod:`.auth`). Session,
retries with backoff (429 ``Retry-After``), the per-account budget, the breaker and the error taxonomy
come from :class:`~elt_platform.http.client.HttpClient`; this module adds:

* auth chosen by the connection: a long-lived token (:class:`~elt_platform.http.auth.BearerToken`) or
  OAuth 2.0 with token pairs in the state store (:class:`~elt_platform.http.auth.OAuth2RefreshingBearer`
  over :class:`~.auth.AmoCrmTokenProvider`): a 401 refreshes once, across every worker, and retries;
* :func:`classify_ban`: amoCRM answers a blocked account with an nginx **HTML** 403 instead of
  ``application/problem+json``; that opens the account's breaker, so every task calling the account
  stops until ``elt breaker reset amocrm:<host>``;
* :meth:`AmoCrmClient.iter_pages`: ``page`` + ``limit`` pagination that stops on a page without
  ``_links.next`` or on HTTP 204 (amoCRM's empty result has no body). Pages are yielded *before* they are
  decoded, so the caller lands the raw body first; a body that is not JSON then raises the layer's
  :class:`~elt_platform.http.errors.NonJsonError` naming the status.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Unpack

import requests
from requests.adapters import HTTPAdapter

from elt_platform.http.auth import Auth, BearerToken, OAuth2RefreshingBearer
from elt_platform.http.client import HttpClient, HttpOptions, HttpResponse
from elt_platform.http.errors import AuthError, BannedError, PayloadError
from elt_platform.http.limits import Breaker, Budget, LocalBudget
from elt_platform.sources.amocrm.auth import AUTH_COMMAND, AmoCrmTokenProvider, GrantError, TokenEndpoint
from elt_platform.sources.amocrm.connection import ConnectionConfig, account_for
from elt_platform.sources.amocrm.parsing import has_next
from elt_platform.sources.amocrm.settings import (
    AUTH_OAUTH,
    CONN_ID,
    DEFAULT_BURST,
    DEFAULT_REQUESTS_PER_SECOND,
    MAX_PAGES,
    PAGE_SIZE,
)

#: A JSON 403 (not the HTML ban page): the token is fine, the integration's user may not read the entity.
FORBIDDEN_HINT = "the integration's user may lack the rights to read this list (amoCRM user rights)"
BAN_REASON = "HTML 403 page instead of JSON: amoCRM blocked the account's API access"


def classify_ban(response: HttpResponse) -> str | None:
    """The ``classify`` hook: an HTML 403 is amoCRM's account block (a JSON 403 is a rights problem)."""
    content_type = (response.content_type or "").split(";", 1)[0].strip().lower()
    if response.status == 403 and content_type == "text/html":
        return BAN_REASON
    return None


@dataclass(frozen=True)
class Page:
    """One page of a list, as received.

    Attributes:
        number: The ``page`` parameter it was requested with (1-based).
        response: The response; :meth:`json` decodes it (cached).
    """

    number: int
    response: HttpResponse

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def content(self) -> bytes:
        """The raw body (empty for HTTP 204): land it before decoding."""
        return self.response.content

    @property
    def what(self) -> str:
        return self.response.what

    def json(self) -> Any:
        """The decoded body; None for HTTP 204 or an empty body.

        Raises:
            NonJsonError: The body is not JSON (the message names the status and content type).
            PayloadError: The body claims JSON but does not parse (e.g. truncated).
        """
        return self.response.json()


class _OAuthBearer(OAuth2RefreshingBearer):
    """OAuth bearer whose redactor also knows the client secret and every token the endpoint handled."""

    def __init__(self, provider: AmoCrmTokenProvider, endpoint: TokenEndpoint) -> None:
        super().__init__(provider)
        self._endpoint = endpoint

    def secrets(self) -> list[str]:
        return [*super().secrets(), *self._endpoint.secrets()]


class _CountingSession(requests.Session):
    """A session that counts the requests it sends (retries and token refreshes included)."""

    def __init__(self, pool_maxsize: int = 4) -> None:
        super().__init__()
        # max_retries=0: retrying is the HTTP layer's (with budget, breaker and logging), not urllib3's.
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_maxsize, max_retries=0)
        self.mount("https://", adapter)
        self.mount("http://", adapter)
        self._lock = threading.Lock()
        self.sent = 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        with self._lock:
            self.sent += 1
        return super().send(request, **kwargs)


@dataclass(frozen=True)
class ClientStats:
    """What a client did so far: HTTP requests sent (retries and refreshes included), pages, 204s."""

    requests: int
    pages: int
    no_content: int


class AmoCrmClient:
    """amoCRM API v4 for one account.

    Example:
        >>> client = AmoCrmClient.from_connection(BaseHook.get_connection(CONN_ID))  # doctest: +SKIP
        >>> for page in client.iter_pages("leads", {"with": "contacts,companies"}):  # doctest: +SKIP
        ...     land(page.content, ...)
        ...     leads = page_records(page.json(), "leads", page.what)
    """

    def __init__(
        self,
        base_url: str,
        auth: Auth,
        *,
        budget: Budget | None = None,
        breaker: Breaker | None = None,
        requests_per_second: float | None = DEFAULT_REQUESTS_PER_SECOND,
        burst: int = DEFAULT_BURST,
        session: requests.Session | None = None,
        auth_hint: str = "",
        closing: tuple[Any, ...] = (),
        **options: Unpack[HttpOptions],
    ) -> None:
        """Create a client.

        Args:
            base_url: API root ending in ``/api/v4/`` (see :func:`~.connection.build_base_url`).
            auth: A :mod:`~elt_platform.http.auth` object (see :meth:`from_connection`).
            budget: The account's request budget (e.g. the state store's, shared across processes);
                default: an in-process token bucket at ``requests_per_second``.
            breaker: The account's circuit breaker (opened on a ban); default: none.
            requests_per_second: Rate of the default budget (None: unlimited). Ignored with ``budget``.
            burst: Burst of the default budget.
            session: Session to use (closed by :meth:`close`); default: a counting session of its own.
            auth_hint: Appended to 401 errors (what to do about them).
            closing: Further objects with ``close()`` this client owns (the OAuth token endpoint).
            **options: Timeouts and retries of :class:`~elt_platform.http.client.HttpClient`
                (``max_retries``, ``timeout``, ``sleep`` between attempts…); default: the HTTP layer's policy.
        """
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.account = account_for(self.base_url)
        self._session = session if session is not None else _CountingSession()
        self._closing = closing
        self._auth_hint = auth_hint
        self._lock = threading.Lock()
        self._pages = 0
        self._no_content = 0
        self._http = HttpClient(
            self.base_url,
            auth=auth,
            account=self.account,
            budget=budget if budget is not None else LocalBudget(requests_per_second, burst),
            breaker=breaker,
            classify=classify_ban,
            session=self._session,
            **options,
        )

    @classmethod
    def from_connection(
        cls,
        conn: Any,
        *,
        budget: Budget | None = None,
        breaker: Breaker | None = None,
        store: Any = None,
        **overrides: Any,
    ) -> AmoCrmClient:
        """Build a client from the ``amocrm_default`` connection (see :mod:`.connection` for its fields).

        Args:
            conn: An Airflow connection, or anything with ``host``, ``login``, ``password``, ``extra_dejson``.
            budget: The account's shared budget (default: in-process, the connection's rate).
            breaker: The account's shared breaker (default: none).
            store: OAuth only: the state store holding the token pair (default: ``open_state_store()``).
            **overrides: Keyword arguments of :class:`AmoCrmClient` (``sleep``, ``max_retries``…).

        Returns:
            A configured client; OAuth tokens are read from the store at the first request.

        Raises:
            ValueError: The connection is incomplete (no host, no password, OAuth without redirect URI).
        """
        config = ConnectionConfig.from_connection(conn)
        overrides.setdefault("requests_per_second", config.requests_per_second)
        overrides.setdefault("burst", config.burst)
        if config.max_retries is not None:
            overrides.setdefault("max_retries", config.max_retries)
        session = overrides.pop("session", None) or _CountingSession()
        if config.auth != AUTH_OAUTH:
            hint = f"check the long-lived token (the password of the {CONN_ID} connection): it may be revoked"
            return cls(
                config.base_url,
                BearerToken(config.secret),
                budget=budget,
                breaker=breaker,
                session=session,
                auth_hint=hint,
                **overrides,
            )
        from elt_platform.state.store import open_state_store
        from elt_platform.state.tokens import TokenStore

        endpoint_kwargs = {"sleep": overrides["sleep"]} if "sleep" in overrides else {}
        endpoint = TokenEndpoint(config, breaker=breaker, session=session, **endpoint_kwargs)
        tokens = TokenStore(store or open_state_store(), config.account)
        auth = _OAuthBearer(AmoCrmTokenProvider(tokens, endpoint.refresh), endpoint)
        hint = f"the refreshed token was refused too: re-authorise the integration and run {AUTH_COMMAND}"
        return cls(
            config.base_url,
            auth,
            budget=budget,
            breaker=breaker,
            session=session,
            auth_hint=hint,
            closing=(endpoint,),
            **overrides,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, account={self.account!r})"

    __str__ = __repr__

    @property
    def redact(self) -> Callable[[str], str]:
        """The client's redactor (knows every secret of its auth), for callers' own messages."""
        return self._http.redact

    @property
    def stats(self) -> ClientStats:
        """Requests sent, pages received and HTTP 204 answers so far."""
        sent = getattr(self._session, "sent", 0)
        with self._lock:
            return ClientStats(requests=sent, pages=self._pages, no_content=self._no_content)

    def close(self) -> None:
        """Close the session and whatever else the client owns."""
        for resource in self._closing:
            resource.close()
        self._session.close()

    def __enter__(self) -> AmoCrmClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def get(
        self, path: str, params: Mapping[str, Any] | None = None, *, what: str | None = None
    ) -> HttpResponse:
        """One GET under ``/api/v4/``; the body is returned undecoded.

        Raises:
            AuthError: 401/403 (OAuth: still 401 after one refresh; the message says what to do).
            BannedError: An HTML 403 (account blocked); the breaker is open now.
            CircuitOpenError: The account's breaker is open (a ban seen by any worker).
            RateLimitedError, ServerError: Retries ran out on 429 / 5xx / timeouts.
            RequestError: Another 4xx (e.g. a bad filter), with amoCRM's problem+json detail.
        """
        return self.request("GET", path, params=params, what=what)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        what: str | None = None,
        idempotent: bool = True,
    ) -> HttpResponse:
        """One request under ``/api/v4/`` with this client's auth, budget, breaker and retries (the
        write side, ``destinations.amocrm``, sends its POST/PATCH bodies through here).

        Args:
            method: HTTP method.
            path: Endpoint under ``/api/v4/``.
            params: Query parameters.
            json: JSON body.
            what: Names the request in messages (never put personal data here).
            idempotent: False for a create: retried only when refused before running (see
                :meth:`~elt_platform.http.client.HttpClient.request`).

        Returns:
            The response, body undecoded.

        Raises:
            HttpError: As :meth:`get`.
        """
        try:
            return self._http.request(
                method,
                path,
                params=dict(params or {}),
                json=json,
                what=what,
                expect_json=False,
                idempotent=idempotent,
            )
        except (BannedError, GrantError):
            raise
        except AuthError as error:
            hint = self._auth_hint if error.status == 401 else FORBIDDEN_HINT if error.status == 403 else ""
            if not hint:
                raise
            raise AuthError(
                f"{error}; {hint}",
                status=error.status,
                what=error.what,
                account=error.account,
                redactor=self._http.redact,
            ) from None

    def iter_pages(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        limit: int = PAGE_SIZE,
        what: str | None = None,
    ) -> Iterator[Page]:
        """Walk a list endpoint page by page (``page`` = 1, 2, … and ``limit``).

        Stops after a page without ``_links.next`` and on HTTP 204 / an empty body (amoCRM's "nothing
        found"; the 204 is yielded too, with an empty body). The page number is incremented here rather
        than following ``_links.next.href``: amoCRM may name a shard host there (``shard152.amocrm.ru``),
        and credentials only go to the configured host.

        Args:
            path: Endpoint under ``/api/v4/`` (``leads``, ``leads/custom_fields``…).
            params: Query parameters (filters, ``with``, ``order``); ``page``/``limit`` are set here.
            limit: Records per page (250 max; events 100).
            what: Names the list in messages (default ``path``).

        Yields:
            Each page, before it is decoded: land ``page.content``, then read ``page.json()``.

        Raises:
            NonJsonError: A page is not JSON (raised when the page is decoded, after the caller had it).
            PayloadError: A page claims JSON but does not parse, or the walk passes ``MAX_PAGES``.
            HttpError: See :meth:`get`.
        """
        label = what or path
        number = 1
        while True:
            query = {**(params or {}), "page": number, "limit": limit}
            response = self.get(path, query, what=f"{label} page {number}")
            with self._lock:
                self._pages += 1
                self._no_content += response.status == 204
            yield Page(number, response)
            data = response.json()
            if data is None or not has_next(data):
                return
            if number >= MAX_PAGES:
                raise PayloadError(
                    f"{label}: still a next page after {MAX_PAGES} pages; stopping (pagination loop?)",
                    status=response.status,
                    what=label,
                    account=self.account,
                )
            number += 1

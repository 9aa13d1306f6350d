"""The HTTP client every source and destination uses: pooling, timeouts, retries, budgets, breakers, errors.

One :meth:`HttpClient.request` is one logical request. Each attempt first asks the breaker whether the
account may be called and takes one request from its budget, then sends. 429/5xx, timeouts, connection
errors and bodies cut mid-transfer are retried (``tenacity``) after ``Retry-After`` when the server sent one,
else after an exponential backoff with full jitter. 401 gets one credential refresh when the auth can do
it; other 4xx are final. A source's ``classify`` hook can call a response an account ban: the breaker is
opened, so every caller sharing it stops, and :class:`~elt_platform.http.errors.BannedError` is raised.

Logging: one INFO line per response (method, decoded URL with secrets and personal data masked, status,
bytes, seconds) and one WARNING per retry (reason, delay and where the delay came from). Headers are
never logged.
"""

import logging
import random
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict
from urllib.parse import urljoin, urlsplit

import requests
import tenacity
from requests.adapters import HTTPAdapter

from elt_platform.http.auth import Auth
from elt_platform.http.decoding import decode_json, parse_error_body
from elt_platform.http.errors import (
    AuthError,
    BannedError,
    HttpError,
    RateLimitedError,
    RequestError,
    ServerError,
)
from elt_platform.http.limits import Breaker, Budget
from elt_platform.http.redaction import Redactor, redact_third_party_logs
from elt_platform.http.retry import (
    DEFAULT_BACKOFF_BASE_SECONDS,
    DEFAULT_BACKOFF_MAX_SECONDS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_AFTER_SECONDS,
    DEFAULT_RETRY_STATUSES,
    RETRYABLE_EXCEPTIONS,
    RetryableFailure,
    full_jitter,
    parse_retry_after,
)

logger = logging.getLogger(__name__)

#: Statuses by which a server says it did not run the request (rate limits): safe to repeat even a write.
REFUSED_BEFORE_RUNNING = frozenset({429, 503})

DEFAULT_USER_AGENT = f"elt-platform (python-requests/{requests.__version__})"
AUTH_STATUSES = frozenset({401, 403})
#: ``(connect, read)`` seconds per attempt: a page of a few hundred KB (an Alaqan day, 250 amoCRM leads with
#: their embedded parts) arrives well within a minute even from a slow backend, and a task never hangs.
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 60.0)
_UNSET: Any = object()


@dataclass(kw_only=True, eq=False, repr=False)
class HttpResponse:
    """A complete response: the body is already read, the connection back in the pool.

    Attributes:
        status: HTTP status code.
        headers: Response headers (case-insensitive mapping).
        content: The raw body.
        elapsed: Seconds from sending the request to having the whole body.
        url: The URL as sent, decoded, secrets and personal data masked (safe to log).
        what: The request as described in messages.
        redactor: Masks secrets in the messages of decoding errors.
    """

    status: int
    headers: Mapping[str, str]
    content: bytes
    elapsed: float
    url: str
    what: str
    redactor: Callable[[str], str]
    _json: Any = field(default=_UNSET, init=False)

    def __repr__(self) -> str:
        # The body is left out on purpose: it may hold personal data.
        return f"{type(self).__name__}(status={self.status}, bytes={len(self.content)}, what={self.what!r})"

    @property
    def content_type(self) -> str | None:
        """The ``Content-Type`` header, or None."""
        return self.headers.get("Content-Type")

    def json(self) -> Any:
        """The body decoded as JSON (see :func:`~elt_platform.http.decoding.decode_json`).

        Returns:
            The decoded value; None for 204 or an empty body.

        Raises:
            NonJsonError: The body is not JSON (e.g. an HTML page).
            PayloadError: The body claims JSON but does not parse (e.g. truncated).
        """
        if self._json is _UNSET:
            self._json = decode_json(
                self.content,
                status=self.status,
                content_type=self.content_type,
                what=self.what,
                redactor=self.redactor,
            )
        return self._json


@dataclass
class _Call:
    """The state of one ``request()`` across its attempts."""

    method: str
    url: str
    what: str
    params: Any
    json: Any
    data: Any
    headers: dict[str, str]
    log_url: str = ""
    sent: int = 0
    refreshed: bool = False
    idempotent: bool = True


class HttpOptions(TypedDict, total=False):
    """The tuning keywords of :class:`HttpClient` a source client passes through unchanged.

    A source client declares ``**options: Unpack[HttpOptions]`` instead of repeating them (and their
    defaults, the layer's); see :class:`HttpClient` for what each one means.
    """

    timeout: float | tuple[float, float]
    max_retries: int
    backoff_base: float
    backoff_max: float
    max_retry_after: float
    retry_statuses: Collection[int]
    user_agent: str
    pool_maxsize: int
    sleep: Callable[[float], None]
    rng: random.Random | None
    now: Callable[[], datetime]


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class HttpClient:
    """A polite, retrying HTTP client for one account of one API.

    Example:
        >>> client = HttpClient(  # doctest: +SKIP
        ...     "https://example.amocrm.ru/api/v4/",
        ...     auth=BearerToken(token),
        ...     account="amocrm:example.amocrm.ru",
        ...     budget=LocalBudget(7, burst=7),
        ...     classify=amocrm_ban,
        ... )
        >>> page = client.request("GET", "leads", params={"limit": 250}, what="leads p1")  # doctest: +SKIP
        >>> leads = page.json()  # doctest: +SKIP
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: Auth,
        account: str | None,
        budget: Budget | None = None,
        breaker: Breaker | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_base: float = DEFAULT_BACKOFF_BASE_SECONDS,
        backoff_max: float = DEFAULT_BACKOFF_MAX_SECONDS,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER_SECONDS,
        retry_statuses: Collection[int] = DEFAULT_RETRY_STATUSES,
        classify: Callable[[HttpResponse], str | None] | None = None,
        session: requests.Session | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        pool_maxsize: int = 10,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Create a client.

        Args:
            base_url: API root; request paths are resolved against it like ``urljoin`` (end it with ``/``
                when paths are relative). Requests outside its scheme and host are refused, so credentials
                never travel to another host (e.g. via a ``next`` link).
            auth: An :mod:`~elt_platform.http.auth` object; its secrets are masked everywhere.
            account: The external account the requests are charged to (``"<source>:<host>"``); named in
                errors. None when there is no such notion.
            budget: ``acquire() -> float`` is called before every attempt; None means no limit.
            breaker: ``check()`` is called before every attempt, ``open(reason)`` on a classified ban.
            timeout: Seconds, or ``(connect, read)`` seconds, per attempt.
            max_retries: Extra attempts after the first on retryable failures.
            backoff_base: Ceiling of the first backoff, in seconds; doubles per retry (full jitter).
            backoff_max: Largest backoff ceiling.
            max_retry_after: Cap applied to a server's ``Retry-After``: one header must not park a task
                slot for hours.
            retry_statuses: Statuses retried (401/403 never are).
            classify: ``classify(response) -> reason | None``, asked about every response; a reason means
                "account ban": the breaker is opened and :class:`BannedError` raised.
            session: A session to use (it is not closed by :meth:`close`); by default one with a
                connection pool of ``pool_maxsize`` per host is created and owned.
            user_agent: The ``User-Agent`` header.
            pool_maxsize: Connections kept per host (match the number of threads sharing the client).
            sleep: Sleeps between attempts; injectable for tests.
            rng: Randomness of the jitter; injectable for tests.
            now: Current time, to read ``Retry-After`` dates; injectable for tests.

        Raises:
            ValueError: ``max_retries`` is negative or ``base_url`` is not absolute.
        """
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self._redactor = Redactor(auth.secrets)
        redact_third_party_logs(self._redactor)
        if not all(_origin(base_url)):
            raise ValueError(f"base_url must be an absolute URL, got {self._redactor(base_url)!r}")
        self.base_url = base_url
        self.account = account
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self.retry_statuses = frozenset(retry_statuses) - AUTH_STATUSES
        self._auth = auth
        self._budget = budget
        self._breaker = breaker
        self._classify = classify
        self._headers = {"User-Agent": user_agent, "Accept": "application/json"}
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._now = now
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            # max_retries=0: retrying is ours (with budget, breaker and logging), not urllib3's.
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self._session = session

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self._redactor(self.base_url)!r}, account={self.account!r}, "
            f"auth={self._auth!r}, max_retries={self.max_retries!r})"
        )

    __str__ = __repr__

    @property
    def redact(self) -> Redactor:
        """The redactor of this client (knows the auth's secrets), for callers' own messages."""
        return self._redactor

    def close(self) -> None:
        """Close the session if this client created it."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> "HttpClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        what: str | None = None,
        expect_json: bool = True,
        idempotent: bool = True,
    ) -> HttpResponse:
        """Send one logical request, retrying transient failures.

        Args:
            method: HTTP method.
            path: Relative to ``base_url`` (or an absolute URL on the same host, e.g. a ``next`` link).
            params: Query parameters (as for ``requests``).
            json: JSON body.
            data: Form or raw body.
            headers: Extra headers (never logged).
            what: Describes the request in messages and errors, e.g. ``"leads page 3"``; secrets and
                personal data in it are masked. Defaults to ``"<METHOD> <path>"``.
            expect_json: Decode the body now, so a non-JSON answer fails here (the decoded value is cached
                for :meth:`HttpResponse.json`); False returns the body untouched (e.g. to land it as is).
            idempotent: False for a write that must not run twice (a CRM create): it is retried only
                when the server refused it before running it — 429 and 503 (rate limits) or a connection
                that was never established; a timeout or another 5xx may come after the write happened,
                so it fails at once (the caller's outbox looks the record up before trying again).

        Returns:
            The successful (< 400) response.

        Raises:
            AuthError: 401/403 (OAuth: still 401 after one refresh).
            BannedError: ``classify`` called the response a ban; the breaker is open now.
            RequestError: Another 4xx.
            RateLimitedError: Still 429 when the retries ran out.
            ServerError: Still 5xx/timeouts/connection errors when the retries ran out.
            PayloadError: ``expect_json`` and the body is not valid JSON (``NonJsonError``: not JSON at all).
            ValueError: ``path`` resolves outside the base URL's scheme and host.
            Exception: Whatever ``breaker.check()`` raises (``CircuitOpenError`` for :class:`LocalBreaker`).
        """
        method = method.upper()
        url = urljoin(self.base_url, path)
        if _origin(url) != _origin(self.base_url):
            raise ValueError(
                f"{self._redactor.url(url)} is outside {self._redactor.url(self.base_url)}: "
                "credentials are only sent to the configured host"
            )
        call = _Call(
            method=method,
            url=url,
            what=self._redactor(what or f"{method} {path}"),
            params=params,
            json=json,
            data=data,
            headers={**self._headers, **(headers or {})},
            idempotent=idempotent,
        )
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            retry=tenacity.retry_if_exception_type(RetryableFailure),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=lambda state: self._log_retry(call, state),
            reraise=True,
        )
        try:
            response = retrying(self._attempt, call)
        except RetryableFailure as failure:
            raise self._exhausted(call, failure) from None
        if expect_json:
            response.json()
        return response

    def _label(self, call: _Call) -> str:
        return f"{call.what} ({self.account})" if self.account else call.what

    def _error(self, cls: type[HttpError], message: str, **kwargs: Any) -> HttpError:
        kwargs.setdefault("what", "")
        return cls(message, account=self.account, redactor=self._redactor, **kwargs)

    def _attempt(self, call: _Call) -> HttpResponse:
        while True:
            prepared, response = self._send(call)
            if self._classify is not None and (reason := self._classify(response)):
                self._ban(call, response, reason)
            on_unauthorized = getattr(self._auth, "on_unauthorized", None)
            if response.status == 401 and not call.refreshed and on_unauthorized is not None:
                # Once per request(), across its retries: a second 401 means the new token is refused too.
                call.refreshed = True
                if on_unauthorized(prepared):
                    logger.info(
                        "%s %s -> 401: credentials refreshed, sending once more", call.method, call.log_url
                    )
                    continue
            return self._outcome(call, response)

    def _send(self, call: _Call) -> tuple[requests.PreparedRequest, HttpResponse]:
        if self._breaker is not None:
            self._breaker.check()
        if self._budget is not None:
            waited = self._budget.acquire()
            if waited > 0:
                logger.debug(
                    "%s %s waited %.2fs for the request budget", call.method, self._label(call), waited
                )
        call.log_url = self._redactor.url(call.url)
        try:
            prepared = self._session.prepare_request(
                requests.Request(
                    call.method,
                    call.url,
                    params=call.params,
                    json=call.json,
                    data=call.data,
                    headers=call.headers,
                )
            )
            self._auth.apply(prepared)
            call.log_url = self._redactor.url(prepared.url or call.url)
            settings = self._session.merge_environment_settings(prepared.url, {}, None, None, None)
            call.sent += 1
            started = time.monotonic()
            raw = self._session.send(prepared, timeout=self.timeout, **settings)
            content = raw.content
        except RETRYABLE_EXCEPTIONS as exc:
            # Chain dropped (from None) and only the class name kept: requests' messages quote the URL,
            # which may carry a webhook token or personal data; the redacted text goes in `detail`.
            failure = RetryableFailure(type(exc).__name__, detail=self._redactor(str(exc))[:300])
            if not call.idempotent and not isinstance(exc, requests.ConnectTimeout):
                raise self._not_repeated(call, failure) from None
            raise failure from None
        except requests.RequestException as exc:
            raise self._error(
                RequestError,
                f"{self._label(call)}: {call.method} {call.log_url} could not be sent: "
                f"{type(exc).__name__}: {self._redactor(str(exc))[:300]}",
                what=call.what,
            ) from None
        elapsed = time.monotonic() - started
        logger.info(
            "%s %s -> %d (%d bytes, %.2fs)", call.method, call.log_url, raw.status_code, len(content), elapsed
        )
        response = HttpResponse(
            status=raw.status_code,
            headers=raw.headers,
            content=content,
            elapsed=elapsed,
            url=call.log_url,
            what=call.what,
            redactor=self._redactor,
        )
        return prepared, response

    def _ban(self, call: _Call, response: HttpResponse, reason: str) -> None:
        reason = self._redactor(reason)
        if self._breaker is not None:
            self._breaker.open(reason)
        logger.error(
            "%s %s -> %d classified as a ban: %s", call.method, call.log_url, response.status, reason
        )
        raise self._error(
            BannedError,
            f"{self._label(call)}: HTTP {response.status} classified as an account ban ({reason}); "
            "the breaker is open, every caller sharing it stops",
            status=response.status,
            what=call.what,
            reason=reason,
        )

    def _outcome(self, call: _Call, response: HttpResponse) -> HttpResponse:
        status = response.status
        if status < 400:
            return response
        body = parse_error_body(response.content, response.content_type)
        said = f"{response.content_type or 'no Content-Type'}: {body.summary!r}"
        if status in AUTH_STATUSES:
            refreshed = " after a credential refresh" if call.refreshed else ""
            raise self._error(
                AuthError,
                f"{self._label(call)}: HTTP {status}{refreshed}, credentials rejected ({said}); not retried: "
                "check the connection's secret",
                status=status,
                what=call.what,
            )
        if status in self.retry_statuses:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), now=self._now())
            failure = RetryableFailure(f"HTTP {status}", status=status, retry_after=retry_after, detail=said)
            if not call.idempotent and status not in REFUSED_BEFORE_RUNNING:
                raise self._not_repeated(call, failure)
            raise failure
        raise self._error(
            RequestError,
            f"{self._label(call)}: HTTP {status}, request refused ({said})",
            status=status,
            what=call.what,
            excerpt=body.excerpt,
            title=body.title,
            detail=body.detail,
            code=body.code,
            validation_errors=body.validation_errors,
        )

    def _wait(self, state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, RetryableFailure) and failure.retry_after is not None:
            return min(failure.retry_after, self.max_retry_after)
        return full_jitter(state.attempt_number, base=self.backoff_base, cap=self.backoff_max, rng=self._rng)

    def _log_retry(self, call: _Call, state: tenacity.RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        description = str(failure)
        delay = state.next_action.sleep if state.next_action else 0.0
        source = "backoff"
        if isinstance(failure, RetryableFailure) and failure.retry_after is not None:
            capped = failure.retry_after > self.max_retry_after
            source = f"Retry-After {failure.retry_after:.0f}s, capped" if capped else "Retry-After"
        logger.warning(
            "%s %s failed with %s; retry %d/%d in %.2fs (%s)",
            call.method,
            call.log_url,
            description,
            state.attempt_number,
            self.max_retries,
            delay,
            source,
        )

    def _not_repeated(self, call: _Call, failure: RetryableFailure) -> HttpError:
        error = self._exhausted(call, failure)
        error.args = (f"{error.args[0]} — a write, not repeated: it may have run",)
        return error

    def _exhausted(self, call: _Call, failure: RetryableFailure) -> HttpError:
        cls = RateLimitedError if failure.status == 429 else ServerError
        detail = f" ({self._redactor(failure.detail)})" if failure.detail else ""
        return self._error(
            cls,
            f"{self._label(call)} unavailable after {call.sent} attempt(s); "
            f"last: {failure.description}{detail}",
            status=failure.status,
            what=call.what,
            attempts=call.sent,
            last_error=failure.description,
        )

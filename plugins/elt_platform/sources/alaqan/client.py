"""HTTP client for the Alaqan API: auth header, polite rate limit, retries with backoff.

The only module of the source that does I/O. It returns raw bodies (``by_date``) so the caller can land
them for audit before parsing, and it never writes the API key anywhere: not in ``repr``, exceptions or
log lines (URLs are logged, headers are not; IINs in URLs are masked).
"""

import email.utils
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from elt_platform.sources.alaqan.errors import (
    AlaqanAuthError,
    AlaqanRequestError,
    AlaqanUnavailableError,
)
from elt_platform.sources.alaqan.iin import mask_iin
from elt_platform.sources.alaqan.parsing import load_data_object
from elt_platform.sources.alaqan.settings import (
    API_KEY_HEADER,
    AUTH_STATUSES,
    BY_DATE_PATH,
    BY_IIN_PATH,
    CONNECT_TIMEOUT_SECONDS,
    DEFAULT_API_PATH,
    DEFAULT_BACKOFF_BASE_SECONDS,
    DEFAULT_BACKOFF_MAX_SECONDS,
    DEFAULT_BASE_URL,
    DEFAULT_BURST,
    DEFAULT_MAX_RETRIES,
    DEFAULT_REQUESTS_PER_SECOND,
    MAX_RETRY_AFTER_SECONDS,
    READ_TIMEOUT_SECONDS,
    RETRY_STATUSES,
)

logger = logging.getLogger(__name__)

# Failures worth another attempt. ChunkedEncodingError is how requests reports a body cut mid-transfer
# (fewer bytes than Content-Length), which is a transport fault, unlike a complete-but-invalid JSON body.
_RETRYABLE_EXCEPTIONS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
_TWELVE_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")


class RateLimiter:
    """Thread-safe token bucket: at most ``rate`` acquisitions per second, bursts up to ``burst``.

    A caller that finds the bucket empty reserves the next token (the balance goes negative) and sleeps
    outside the lock, so concurrent callers queue up fairly without holding the lock while waiting.
    """

    def __init__(
        self,
        rate: float | None,
        burst: int = DEFAULT_BURST,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Create a limiter.

        Args:
            rate: Tokens per second; None or <= 0 disables limiting.
            burst: Bucket capacity (requests allowed back to back after an idle period).
            clock: Monotonic clock, injectable for tests.
            sleep: Sleep function, injectable for tests.
        """
        self.rate = rate if rate and rate > 0 else None
        self.burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(self.burst)
        self._updated = clock()

    def acquire(self) -> float:
        """Take one token, sleeping until it is available.

        Returns:
            The number of seconds slept.
        """
        if self.rate is None:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1.0
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Interpret a ``Retry-After`` header.

    Args:
        value: The header value: delay seconds (``"120"``) or an HTTP date
            (``"Wed, 21 Oct 2015 07:28:00 GMT"``); None when absent.
        now: Current time for HTTP dates (defaults to the current UTC time).

    Returns:
        Seconds to wait (never negative), or None when the header is absent or unreadable.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def build_base_url(host: str | None, *, port: int | None = None, schema: str | None = None) -> str:
    """Build the API base URL from the parts of an Airflow connection.

    Accepts ``https://api.hub.alaqan.kz/api/astanahub/``, ``api.hub.alaqan.kz`` (scheme ``https`` and
    path ``/api/astanahub/`` are added) or ``http://127.0.0.1:8765/api/astanahub`` (sandbox).

    Args:
        host: The connection host; empty means :data:`~elt_platform.sources.alaqan.settings.DEFAULT_BASE_URL`.
        port: The connection port, added when the host has none.
        schema: The connection schema: ``"http"``/``"https"`` is taken as the scheme (Airflow ``HttpHook``
            convention) when the host has none; anything else is taken as the path (URI-style connections
            put the path there).

    Returns:
        An absolute URL ending in ``/``, ready for ``urljoin`` with the endpoint paths.
    """
    host = (host or "").strip()
    if not host:
        return DEFAULT_BASE_URL
    schema = (schema or "").strip()
    scheme, path = "https", ""
    if schema.lower() in ("http", "https"):
        scheme = schema.lower()
    elif schema:
        path = schema
    if "://" in host:
        parts = urlsplit(host)
        scheme, netloc, path = parts.scheme, parts.netloc, parts.path or path
    else:
        netloc, _, host_path = host.partition("/")
        path = host_path or path
    if port and urlsplit(f"//{netloc}").port is None:
        netloc = f"{netloc}:{port}"
    path = path.strip("/")
    return f"{scheme}://{netloc}/{path}/" if path else f"{scheme}://{netloc}{DEFAULT_API_PATH}"


def _redact(text: str) -> str:
    return _TWELVE_DIGIT_RUN.sub(lambda match: mask_iin(match.group()), text)


class AlaqanClient:
    """Client for ``employees/byDate`` and ``employees/byIin``.

    Example:
        >>> client = AlaqanClient.from_connection(BaseHook.get_connection(CONN_ID))  # doctest: +SKIP
        >>> body = client.by_date(date(2024, 3, 1))  # doctest: +SKIP
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        requests_per_second: float | None = DEFAULT_REQUESTS_PER_SECOND,
        burst: int = DEFAULT_BURST,
        max_retries: int = DEFAULT_MAX_RETRIES,
        timeout: float | tuple[float, float] = (CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
        backoff_base: float = DEFAULT_BACKOFF_BASE_SECONDS,
        backoff_max: float = DEFAULT_BACKOFF_MAX_SECONDS,
        max_retry_after: float = MAX_RETRY_AFTER_SECONDS,
        session: requests.Session | None = None,
    ) -> None:
        """Create a client.

        Args:
            base_url: API root ending in ``/`` (see :func:`build_base_url` for connection hosts).
            api_key: Sent as the ``X-Api-Key`` header; never logged.
            requests_per_second: Client-side rate limit; None disables it.
            burst: Requests allowed back to back after an idle period.
            max_retries: Extra attempts after the first on 429/5xx/connection errors/timeouts.
            timeout: Seconds, or ``(connect, read)`` seconds, per request.
            backoff_base: First backoff ceiling in seconds; doubles per attempt (full jitter).
            backoff_max: Ceiling of a single backoff sleep.
            max_retry_after: Cap applied to a server's ``Retry-After``.
            session: Session to use (tests, connection pooling); the key header is added to it.

        Raises:
            ValueError: If ``api_key`` is empty or ``max_retries`` is negative.
        """
        if not api_key:
            raise ValueError("Alaqan API key is empty: set the password of the Airflow connection")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self._limiter = RateLimiter(requests_per_second, burst)
        self._random = random.Random()
        self._session = session or requests.Session()
        self._session.headers[API_KEY_HEADER] = api_key
        self._session.headers.setdefault("Accept", "application/json")

    @classmethod
    def from_connection(cls, conn: Any, **overrides: Any) -> "AlaqanClient":
        """Build a client from an Airflow connection object (or anything with the same attributes).

        Args:
            conn: Has ``host``, ``password`` (the API key), optional ``port``, ``schema`` and ``extra_dejson``
                (``requests_per_second``, ``burst``, ``max_retries`` are read from it when present).
            **overrides: Keyword arguments of :class:`AlaqanClient` that win over the connection.

        Returns:
            A configured client.

        Raises:
            ValueError: If the connection has no password.
        """
        extra: Mapping[str, Any] = getattr(conn, "extra_dejson", None) or {}
        kwargs: dict[str, Any] = {}
        if extra.get("requests_per_second") is not None:
            kwargs["requests_per_second"] = float(extra["requests_per_second"])
        for name in ("burst", "max_retries"):
            if extra.get(name) is not None:
                kwargs[name] = int(extra[name])
        kwargs.update(overrides)
        base_url = build_base_url(
            getattr(conn, "host", None),
            port=getattr(conn, "port", None),
            schema=getattr(conn, "schema", None),
        )
        return cls(base_url, getattr(conn, "password", None) or "", **kwargs)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, "
            f"requests_per_second={self._limiter.rate!r}, max_retries={self.max_retries!r})"
        )

    __str__ = __repr__

    def close(self) -> None:
        """Close the underlying HTTP session."""
        self._session.close()

    def __enter__(self) -> "AlaqanClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def by_date(self, day: date) -> bytes:
        """Fetch every visit of one day.

        Args:
            day: The visit date.

        Returns:
            The raw response body (JSON ``{"data": {"<IIN>": [{"event": ..., "time": ...}]}}``), unparsed:
            land it, then call :func:`~elt_platform.sources.alaqan.parsing.parse_by_date`.

        Raises:
            AlaqanAuthError: HTTP 401/403.
            AlaqanUnavailableError: Retries exhausted; names the date and the last status.
            AlaqanRequestError: Another 4xx.
        """
        iso = day.isoformat()
        response = self._get(BY_DATE_PATH, {"date": iso}, what=f"byDate {iso}", log_params={"date": iso})
        return response.content

    def by_iin(self, iin: str, start: date, end: date) -> dict[str, Any]:
        """Fetch the visits of one person over a date range (inclusive).

        Args:
            iin: The person's IIN (masked in logs and errors).
            start: First date.
            end: Last date.

        Returns:
            The ``data`` object: ISO date → list of ``{"event", "time"}`` records (dates without visits
            are absent; the API lists dates newest first).

        Raises:
            AlaqanAuthError: HTTP 401/403.
            AlaqanUnavailableError: Retries exhausted.
            AlaqanRequestError: Another 4xx.
            AlaqanPayloadError: The body is not a JSON object with a ``data`` object.
        """
        params = {"start_date": start.isoformat(), "end_date": end.isoformat(), "iin": iin}
        what = f"byIin {mask_iin(iin)} {start.isoformat()}..{end.isoformat()}"
        response = self._get(BY_IIN_PATH, params, what=what, log_params={**params, "iin": mask_iin(iin)})
        return dict(load_data_object(response.content, what))

    def _backoff(self, attempt: int) -> float:
        # Full jitter (AWS architecture blog): spreads retries of parallel tasks instead of syncing them.
        ceiling = min(self.backoff_max, self.backoff_base * (2**attempt))
        return self._random.uniform(0.0, ceiling)

    def _get(
        self, path: str, params: dict[str, str], *, what: str, log_params: dict[str, str]
    ) -> requests.Response:
        url = urljoin(self.base_url, path)
        # Not urlencode(): a masked IIN would read "9807%2A%2A…" in the logs.
        log_url = url + "?" + "&".join(f"{name}={value}" for name, value in log_params.items())
        attempts = self.max_retries + 1
        last_status: int | None = None
        last_error = "no attempt made"
        for attempt in range(attempts):
            self._limiter.acquire()
            started = time.monotonic()
            retry_after: float | None = None
            try:
                response = self._session.get(url, params=params, timeout=self.timeout)
            except _RETRYABLE_EXCEPTIONS as exc:
                last_status, last_error = None, type(exc).__name__
            else:
                status = response.status_code
                last_status, last_error = status, f"HTTP {status}"
                if status < 300:
                    logger.info(
                        "GET %s -> %d (%d bytes, %.2fs)",
                        log_url,
                        status,
                        len(response.content),
                        time.monotonic() - started,
                    )
                    return response
                if status in AUTH_STATUSES:
                    raise AlaqanAuthError(
                        f"Alaqan rejected the API key for {what} (HTTP {status}): check the password of the "
                        "Airflow connection; the request was not retried",
                        status=status,
                    )
                if status not in RETRY_STATUSES:
                    raise AlaqanRequestError(
                        f"Alaqan refused {what} (HTTP {status}): {_redact(response.text[:200])}",
                        status=status,
                    )
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt + 1 >= attempts:
                break
            if retry_after is not None:
                delay = min(retry_after, self.max_retry_after)
                source = "Retry-After"
            else:
                delay = self._backoff(attempt)
                source = "backoff"
            logger.warning(
                "GET %s failed with %s; retry %d/%d in %.2fs (%s)",
                log_url,
                last_error,
                attempt + 1,
                self.max_retries,
                delay,
                source,
            )
            time.sleep(delay)
        raise AlaqanUnavailableError(
            f"Alaqan {what} unavailable after {attempts} attempt(s); last: {last_error}",
            what=what,
            last_status=last_status,
            last_error=last_error,
            attempts=attempts,
        )

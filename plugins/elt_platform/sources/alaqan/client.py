"""HTTP client for the Alaqan API: the two endpoints on top of the shared HTTP layer.

The only module of the source that does I/O. Session, retries with backoff, the request budget and the
error taxonomy come from :class:`~elt_platform.http.client.HttpClient`; this module adds the endpoints,
the ``X-Api-Key`` auth and the translation of errors into the ``Alaqan*Error`` family. It returns raw bodies
(``by_date``) so the caller can land them for audit before parsing, and it never writes the API key
anywhere: not in ``repr``, exceptions or log lines (URLs are logged, headers are not; IINs are masked).
"""

from datetime import date
from typing import Any, Unpack
from urllib.parse import urlsplit

import requests

from elt_platform.http.accounts import connection_limits
from elt_platform.http.auth import ApiKeyHeader
from elt_platform.http.client import HttpClient, HttpOptions, HttpResponse
from elt_platform.http.errors import HttpError
from elt_platform.http.limits import Breaker, Budget, LocalBudget
from elt_platform.sources.alaqan.errors import as_alaqan_error
from elt_platform.sources.alaqan.iin import mask_iin
from elt_platform.sources.alaqan.parsing import load_data_object
from elt_platform.sources.alaqan.settings import (
    API_KEY_HEADER,
    BY_DATE_PATH,
    BY_IIN_PATH,
    DEFAULT_API_PATH,
    DEFAULT_BASE_URL,
    DEFAULT_BURST,
    DEFAULT_REQUESTS_PER_SECOND,
)


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


def account_for(base_url: str) -> str:
    """The external account a base URL belongs to (keys the shared request budget and breaker)."""
    return f"alaqan:{urlsplit(base_url).netloc}"


def connection_base_url(conn: Any) -> str:
    """The API base URL of an Airflow connection (see :func:`build_base_url`)."""
    return build_base_url(
        getattr(conn, "host", None), port=getattr(conn, "port", None), schema=getattr(conn, "schema", None)
    )


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
        session: requests.Session | None = None,
        budget: Budget | None = None,
        breaker: Breaker | None = None,
        **options: Unpack[HttpOptions],
    ) -> None:
        """Create a client.

        Args:
            base_url: API root ending in ``/`` (see :func:`build_base_url` for connection hosts).
            api_key: Sent as the ``X-Api-Key`` header; never logged.
            requests_per_second: Rate of the default in-process budget; None disables it. Ignored when
                ``budget`` is given.
            burst: Requests allowed back to back after an idle period (default budget only).
            session: Session to use (tests, connection pooling); not closed by :meth:`close`.
            budget: The request budget of the account ``alaqan:<host>`` (e.g. the state store's,
                shared across processes); default: an in-process token bucket at ``requests_per_second``.
            breaker: The account's circuit breaker (e.g. the state store's); default: none.
            **options: Timeouts and retries of :class:`~elt_platform.http.client.HttpClient`
                (``max_retries``, ``timeout``, ``backoff_base``…); default: the HTTP layer's policy.

        Raises:
            ValueError: If ``api_key`` is empty or ``max_retries`` is negative.
        """
        if not api_key:
            raise ValueError("Alaqan API key is empty: set the password of the Airflow connection")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.account = account_for(self.base_url)
        self.requests_per_second = None if budget is not None else requests_per_second
        self._http = HttpClient(
            self.base_url,
            auth=ApiKeyHeader(API_KEY_HEADER, api_key),
            account=self.account,
            budget=budget if budget is not None else LocalBudget(requests_per_second, burst),
            breaker=breaker,
            session=session,
            **options,
        )

    @property
    def max_retries(self) -> int:
        """Extra attempts after the first."""
        return self._http.max_retries

    @property
    def timeout(self) -> float | tuple[float, float]:
        """Seconds, or ``(connect, read)`` seconds, per request."""
        return self._http.timeout

    @classmethod
    def from_connection(cls, conn: Any, **overrides: Any) -> "AlaqanClient":
        """Build a client from an Airflow connection object (or anything with the same attributes).

        Args:
            conn: Has ``host``, ``password`` (the API key), optional ``port``, ``schema`` and ``extra_dejson``
                (``requests_per_second``, ``burst``, ``max_retries`` are read from it when present).
            **overrides: Keyword arguments of :class:`AlaqanClient` that win over the connection (e.g. the
                state store's ``budget=``).

        Returns:
            A configured client.

        Raises:
            ValueError: If the connection has no password.
        """
        limits = connection_limits(
            getattr(conn, "extra_dejson", None), DEFAULT_REQUESTS_PER_SECOND, DEFAULT_BURST
        )
        kwargs: dict[str, Any] = {"requests_per_second": limits.requests_per_second, "burst": limits.burst}
        if limits.max_retries is not None:
            kwargs["max_retries"] = limits.max_retries
        kwargs.update(overrides)
        return cls(connection_base_url(conn), getattr(conn, "password", None) or "", **kwargs)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, account={self.account!r}, "
            f"requests_per_second={self.requests_per_second!r}, max_retries={self.max_retries!r})"
        )

    __str__ = __repr__

    def close(self) -> None:
        """Close the underlying HTTP session."""
        self._http.close()

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
            AlaqanUnavailableError: Retries exhausted; names the date and the last status
                (``AlaqanRateLimitedError`` when that was 429, else ``AlaqanServerError``).
            AlaqanRequestError: Another 4xx.
        """
        iso = day.isoformat()
        return self._get(BY_DATE_PATH, {"date": iso}, what=f"byDate {iso}").content

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
        response = self._get(BY_IIN_PATH, params, what=what)
        return dict(load_data_object(response.content, what))

    def _get(self, path: str, params: dict[str, str], *, what: str) -> HttpResponse:
        try:
            # expect_json=False: a byDate body is landed byte for byte before the parser judges it.
            return self._http.request("GET", path, params=params, what=what, expect_json=False)
        except HttpError as error:
            raise as_alaqan_error(error).with_traceback(error.__traceback__) from None

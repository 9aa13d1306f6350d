"""Exceptions raised by the Alaqan client and parser.

All derive from :class:`AlaqanError` so a task can catch the family; the client's errors are also the
shared HTTP layer's (:mod:`elt_platform.http.errors`), so ``except AuthError`` works across sources. None of
their messages ever contains the API key, and IINs in them are masked.
"""

from typing import Any

from elt_platform.http.errors import (
    AuthError,
    HttpError,
    NonJsonError,
    PayloadError,
    RateLimitedError,
    RequestError,
    ServerError,
    UnavailableError,
)


class AlaqanError(Exception):
    """Base class for every Alaqan source error."""


class AlaqanAuthError(AuthError, AlaqanError):
    """The API rejected the key (HTTP 401/403). Never retried: a wrong key does not heal.

    Attributes:
        status: The HTTP status code returned.
    """


class AlaqanUnavailableError(UnavailableError, AlaqanError):
    """Retries were exhausted on 429/5xx/connection errors/timeouts.

    Attributes:
        what: The request that failed, e.g. ``"byDate 2024-03-01"``.
        status: The last HTTP status seen (also ``last_status``); None when the last attempt got none.
        last_error: Short description of the last failure (``"HTTP 503"``, ``"ReadTimeout"``).
        attempts: How many requests were sent.
    """

    @property
    def last_status(self) -> int | None:
        """The last HTTP status seen (the name this attribute had before the shared HTTP layer)."""
        return self.status


class AlaqanRateLimitedError(RateLimitedError, AlaqanUnavailableError):
    """Still HTTP 429 when the retries ran out."""


class AlaqanServerError(ServerError, AlaqanUnavailableError):
    """Still 5xx, timeouts or connection errors when the retries ran out."""


class AlaqanRequestError(RequestError, AlaqanError):
    """The API refused the request itself (another 4xx, e.g. 400/404/422): a bug on our side, not retried.

    Attributes:
        status: The HTTP status code returned.
    """


class AlaqanPayloadError(PayloadError, AlaqanError):
    """A response body is unusable as a whole (not JSON, truncated, no ``data`` object).

    Per-record problems are not errors: they go to quarantine (see ``parsing.py``).
    """


class AlaqanNonJsonError(NonJsonError, AlaqanPayloadError):
    """A body that is not JSON at all (e.g. an HTML error page from a proxy)."""


# Most specific first: the first class an error is an instance of decides its Alaqan counterpart.
_COUNTERPARTS: tuple[tuple[type[HttpError], type[HttpError]], ...] = (
    (AuthError, AlaqanAuthError),
    (RateLimitedError, AlaqanRateLimitedError),
    (ServerError, AlaqanServerError),
    (RequestError, AlaqanRequestError),
    (NonJsonError, AlaqanNonJsonError),
    (PayloadError, AlaqanPayloadError),
)


def as_alaqan_error(error: HttpError) -> HttpError:
    """Return the Alaqan counterpart of an HTTP-layer error, with the same message and attributes.

    Args:
        error: Raised by :class:`~elt_platform.http.client.HttpClient` (already redacted).

    Returns:
        An instance of the matching ``Alaqan*Error`` (which is also an instance of ``type(error)``'s base
        in the taxonomy), or ``error`` itself when there is none (e.g. ``CircuitOpenError``).
    """
    for http_class, alaqan_class in _COUNTERPARTS:
        if isinstance(error, http_class):
            converted: Any = alaqan_class.__new__(alaqan_class)
            Exception.__init__(converted, *error.args)
            converted.__dict__.update(error.__dict__)
            return converted
    return error

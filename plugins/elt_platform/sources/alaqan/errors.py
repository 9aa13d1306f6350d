"""Exceptions raised by the Alaqan client and parser.

All derive from :class:`AlaqanError` so a task can catch the family; none of their messages ever
contains the API key, and IINs in them are masked.
"""


class AlaqanError(Exception):
    """Base class for every Alaqan source error."""


class AlaqanAuthError(AlaqanError):
    """The API rejected the key (HTTP 401/403). Never retried: a wrong key does not heal.

    Attributes:
        status: The HTTP status code returned.
    """

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class AlaqanUnavailableError(AlaqanError):
    """Retries were exhausted on 429/5xx/connection errors/timeouts.

    Attributes:
        what: The request that failed, e.g. ``"byDate 2024-03-01"``.
        last_status: The last HTTP status seen, or None when the last attempt got no response.
        last_error: Short description of the last failure (``"HTTP 503"``, ``"ReadTimeout"``).
        attempts: How many requests were sent.
    """

    def __init__(
        self, message: str, *, what: str, last_status: int | None, last_error: str, attempts: int
    ) -> None:
        super().__init__(message)
        self.what = what
        self.last_status = last_status
        self.last_error = last_error
        self.attempts = attempts


class AlaqanRequestError(AlaqanError):
    """The API refused the request itself (another 4xx, e.g. 400/404/422): a bug on our side, not retried.

    Attributes:
        status: The HTTP status code returned.
    """

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class AlaqanPayloadError(AlaqanError):
    """A response body is unusable as a whole (not JSON, truncated, no ``data`` object).

    Per-record problems are not errors: they go to quarantine (see ``parsing.py``).
    """

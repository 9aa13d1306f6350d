"""The client-side error taxonomy of the HTTP layer.

Every error is an :class:`HttpError` carrying ``status`` (the last HTTP status, or None when no response
came), ``what`` (the request described without secrets, e.g. ``"GET leads page 3"``) and ``account`` (whose
budget the request was charged to). The class says what the caller can do about it:

=====================  ==========================================================================
``AuthError``          401/403: credentials rejected; not retried (OAuth: after one refresh).
``BannedError``        a response the source classified as an account ban; the breaker is now open.
``CircuitOpenError``   a breaker refused the request before it was sent.
``RateLimitedError``   429 still returned when the retries ran out.
``ServerError``        5xx, timeouts or connection errors still failing when the retries ran out.
``RequestError``       another 4xx: the request itself is wrong; carries the API's explanation.
``PayloadError``       a response body is unusable (``NonJsonError``: not JSON at all, e.g. HTML).
=====================  ==========================================================================

Messages never contain a secret or personal data: :class:`HttpError` passes its message through a
redactor (the client's, which knows the auth's secrets; by default one that masks personal data) before
anything else can see it.
"""

from collections.abc import Callable, Sequence
from typing import Any

from elt_platform.http.redaction import redact_pii


def _restore(cls: type["HttpError"], args: tuple[Any, ...], state: dict[str, Any]) -> "HttpError":
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


def _redact_tree(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redact_tree(item, redact) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_tree(item, redact) for item in value]
    return value


class HttpError(Exception):
    """Base class of every error raised by the HTTP layer.

    Attributes:
        status: The HTTP status of the last response, or None when no response came.
        what: The request, described without secrets.
        account: The account the request was charged to (e.g. ``"amocrm:example.amocrm.ru"``), or None.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        what: str = "",
        account: str | None = None,
        redactor: Callable[[str], str] | None = None,
    ) -> None:
        """Create an error; ``message`` and ``what`` are redacted here, before anything can log them.

        Args:
            message: Human-readable description.
            status: See the class attributes.
            what: See the class attributes.
            account: See the class attributes.
            redactor: Masks secrets and personal data; defaults to personal data only.
        """
        redact = redactor or redact_pii
        super().__init__(redact(message))
        self.status = status
        self.what = redact(what)
        self.account = account

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructor arguments defeat the default exception pickling (process pools do it).
        return (_restore, (type(self), self.args, self.__dict__))


class AuthError(HttpError):
    """The API rejected the credentials (401/403). Not retried: a wrong key does not heal by waiting."""


class BannedError(AuthError):
    """A response the source classified as an account-level ban (e.g. amoCRM's HTML 403 page).

    The client has opened the shared breaker before raising, so every caller sharing it stops too.

    Attributes:
        reason: The source's classification, e.g. ``"HTML 403 page: account API access blocked"``.
    """

    def __init__(self, message: str, *, reason: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.reason = reason


class CircuitOpenError(HttpError):
    """A circuit breaker refused the request before it was sent (e.g. after a ban seen by another task).

    Attributes:
        reason: Why the breaker was opened.
    """

    def __init__(self, message: str, *, reason: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.reason = reason


class UnavailableError(HttpError):
    """Retries ran out on a failure that is normally transient.

    Attributes:
        attempts: How many requests were sent.
        last_error: Short description of the last failure (``"HTTP 503"``, ``"ReadTimeout"``).
    """

    def __init__(self, message: str, *, attempts: int = 1, last_error: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.attempts = attempts
        self.last_error = last_error


class RateLimitedError(UnavailableError):
    """The API still answered 429 after every retry: the account's budget is too high or shared."""


class ServerError(UnavailableError):
    """5xx, timeouts, connection errors or bodies cut mid-transfer still failing after every retry."""


class RequestError(HttpError):
    """The API refused the request itself (another 4xx): a bug on our side or bad data, not retried.

    Attributes:
        excerpt: A short, redacted excerpt of the response body.
        title: ``title`` of an ``application/problem+json`` body, else None.
        detail: ``detail`` (problem+json) or ``error_description`` (Bitrix24), else None.
        code: ``error`` of a Bitrix24-style body (may be ``""``), else None.
        validation_errors: ``validation-errors`` of a problem+json body (amoCRM), else empty.
    """

    def __init__(
        self,
        message: str,
        *,
        excerpt: str = "",
        title: str | None = None,
        detail: str | None = None,
        code: str | None = None,
        validation_errors: Sequence[Any] = (),
        redactor: Callable[[str], str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, redactor=redactor, **kwargs)
        redact = redactor or redact_pii
        self.excerpt = redact(excerpt)
        self.title = None if title is None else redact(title)
        self.detail = None if detail is None else redact(detail)
        self.code = None if code is None else redact(code)
        self.validation_errors = [_redact_tree(item, redact) for item in validation_errors]


class PayloadError(HttpError):
    """A response body is unusable as a whole (malformed JSON, wrong shape)."""


class NonJsonError(PayloadError):
    """A body that is not JSON at all where JSON was expected, e.g. an HTML error or ban page.

    Attributes:
        content_type: The response's ``Content-Type`` (None when absent).
        excerpt: A short excerpt of the body as text, tags stripped, redacted.
    """

    def __init__(
        self,
        message: str,
        *,
        content_type: str | None = None,
        excerpt: str = "",
        redactor: Callable[[str], str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, redactor=redactor, **kwargs)
        self.content_type = content_type
        self.excerpt = (redactor or redact_pii)(excerpt)

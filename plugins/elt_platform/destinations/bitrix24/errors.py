"""What Bitrix24 said about a failed method call, as errors of the HTTP layer's taxonomy.

Bitrix24 answers a failed call with ``{"error": "<CODE>", "error_description": "<text>"}``, where the code
is a system code (``QUERY_LIMIT_EXCEEDED``, ``NO_AUTH_FOUND``…), free text (``"Invalid parameters."``) or,
for most method-level errors, **empty** (``"error": ""`` with only a description). Every error here is a
:class:`Bitrix24Error` carrying ``code`` (possibly ``""``), ``description``, ``method`` and, for a command
of a ``batch``, its ``key``; each also stays a member of the HTTP layer's class for the same situation:

===============================  =========================================  ============================
class                            when                                       also an
===============================  =========================================  ============================
``Bitrix24MethodError``          a method refused the call (4xx, or a       ``RequestError``
                                 failed command inside a ``batch``)
``Bitrix24AuthError``            401/403, or an auth code inside a batch    ``AuthError``
``Bitrix24OperationLimitError``  the method is still blocked by             ``RateLimitedError``
                                 ``OPERATION_TIME_LIMIT`` after the retry
===============================  =========================================  ============================

:class:`Bitrix24BatchInterrupted` is no statement of Bitrix24: a ``batch`` call failed after earlier calls
of the same batch ran, and it carries their results.

Messages and attributes pass through the client's redactor (webhook token, phones, e-mails) when made.
"""

from collections.abc import Callable
from typing import Any

from elt_platform.http.errors import AuthError, HttpError, RateLimitedError, RequestError
from elt_platform.http.redaction import redact_pii

#: The method exceeded 480 s of execution time in 10 minutes and is blocked for 10 minutes (HTTP 429).
OPERATION_TIME_LIMIT = "OPERATION_TIME_LIMIT"
#: The portal's leaky bucket is full (HTTP 503): the HTTP layer waits and retries.
QUERY_LIMIT_EXCEEDED = "QUERY_LIMIT_EXCEEDED"
#: Client-side code (not Bitrix24's) of a batch command that was never run: an earlier one failed with
#: ``halt`` set.
NOT_EXECUTED = "NOT_EXECUTED"

#: Codes that mean "the webhook or its user may not do this" (docs ``system-errors.md``; OAuth's
#: ``PAYMENT_REQUIRED`` for a plan without REST): what to check, per code.
AUTH_HINTS = {
    "NO_AUTH_FOUND": "the webhook token was rejected: check the crm_bitrix24 connection; the webhook may be "
    "deleted or its user deactivated",
    "expired_token": "the access token expired",
    "INVALID_CREDENTIALS": "the webhook's user lacks the CRM rights this method needs",
    "insufficient_scope": "the webhook lacks the scope this method needs (the sync needs 'crm')",
    "ACCESS_DENIED": "the portal's plan has no REST API (commercial plans only)",
    "user_access_error": "the webhook's user has no access to the application",
    "PAYMENT_REQUIRED": "the portal's plan has no REST API (payment required)",
}
#: What a 401/403 means when the body names no code we know.
STATUS_HINTS = {
    401: "the webhook token was rejected: check the crm_bitrix24 connection (the webhook may be deleted)",
    403: "the webhook or its user may not call this method: check the webhook's scopes ('crm') and the "
    "user's CRM rights",
}


class Bitrix24Error(HttpError):
    """Bitrix24 refused a method call and said why.

    Attributes:
        code: Bitrix24's ``error``: a system code, free text, or ``""`` (most method-level errors).
        description: Bitrix24's ``error_description`` (may be ``""``).
        method: The REST method, e.g. ``"crm.deal.add"``.
        key: The command's key inside a ``batch``; None for a direct call.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        description: str = "",
        method: str = "",
        key: str | None = None,
        redactor: Callable[[str], str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, redactor=redactor, **kwargs)
        redact = redactor or redact_pii
        # Typed as RequestError's (str | None) for the subclasses that are also one; never None here.
        self.code: str | None = redact(code)
        self.description = redact(description)
        self.method = method
        self.key = key


class Bitrix24MethodError(Bitrix24Error, RequestError):
    """A method refused the call (a 4xx, or a failed ``batch`` command): bad parameters, a missing record,
    no rights on one record. Not retried."""


class Bitrix24AuthError(Bitrix24Error, AuthError):
    """401/403 (or an auth code of a batch command): the webhook token, its scopes or its user's rights."""


class Bitrix24OperationLimitError(Bitrix24Error, RateLimitedError):
    """The method is still blocked by ``OPERATION_TIME_LIMIT`` after the pause and retry (other methods
    keep working); the next run should send fewer or lighter calls of it."""


class Bitrix24BatchInterrupted(HttpError):
    """A ``batch`` call failed after earlier calls of the same :meth:`~.client.Bitrix24Client.batch` ran.

    Their commands did run (records may have been created), so their results must not be lost: ``results``
    holds every command's outcome — the results of the calls that ran, an error for each command of the
    failed call (it may or may not have run: a timeout can come after Bitrix24 executed it) and
    ``NOT_EXECUTED`` for the calls never sent. The failure itself is ``__cause__``.

    Attributes:
        results: ``key -> CommandResult`` for every command, in the order given.
    """

    def __init__(self, message: str, *, results: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.results = results


def describe(code: str, description: str) -> str:
    """One line for a message: ``"CODE: description"``, or just the part that is not empty."""
    return ": ".join(part for part in (code, description) if part) or "no code, no description"


def command_error(
    code: str,
    description: str,
    *,
    method: str,
    key: str | None,
    account: str | None = None,
    status: int | None = None,
    redactor: Callable[[str], str] | None = None,
) -> Bitrix24Error:
    """The error of one failed call or batch command, its class chosen by the code.

    Args:
        code: Bitrix24's ``error`` (``""`` allowed).
        description: Bitrix24's ``error_description``.
        method: The REST method.
        key: The batch command key (None for a direct call).
        account: The account the call was charged to.
        status: The HTTP status (None inside a batch: the batch itself answered 200).
        redactor: Masks secrets and personal data in the message and attributes.

    Returns:
        A :class:`Bitrix24AuthError` for the codes of :data:`AUTH_HINTS`, a
        :class:`Bitrix24OperationLimitError` for ``OPERATION_TIME_LIMIT``, else a
        :class:`Bitrix24MethodError`.
    """
    where = f"{method} (batch command {key!r})" if key is not None else method
    said = describe(code, description)
    cls: type[Bitrix24Error] = Bitrix24MethodError
    hint = ""
    if code in AUTH_HINTS:
        cls, hint = Bitrix24AuthError, f"; {AUTH_HINTS[code]}"
    elif code == OPERATION_TIME_LIMIT:
        cls, hint = Bitrix24OperationLimitError, "; the method is blocked for about 10 minutes"
    return cls(
        f"{where}: Bitrix24 refused the call ({said}){hint}",
        code=code,
        description=description,
        method=method,
        key=key,
        account=account,
        status=status,
        what=where,
        redactor=redactor,
    )

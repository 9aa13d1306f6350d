"""Bitrix24's error answers: ``{"error": "<CODE>", "error_description": "<text>"}`` and their statuses.

Texts are the real ones: system errors from the docs (``_includes/system-errors.md``), method errors
from the docs and real captures (``crm.deal.list.400.json``, ``crm_get_batch_mix_success_and_errors.json``:
``"ID is not defined or invalid."``, ``"Not found"``), the ``crm.duplicate.findbycomm`` ones from its
page and the CRM module's source. Many method errors carry an **empty** ``error`` and only a
description; some use the text itself as the code. Those marked *sandbox* below have no public source
and are this sandbox's wording.
"""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    """One kind of error answer.

    Attributes:
        code: The ``error`` field (may be empty).
        description: The ``error_description`` field; ``{name}`` placeholders are filled by :meth:`at`.
        status: HTTP status of a top-level call failing with it (inside ``batch`` the status is lost).
    """

    code: str
    description: str
    status: int = 400

    def at(self, **values: Any) -> "BitrixError":
        """The error to raise, with the description's placeholders filled."""
        return BitrixError(self.code, self.description.format(**values), self.status)


class BitrixError(Exception):
    """A method failed the way Bitrix24 reports it."""

    def __init__(self, code: str, description: str, status: int = 400) -> None:
        """Create the error.

        Args:
            code: The ``error`` field (may be empty).
            description: The ``error_description`` field.
            status: HTTP status when it is the answer to a whole request.
        """
        super().__init__(description)
        self.code = code
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        """The JSON answer: ``{"error", "error_description"}``."""
        return {"error": self.code, "error_description": self.description}


# --- system errors (any method) -----------------------------------------------------------------------
NO_AUTH_FOUND = ErrorSpec("NO_AUTH_FOUND", "Wrong authorization data", 401)
QUERY_LIMIT_EXCEEDED = ErrorSpec("QUERY_LIMIT_EXCEEDED", "Too many requests", 503)
#: Text from the official JS SDK (``isOperatingLimitError``).
OPERATION_TIME_LIMIT = ErrorSpec(
    "OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit.", 429
)
INTERNAL_SERVER_ERROR = ErrorSpec("INTERNAL_SERVER_ERROR", "Internal server error", 500)
METHOD_NOT_FOUND = ErrorSpec("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)
BATCH_LENGTH_EXCEEDED = ErrorSpec("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded", 400)
BATCH_METHOD_NOT_ALLOWED = ErrorSpec(
    "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage", 405
)

# --- method errors (empty code) ------------------------------------------------------------------------
ID_INVALID = ErrorSpec("", "ID is not defined or invalid.")
NOT_FOUND = ErrorSpec("", "Not found")
MUST_BE_ARRAY = ErrorSpec("", "Parameter '{name}' must be array.")
#: *sandbox*: the real portal rejects a stage outside the deal's funnel, wording unknown.
STAGE_NOT_IN_CATEGORY = ErrorSpec("", "Stage '{stage}' does not belong to the deal category {category}.")
#: *sandbox*: unknown lead status, wording unknown.
STATUS_UNKNOWN = ErrorSpec("", "Status '{status}' is not found.")
#: *sandbox*: unknown funnel, wording unknown.
CATEGORY_NOT_FOUND = ErrorSpec("", "Deal category with ID '{category}' is not found.")

# --- crm.duplicate.findbycomm --------------------------------------------------------------------------
COMM_TYPE_MISSING = ErrorSpec("Communication type is not defined", "Parameter 'type' is required.")
COMM_TYPE_UNSUPPORTED = ErrorSpec("", "Communication type '{type}' is not supported in current context.")
COMM_VALUES_MISSING = ErrorSpec("Communication values is not defined", "Parameter 'values' is required.")
COMM_DEAL_UNSUPPORTED = ErrorSpec("", "Deal is not supported in current context.")
#: *sandbox*: only with ``strict_findbycomm``; the real method silently uses the first 20 values.
COMM_TOO_MANY_VALUES = ErrorSpec("", "Too many communication values: {count} (at most {limit}).")

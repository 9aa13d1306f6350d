"""Bitrix24-specific fault switches, beside the shared :class:`~elt_platform.sandbox.faults.FaultConfig`
(which already gives "the N-th request fails", 5xx bursts, ``QUERY_LIMIT_EXCEEDED`` bursts, slow and cut
answers for whole HTTP requests).

These act on **commands** — a top-level method call or one command inside ``batch`` — so a test can make
a single batch command fail while the others succeed:

* :class:`CommandFailure`: commands matching a method, a phone (any parameter value with the same match
  code: "everything touching +7 701 123 45 67"), a text, or the N-th command, answer a chosen error;
* ``operation_time_limit``: methods blocked with ``OPERATION_TIME_LIMIT`` (429 on its own, a per-command
  error inside ``batch``, as the real portal's method-time limit does);
* ``batch_errors_as_list``: ``result_error`` comes back as the plain list of error objects real portals
  send (``crm_get_batch_mix_success_and_errors.json``), not keyed by command as documented.

Command numbers count from when the switches were set (top-level calls and batch commands alike).
"""

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from elt_platform.sandbox.bitrix24.errors import BitrixError
from elt_platform.sandbox.bitrix24.phones import normalize_phone


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [text for element in value.values() for text in _strings(element)]
    if isinstance(value, list):
        return [text for element in value for text in _strings(element)]
    return [value] if isinstance(value, str) else [str(value)] if isinstance(value, int | float) else []


@dataclass
class CommandFailure:
    """Commands that fail, and how. Every given criterion must hold; none given matches every command.

    Attributes:
        method: Method name (``crm.contact.add``); None: any.
        phone: A phone; matches a command if any parameter value has the same match code.
        text: Matches a command if any parameter value contains it.
        at_command: Only the command with this number (1-based, since the switches were set); 0: any.
        times: How many matching commands fail before the rule is spent; None: all.
        error: The ``error`` field (empty like most real method errors).
        error_description: The ``error_description`` field.
        status: HTTP status when the command is a top-level call.
    """

    method: str | None = None
    phone: str | None = None
    text: str | None = None
    at_command: int = 0
    times: int | None = None
    error: str = ""
    error_description: str = "Internal error"
    status: int = 400

    def matches(self, method: str, params: dict[str, Any], number: int) -> bool:
        """Whether the command ``number`` (``method`` with ``params``) is one of this rule's."""
        if self.times is not None and self.times <= 0:
            return False
        if self.method is not None and self.method.lower() != method:
            return False
        if self.at_command and self.at_command != number:
            return False
        values = _strings(params) if self.phone is not None or self.text is not None else []
        if self.phone is not None:
            code = normalize_phone(self.phone)
            if not any(normalize_phone(value) == code for value in values):
                return False
        return self.text is None or any(self.text in value for value in values)


@dataclass
class Bitrix24Faults:
    """Command-level fault switches (all off by default).

    Attributes:
        fail_commands: Rules making matching commands fail, first match wins.
        operation_time_limit: Methods answering ``OPERATION_TIME_LIMIT``; ``"*"`` is every method but
            ``batch`` itself (the outer call is not counted in ``operating``).
        batch_errors_as_list: ``result_error`` as a plain list (real captures) instead of keyed by command.
    """

    fail_commands: list[CommandFailure] = field(default_factory=list)
    operation_time_limit: list[str] = field(default_factory=list)
    batch_errors_as_list: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Bitrix24Faults":
        """Build the switches from a JSON object (what ``PUT /__sandbox/bitrix24/faults`` takes).

        Raises:
            ValueError: Not an object, or an unknown or mistyped field.
        """
        if not isinstance(data, dict):
            raise ValueError("bitrix24 faults must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown bitrix24 fault fields: {unknown}; known: {sorted(known)}")
        rules = data.get("fail_commands", [])
        if not isinstance(rules, list) or not all(isinstance(rule, dict) for rule in rules):
            raise ValueError("fail_commands must be a list of objects")
        try:
            failures = [CommandFailure(**rule) for rule in rules]
        except TypeError as exc:
            raise ValueError(f"fail_commands: {exc}") from None
        limited = data.get("operation_time_limit", [])
        if not isinstance(limited, list) or not all(isinstance(name, str) for name in limited):
            raise ValueError("operation_time_limit must be a list of method names")
        as_list = data.get("batch_errors_as_list", False)
        if not isinstance(as_list, bool):
            raise ValueError("batch_errors_as_list must be true or false")
        return cls(failures, limited, as_list)

    def to_dict(self) -> dict[str, Any]:
        """The switches as JSON (counters show what is left)."""
        return asdict(self)

    def blocks(self, method: str) -> bool:
        """Whether ``method`` is under the operation-time limit."""
        if method == "batch":
            return False
        return any(name == "*" or name.lower() == method for name in self.operation_time_limit)

    def failure(self, method: str, params: dict[str, Any], number: int) -> BitrixError | None:
        """The error the command must answer, spending one use of its rule; None when it runs normally."""
        for rule in self.fail_commands:
            if rule.matches(method, params, number):
                if rule.times is not None:
                    rule.times -= 1
                return BitrixError(rule.error, rule.error_description, rule.status)
        return None

"""The ``batch`` protocol of Bitrix24 REST: encoding commands, packing them into calls, reading the answers.

Pure functions; :class:`~elt_platform.destinations.bitrix24.client.Bitrix24Client` sends what they build.

**Encoding.** A call is ``{"halt": 0|1, "cmd": {<key>: "<method>?<query>"}}``. Bitrix24 splits each command
at ``?`` and reads the query with PHP's ``parse_str``, so :func:`php_query` writes it as PHP's
``http_build_query`` does: nested maps and lists as ``fields%5BPHONE%5D%5B0%5D%5BVALUE%5D=…``
(``fields[PHONE][0][VALUE]``), ``urlencode`` escaping, ``true``/``false`` as ``1``/``0``, and ``None`` left
out. A value may reference the result of an earlier command of the same call, ``$result[<key>]`` or
``$result[<key>][ID]``: Bitrix24 substitutes it *after* ``parse_str`` has decoded the query
(``CRestUtil::ParseBatchQuery``), so it survives the escaping.

**Packing.** :func:`plan_chunks` cuts the commands into calls of at most 50 and keeps every command in the
same call as the commands it references (a reference only resolves inside one call).

**Reading.** :func:`read_chunk` turns the answer into one :class:`CommandResult` per key. PHP's
``json_encode`` shapes it: an empty map comes out as ``[]`` (``result_error`` on success; ``result``,
``result_total``, ``result_next``, ``result_time`` when everything failed), and a map whose keys are
``0 … n-1`` in order comes out as a *list* — so ``result_error`` seen as a plain list of
``{"error": "", "error_description": …}`` is a map of the commands ``"0"``, ``"1"``… (real captures:
commands keyed by record ids ``0``, ``1``, ``35943``; the first two failed). Errors are placed on their
command when the key fits; errors that fit no command without a result cannot be told apart, and every
command left without a result in that call fails with all of their descriptions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote_plus

from elt_platform.destinations.bitrix24.errors import NOT_EXECUTED, Bitrix24Error, command_error, describe
from elt_platform.http.errors import PayloadError

#: ``(method, params)``: one REST call inside a batch, e.g. ``("crm.deal.get", {"id": 42})``.
Command = tuple[str, Mapping[str, Any]]

#: Command keys: Bitrix24 reads ``$result[<key>]`` up to the first ``]`` or whitespace.
_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_METHOD = re.compile(r"^[A-Za-z0-9_.]+$")
_REFERENCE = re.compile(r"\$result\[([^\]\s]+)\]")


@dataclass(frozen=True)
class CommandResult:
    """The outcome of one batch command.

    Attributes:
        key: The command's key.
        method: The REST method it called.
        result: What the method returned (None when it failed). PHP shapes pass through: a method that
            found nothing may return ``[]`` where it otherwise returns a map.
        error: Why it failed, or None.
        total: ``result_total`` of a list method (records matching, all pages), else None.
        next: ``result_next`` of a list method: ``start`` of its next page, None on the last one.
    """

    key: str
    method: str
    result: Any = None
    error: Bitrix24Error | None = None
    total: int | None = None
    next: int | None = None

    @property
    def ok(self) -> bool:
        """True when the command succeeded."""
        return self.error is None

    def unwrap(self) -> Any:
        """The result, or raise the command's error.

        Raises:
            Bitrix24Error: The command failed (a subclass by code, see :mod:`.errors`).
        """
        if self.error is not None:
            raise self.error
        return self.result


def _urlencode(text: str) -> str:
    # PHP's urlencode: only A-Z a-z 0-9 - _ . stay, a space is "+"; quote_plus would also keep "~".
    return quote_plus(text, safe="").replace("~", "%7E")


def _scalar(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str | int | Decimal):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("NaN and infinity cannot be sent to Bitrix24")
        return repr(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot send a {type(value).__name__} to Bitrix24 (str, numbers, dates, maps, lists)")


def _pairs(name: str, value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _pairs(f"{name}%5B{_urlencode(str(key))}%5D", item)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _pairs(f"{name}%5B{index}%5D", item)
    elif (text := _scalar(value)) is not None:
        yield f"{name}={_urlencode(text)}"


def php_query(params: Mapping[str, Any]) -> str:
    """Encode parameters as PHP's ``http_build_query`` does (what Bitrix24's ``parse_str`` reads back).

    Args:
        params: Strings, numbers (``bool`` as ``1``/``0``), dates (ISO 8601), maps and lists, nested. ``None``
            is left out, as PHP leaves out ``null``: send ``""`` to clear a field. Empty maps and lists
            produce nothing, as in PHP.

    Returns:
        E.g. ``fields%5BTITLE%5D=A+%26+B&fields%5BPHONE%5D%5B0%5D%5BVALUE%5D=%2B77011234567`` for
        ``{"fields": {"TITLE": "A & B", "PHONE": [{"VALUE": "+77011234567"}]}}``.

    Raises:
        TypeError: A value of another type.
        ValueError: NaN or infinity.
    """
    return "&".join(pair for key, value in params.items() for pair in _pairs(_urlencode(str(key)), value))


def encode_command(method: str, params: Mapping[str, Any] | None = None) -> str:
    """One ``cmd`` value: ``"<method>?<php_query(params)>"`` (just the method without parameters).

    Raises:
        ValueError: The method name is not a REST method name (it would corrupt the command string).
    """
    if not _METHOD.match(method):
        raise ValueError(f"not a Bitrix24 REST method name: {method!r}")
    query = php_query(params or {})
    return f"{method}?{query}" if query else method


def references(params: Any) -> Iterator[str]:
    """The command keys a command's parameters reference as ``$result[<key>]…`` (values at any depth)."""
    if isinstance(params, str):
        yield from _REFERENCE.findall(params)
    elif isinstance(params, Mapping):
        for value in params.values():
            yield from references(value)
    elif isinstance(params, list | tuple):
        for value in params:
            yield from references(value)


def plan_chunks(commands: Mapping[str, Command], size: int) -> list[list[str]]:
    """Cut commands into calls of at most ``size``, keeping the commands that reference each other together.

    Commands are grouped by their references (a command and every command it references, transitively).
    Groups fill the calls in the order of their first command (a group that does not fit in the current
    call opens the next one); each call keeps its commands in their original order (a reference must point
    to a command that runs earlier). Commands without references thus run in the order given.

    Args:
        commands: ``key -> (method, params)``, in execution order.
        size: Commands per call (50).

    Returns:
        The keys of each call.

    Raises:
        ValueError: A key Bitrix24 could not reference (allowed: letters, digits, ``_.:-``; 64 at most), a
            reference to a command that is not in ``commands`` or does not run before the referencing one,
            or a group of linked commands larger than ``size``.
    """
    keys = list(commands)
    position = {key: index for index, key in enumerate(keys)}
    parent = list(range(len(keys)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    for key, (_, params) in commands.items():
        if not _KEY.match(key):
            raise ValueError(f"batch command key {key!r}: use letters, digits and _.:- (at most 64)")
        for referenced in references(params):
            if referenced not in position:
                raise ValueError(f"batch command {key!r} references $result[{referenced}]: no such command")
            if position[referenced] >= position[key]:
                raise ValueError(
                    f"batch command {key!r} references {referenced!r}, which does not run before it"
                )
            parent[root(position[key])] = root(position[referenced])
    groups: dict[int, list[int]] = {}
    for index in range(len(keys)):
        groups.setdefault(root(index), []).append(index)
    chunks: list[list[int]] = []
    current: list[int] = []
    for members in groups.values():
        if len(members) > size:
            raise ValueError(
                f"{len(members)} batch commands reference each other (from {keys[members[0]]!r}): at most "
                f"{size} fit in one call"
            )
        if len(current) + len(members) > size:
            chunks.append(sorted(current))
            current = []
        current.extend(members)
    if current:
        chunks.append(sorted(current))
    return [[keys[index] for index in chunk] for chunk in chunks]


def php_array(value: Any, *, what: str) -> dict[str, Any]:
    """A PHP array as JSON shows it, keyed by strings: a map as it is, a list by position, ``[]``/null empty.

    Raises:
        PayloadError: Neither a map, a list nor null.
    """
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(key): item for key, item in value.items()}
    if isinstance(value, list):
        return {str(index): item for index, item in enumerate(value)}
    raise PayloadError(
        f"batch {what}: expected a JSON object or array, got {type(value).__name__}", what=what
    )


def _error_fields(item: Any) -> tuple[str, str]:
    if isinstance(item, Mapping):
        code, description = item.get("error"), item.get("error_description")
        return (code if isinstance(code, str) else "", description if isinstance(description, str) else "")
    return "", str(item)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_chunk(
    body: Any,
    chunk: Mapping[str, Command],
    *,
    halt: bool,
    account: str | None = None,
    redactor: Callable[[str], str] | None = None,
) -> dict[str, CommandResult]:
    """Read the answer to one ``batch`` call.

    Args:
        body: The decoded response: ``{"result": {"result", "result_error", "result_total", "result_next",
            "result_time"}, "time"}``.
        chunk: The commands of that call, ``key -> (method, params)``.
        halt: Whether the call was sent with ``halt=1`` (commands after a failure are not run).
        account: Named in errors.
        redactor: Masks secrets and personal data in errors.

    Returns:
        One result per key of ``chunk``, in its order. A command with neither a result nor an error of its
        own fails: with the errors that fit no command (see the module docstring), else with
        ``NOT_EXECUTED`` under ``halt``, else with "no result and no error".

    Raises:
        PayloadError: The body is not a batch answer.
    """
    payload = body.get("result") if isinstance(body, Mapping) else None
    if not isinstance(payload, Mapping):
        raise PayloadError("batch: the answer has no result object", what="batch")
    results = php_array(payload.get("result"), what="result")
    errors = php_array(payload.get("result_error"), what="result_error")
    totals = php_array(payload.get("result_total"), what="result_total")
    nexts = php_array(payload.get("result_next"), what="result_next")
    placed = {key: item for key, item in errors.items() if key in chunk and key not in results}
    stray = [_error_fields(item) for key, item in errors.items() if key not in placed]
    stray_codes = {code for code, _ in stray}
    stray_code = stray_codes.pop() if len(stray_codes) == 1 else ""
    stray_text = "; ".join(describe(code, text) for code, text in stray)

    out: dict[str, CommandResult] = {}
    for key, (method, _) in chunk.items():
        if key in results:
            out[key] = CommandResult(
                key, method, results[key], total=_count(totals.get(key)), next=_count(nexts.get(key))
            )
            continue
        if key in placed:
            code, description = _error_fields(placed[key])
        elif stray:
            code = stray_code
            description = (
                f"Bitrix24 returned {len(stray)} error(s) without command keys and no result for this "
                f"command: {stray_text}"
            )
        elif halt:
            code, description = NOT_EXECUTED, "not run: an earlier command of the call failed and halt is set"
        else:
            code, description = "", "Bitrix24 returned neither a result nor an error for this command"
        error = command_error(code, description, method=method, key=key, account=account, redactor=redactor)
        out[key] = CommandResult(key, method, error=error)
    return out


def failed_all(
    chunk: Mapping[str, Command],
    code: str,
    description: str,
    *,
    account: str | None = None,
    redactor: Callable[[str], str] | None = None,
) -> dict[str, CommandResult]:
    """The same failure for every command of ``chunk`` (never sent, or sent in a call that failed)."""
    return {
        key: CommandResult(
            key,
            method,
            error=command_error(
                code, description, method=method, key=key, account=account, redactor=redactor
            ),
        )
        for key, (method, _) in chunk.items()
    }

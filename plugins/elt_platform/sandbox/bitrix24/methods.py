"""The REST methods of the sandbox portal and ``batch``: :class:`RestApi` turns ``(method, params)`` into
a result or a :class:`~elt_platform.sandbox.bitrix24.errors.BitrixError`, keeps the command log and
applies the command-level faults. No HTTP here: the app wraps answers in ``{"result", "next", "total",
"time"}``; tests may call it in-process.

Methods (names case-insensitive):

* ``crm.{contact,lead,deal}.{add,update,get,list}``; ``list``: ``filter`` (see
  :mod:`~elt_platform.sandbox.bitrix24.records`), ``order`` (default ``ID`` ascending), ``select``
  (default the standard fields; ``*``, ``UF_*``, ``PHONE``, ``EMAIL``), ``start`` (pages of 50, ``-1``:
  no count);
* ``crm.{contact,lead,deal}.userfield.list`` (labels with ``filter[LANG]``), ``crm.status.list``
  (``filter[ENTITY_ID]`` = ``STATUS``, ``SOURCE``, ``DEAL_STAGE``, ``DEAL_STAGE_<id>``),
  ``crm.dealcategory.list`` (funnels other than 0), ``crm.dealcategory.stage.list`` (``id``, default 0);
* ``crm.duplicate.findbycomm`` (``type``, ``values``, ``entity_type``);
* ``batch``: ``cmd[<key>]=<method>?<query>`` (≤ 50, else ``ERROR_BATCH_LENGTH_EXCEEDED`` for the whole
  call), ``halt``; ``$result[<key>]…``, ``$result_next[<key>]``, ``$result_total[<key>]`` in a command's
  parameter values are replaced by earlier answers (a value that is only a reference takes the referenced
  array itself); a ``batch`` inside ``batch`` fails with ``ERROR_BATCH_METHOD_NOT_ALLOWED``.
"""

import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import partial
from typing import Any

from elt_platform.sandbox.bitrix24 import errors
from elt_platform.sandbox.bitrix24.errors import BitrixError
from elt_platform.sandbox.bitrix24.faults import Bitrix24Faults
from elt_platform.sandbox.bitrix24.php import Params, items_of, param, parse_query, values_of
from elt_platform.sandbox.bitrix24.portal import WEBHOOK_USER, Portal, record_id
from elt_platform.sandbox.bitrix24.records import ENTITY_TYPES, Condition, FieldComparer, scalar_text

BATCH_LIMIT = 50
#: How long a method's operating time is accounted (``operating_reset_at`` = start + this).
OPERATING_WINDOW = 600
_REFERENCE = re.compile(r"\$(result|result_next|result_total)\[([^\]]+)\]((?:\[[^\]]*\])*)")
_SEGMENTS = re.compile(r"\[([^\]]*)\]")
_PLAIN_NUMBERS = frozenset({"ID", "SORT"})


@dataclass(frozen=True, slots=True)
class CallResult:
    """What a method returns.

    Attributes:
        result: The ``result`` value.
        total: ``total`` of a list method, else None.
        next: ``next`` when another page exists, else None.
    """

    result: Any
    total: int | None = None
    next: int | None = None


@dataclass(frozen=True, slots=True)
class Command:
    """One executed command, for tests ("the rerun sent nothing", "this phone was searched").

    Attributes:
        number: 1-based, since the log was reset.
        method: Method name, lower case.
        params: Its parameters as parsed (after ``$result`` substitution inside ``batch``).
        in_batch: Ran inside ``batch``.
        error: ``error_description`` if it failed, else None.
    """

    number: int
    method: str
    params: Params
    in_batch: bool
    error: str | None


def _truthy(value: Any) -> bool:
    text = scalar_text(value)
    return text is not None and text.strip().lower() in ("1", "y", "true")


def _filter(params: Params) -> list[Condition]:
    raw = param(params, "filter")
    if raw is None or raw == []:
        return []
    if not isinstance(raw, dict):
        raise errors.MUST_BE_ARRAY.at(name="filter")
    return [Condition.parse(str(key), value) for key, value in raw.items()]


def _order(params: Params) -> list[tuple[str, bool]]:
    raw = param(params, "order")
    if raw is None or raw == []:
        return []
    if not isinstance(raw, dict):
        raise errors.MUST_BE_ARRAY.at(name="order")
    return [
        (str(key).upper(), (scalar_text(way) or "").strip().upper() == "DESC") for key, way in raw.items()
    ]


def _start(params: Params) -> int:
    text = (scalar_text(param(params, "start")) or "0").strip()
    return int(text) if text.lstrip("-").isdigit() else 0


def _select(params: Params) -> list[str] | None:
    raw = values_of(param(params, "select"))
    return [str(name) for name in raw] if raw else None


def _plain_list(records: list[dict[str, Any]], params: Params, zone: tzinfo) -> CallResult:
    """Filter and order dictionary records (statuses, funnels, user fields) by plain field values."""

    def comparer(name: str) -> FieldComparer:
        return FieldComparer("number" if name in _PLAIN_NUMBERS else "text", zone)

    conditions = [c for c in _filter(params) if c.field != "LANG"]
    matched = [
        record
        for record in records
        if all(comparer(c.field).test(c, record.get(c.field)) for c in conditions)
    ]
    for name, descending in reversed(_order(params)):

        def sort_key(record: dict[str, Any], field: str = name) -> tuple[int, Any]:
            return comparer(field).sort_key(record.get(field))

        matched.sort(key=sort_key, reverse=descending)
    return CallResult(matched, total=len(matched))


class RestApi:
    """The portal's REST methods, the command log and the command-level faults (thread-safe)."""

    def __init__(self, portal: Portal, *, user_id: int = WEBHOOK_USER, faults: Bitrix24Faults | None = None):
        """Create the API.

        Args:
            portal: The CRM it reads and writes.
            user_id: The webhook's user: author of what the API writes.
            faults: Command-level faults in force at start.
        """
        self.portal = portal
        self.user_id = user_id
        self._lock = threading.Lock()
        self._faults = faults or Bitrix24Faults()
        self._faults_number = 0
        self._log: list[Command] = []
        self._counts: Counter[str] = Counter()
        self._batch_counts: Counter[str] = Counter()
        self._methods: dict[str, Callable[[Params], CallResult]] = {
            "batch": self._batch,
            "crm.duplicate.findbycomm": self._find_by_comm,
            "crm.status.list": self._statuses,
            "crm.dealcategory.list": self._categories,
            "crm.dealcategory.stage.list": self._stages,
        }
        for entity in ENTITY_TYPES:
            self._methods |= {
                f"crm.{entity}.add": partial(self._add, entity),
                f"crm.{entity}.update": partial(self._update, entity),
                f"crm.{entity}.get": partial(self._get, entity),
                f"crm.{entity}.list": partial(self._list, entity),
                f"crm.{entity}.userfield.list": partial(self._user_fields, entity),
            }

    @property
    def methods(self) -> list[str]:
        """Every method name this API answers."""
        return sorted(self._methods)

    # --- faults and log ------------------------------------------------------------------------------

    @property
    def faults(self) -> Bitrix24Faults:
        """The command-level faults in force."""
        return self._faults

    def set_faults(self, faults: Bitrix24Faults | None) -> Bitrix24Faults:
        """Replace the command-level faults; command numbers for ``at_command`` restart at 1."""
        # A private copy: rules count their uses down, and the caller's objects must stay as given.
        copy = Bitrix24Faults.from_dict(faults.to_dict()) if faults is not None else Bitrix24Faults()
        with self._lock:
            self._faults = copy
            self._faults_number = 0
            return copy

    def commands(self, method: str | None = None) -> list[Command]:
        """Executed commands (top-level and inside ``batch``), oldest first, optionally of one method."""
        with self._lock:
            return [command for command in self._log if method is None or command.method == method]

    def counts(self) -> dict[str, Any]:
        """``{"commands": {method: n}, "batch_commands": {method: n}, "total": n}`` since the last reset.

        ``commands`` counts every executed command, top-level or in a batch (``batch`` itself included);
        ``batch_commands`` only those run inside a batch.
        """
        with self._lock:
            return {
                "commands": dict(self._counts),
                "batch_commands": dict(self._batch_counts),
                "total": sum(self._counts.values()),
            }

    def reset_log(self) -> None:
        """Forget the command log and counts."""
        with self._lock:
            self._log.clear()
            self._counts.clear()
            self._batch_counts.clear()

    # --- entry point ---------------------------------------------------------------------------------

    def call(self, method: str, params: Params, *, in_batch: bool = False) -> CallResult:
        """Run one command.

        Args:
            method: Method name (any case, with or without ``.json``).
            params: Parsed parameters.
            in_batch: It is a command of a ``batch``.

        Returns:
            The method's result.

        Raises:
            BitrixError: As the real method fails (unknown method: ``ERROR_METHOD_NOT_FOUND``, 404).
        """
        name = method.strip().lower().removesuffix(".json")
        with self._lock:
            self._faults_number += 1
            number = self._faults_number
            self._counts[name] += 1
            if in_batch:
                self._batch_counts[name] += 1
            failure = self._injected(name, params, number, in_batch=in_batch)
        error: BitrixError | None = failure
        try:
            if failure is not None:
                raise failure
            handler = self._methods.get(name)
            if handler is None:
                raise errors.METHOD_NOT_FOUND.at()
            return handler(params)
        except BitrixError as exc:
            error = exc
            raise
        finally:
            with self._lock:
                self._log.append(
                    Command(len(self._log) + 1, name, params, in_batch, error.description if error else None)
                )

    def _injected(self, name: str, params: Params, number: int, *, in_batch: bool) -> BitrixError | None:
        if in_batch and name == "batch":
            return errors.BATCH_METHOD_NOT_ALLOWED.at()
        if self._faults.blocks(name):
            return errors.OPERATION_TIME_LIMIT.at()
        return self._faults.failure(name, params, number)

    def time_block(self, start: float, finish: float) -> dict[str, Any]:
        """The ``time`` object of an answer (and of each ``batch`` command in ``result_time``)."""
        zone = self.portal.config.timezone
        return {
            "start": start,
            "finish": finish,
            "duration": finish - start,
            "processing": finish - start,
            "date_start": datetime.fromtimestamp(int(start), zone).isoformat(),
            "date_finish": datetime.fromtimestamp(int(finish), zone).isoformat(),
            "operating_reset_at": int(start) + OPERATING_WINDOW,
            "operating": 0,
        }

    # --- CRM entities --------------------------------------------------------------------------------

    def _add(self, entity: str, params: Params) -> CallResult:
        return CallResult(self.portal.add(entity, param(params, "fields"), user_id=self.user_id))

    def _update(self, entity: str, params: Params) -> CallResult:
        entity_id = record_id(param(params, "id"))
        fields = param(params, "fields")
        return CallResult(self.portal.update(entity, entity_id, fields, user_id=self.user_id))

    def _get(self, entity: str, params: Params) -> CallResult:
        return CallResult(self.portal.get(entity, param(params, "id")))

    def _list(self, entity: str, params: Params) -> CallResult:
        page = self.portal.query(entity, _filter(params), _order(params), _select(params), _start(params))
        return CallResult(page.records, page.total, page.next)

    def _find_by_comm(self, params: Params) -> CallResult:
        entity_type = param(params, "entity_type")
        if entity_type is None:
            entity_type = param(params, "entityType")
        found = self.portal.find_by_comm(param(params, "type"), param(params, "values"), entity_type)
        return CallResult(found)

    # --- dictionaries --------------------------------------------------------------------------------

    def _statuses(self, params: Params) -> CallResult:
        return _plain_list(self.portal.config.status_records(), params, self.portal.config.timezone)

    def _categories(self, params: Params) -> CallResult:
        return _plain_list(self.portal.config.category_records(), params, self.portal.config.timezone)

    def _stages(self, params: Params) -> CallResult:
        raw = scalar_text(param(params, "id")) or "0"
        category = self.portal.config.category(int(raw)) if raw.strip().isdigit() else None
        if category is None:
            raise errors.NOT_FOUND.at()
        return CallResult(
            [
                {"NAME": stage.name, "SORT": stage.sort, "STATUS_ID": stage.status_id}
                for stage in category.stages
            ]
        )

    def _user_fields(self, entity: str, params: Params) -> CallResult:
        raw_filter = param(params, "filter")
        with_labels = isinstance(raw_filter, dict) and param(raw_filter, "LANG") is not None
        records = self.portal.config.user_field_records(entity, with_labels=with_labels)
        return _plain_list(records, params, self.portal.config.timezone)

    # --- batch ---------------------------------------------------------------------------------------

    def _batch(self, params: Params) -> CallResult:
        commands = items_of(param(params, "cmd")) or []
        if len(commands) > BATCH_LIMIT:
            raise errors.BATCH_LENGTH_EXCEEDED.at()
        halt = _truthy(param(params, "halt"))
        answers: dict[str, dict[str, Any]] = {
            part: {} for part in ("result", "result_error", "result_total", "result_next", "result_time")
        }
        for key, command in commands:
            started = self.portal.clock()
            try:
                if not isinstance(command, str):
                    raise errors.METHOD_NOT_FOUND.at()
                method, _, query = command.partition("?")
                inner = _substitute(parse_query(query), answers)
                answer = self.call(method, inner, in_batch=True)
            except BitrixError as error:
                answers["result_error"][key] = error.body()
                if halt:
                    break
                continue
            answers["result"][key] = answer.result
            if answer.total is not None:
                answers["result_total"][key] = answer.total
            if answer.next is not None:
                answers["result_next"][key] = answer.next
            answers["result_time"][key] = self.time_block(started, self.portal.clock())
        result: dict[str, Any] = dict(answers)
        if self._faults.batch_errors_as_list:
            result["result_error"] = list(answers["result_error"].values())
        return CallResult(result)


def _resolve(match: re.Match[str], answers: dict[str, dict[str, Any]]) -> Any:
    value: Any = answers[match.group(1)].get(match.group(2))
    for segment in _SEGMENTS.findall(match.group(3)):
        if isinstance(value, dict):
            value = value.get(segment)
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return None
    return value


def _as_text(value: Any) -> str:
    if value is None or value is False:
        return ""
    if value is True:
        return "1"
    return value if isinstance(value, str) else str(value) if isinstance(value, int | float) else ""


def _substitute(value: Any, answers: dict[str, dict[str, Any]]) -> Any:
    """Replace ``$result[key][FIELD]…`` references in parameter values with earlier answers."""
    if isinstance(value, dict):
        return {key: _substitute(element, answers) for key, element in value.items()}
    if not isinstance(value, str) or "$" not in value:
        return value
    whole = _REFERENCE.fullmatch(value)
    if whole is not None:
        resolved = _resolve(whole, answers)
        return resolved if isinstance(resolved, dict | list) else _as_text(resolved)
    return _REFERENCE.sub(lambda match: _as_text(_resolve(match, answers)), value)

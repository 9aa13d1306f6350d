"""PHP's request and JSON conventions, which Bitrix24's REST API inherits.

* Parameters arrive as ``parse_str`` reads them: ``filter[UF_CRM_X]=1``, ``fields[PHONE][0][VALUE]=…``,
  ``select[]=ID`` build nested arrays. A PHP array is kept here as a ``dict`` with string keys (``[]``
  appends the next integer key), so form, query-string and JSON parameters look alike; JSON lists stay
  lists, and :func:`values_of` reads either.
* Answers are ``json_encode``'d: an array whose keys are exactly ``0..n-1`` in order is a JSON list, any
  other array an object, so an **empty map is** ``[]`` (``result_error: []``) and a batch whose only
  command is keyed ``0`` answers ``result: [[…]]`` (``crm_dealcategory_stage_list_batch_of_one.json``).
  Non-ASCII is escaped as ``\\uXXXX`` and ``/`` as ``\\/`` (``"[B]…[\\/B]"`` in the docs' ``crm.deal.get``).

Top-level parameter names are case-insensitive (Bitrix24 resolves ``id``/``ID``, ``fields``/``FIELDS``);
:func:`param` looks them up that way.
"""

import json
import re
from typing import Any
from urllib.parse import unquote_plus

#: A parsed parameter set: PHP arrays as dicts, JSON lists as lists, scalars as they came.
Params = dict[str, Any]

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\]]*)\]")


def parse_query(query: str) -> Params:
    """Parse a query string or a form body the way PHP's ``parse_str`` does.

    Args:
        query: ``a=1&filter[X]=2&select[]=ID&select[]=TITLE`` (percent-encoded, ``+`` for spaces).

    Returns:
        The nested parameters, e.g. ``{"a": "1", "filter": {"X": "2"}, "select": {"0": "ID", "1": "TITLE"}}``.
        A repeated plain key keeps its last value; pairs with an unusable key are dropped.
    """
    params: Params = {}
    for pair in query.split("&"):
        if not pair:
            continue
        raw_key, _, raw_value = pair.partition("=")
        match = _KEY.match(unquote_plus(raw_key))
        if match is None:
            continue
        path = [match.group(1), *_SEGMENT.findall(match.group(2))]
        _assign(params, path, unquote_plus(raw_value))
    return params


def _next_index(array: dict[str, Any]) -> str:
    indexes = [int(key) for key in array if key.lstrip("-").isdigit()]
    return str(max(indexes) + 1 if indexes else 0)


def _assign(array: dict[str, Any], path: list[str], value: str) -> None:
    node = array
    for segment in path[:-1]:
        key = segment if segment != "" else _next_index(node)
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    last = path[-1]
    node[last if last != "" else _next_index(node)] = value


def param(params: Params, name: str) -> Any:
    """The top-level parameter ``name`` in any letter case (exact spelling first), or None."""
    if name in params:
        return params[name]
    lowered = name.lower()
    return next((value for key, value in params.items() if key.lower() == lowered), None)


def values_of(value: Any) -> list[Any] | None:
    """The elements of a PHP array (dict, in key order) or a JSON list; None for a scalar or null."""
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return list(value)
    return None


def items_of(value: Any) -> list[tuple[str, Any]] | None:
    """``(key, element)`` pairs of a PHP array, a JSON list keyed ``"0".."n-1"``; None for a scalar."""
    if isinstance(value, dict):
        return [(str(key), element) for key, element in value.items()]
    if isinstance(value, list):
        return [(str(index), element) for index, element in enumerate(value)]
    return None


def php_shape(value: Any) -> Any:
    """Turn dicts into what PHP's ``json_encode`` would print: a list for keys ``0..n-1``, ``[]`` if empty."""
    if isinstance(value, dict):
        if all(key == str(index) for index, key in enumerate(value)):
            return [php_shape(element) for element in value.values()]
        return {str(key): php_shape(element) for key, element in value.items()}
    if isinstance(value, list | tuple):
        return [php_shape(element) for element in value]
    return value


def dumps(body: Any) -> bytes:
    """Encode an answer as Bitrix24 sends it (PHP array shapes, ``\\uXXXX`` escapes, ``\\/``)."""
    # "/" only ever occurs inside JSON strings, so escaping it in the text is PHP's default behaviour.
    return json.dumps(php_shape(body), separators=(",", ":")).replace("/", "\\/").encode()

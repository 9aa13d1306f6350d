"""Turning response bodies into Python values, and error bodies into short explanations.

The APIs behind this layer disagree on the edges: amoCRM answers an empty page with 204 and no body and
escapes non-ASCII as ``\\uXXXX``; Windows-built backends prepend a UTF-8 BOM; a blocked amoCRM account gets
an nginx HTML page instead of JSON; PHP backends (Bitrix24, Alaqan) encode an empty map as ``[]``. Errors
describe the body (status, content type, a short tag-stripped excerpt), never with a decoder traceback.
"""

import codecs
import html
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from elt_platform.http.errors import NonJsonError, PayloadError

EXCERPT_CHARS = 160
_JSON_TYPE = re.compile(r"^application/(?:[\w.+-]+\+)?json\b|^text/json\b", re.IGNORECASE)
_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_CHARSET = re.compile(r"charset=[\"']?([\w.:-]+)", re.IGNORECASE)


def is_json_type(content_type: str | None) -> bool:
    """Tell whether a ``Content-Type`` announces JSON (``application/json``, ``…+json``, ``text/json``)."""
    return bool(content_type and _JSON_TYPE.match(content_type.strip()))


def json_type_name(value: Any) -> str:
    """The JSON type of a decoded value as messages name it: ``object``, ``array``, ``string``, ``boolean``,
    ``number`` or ``null`` (a non-JSON Python value: its class name).

    Parsers quote the type, never the value, in quarantine reasons and errors: the value may be personal data.
    """
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else type(value).__name__


def _strip_bom(body: bytes) -> bytes:
    return body[len(codecs.BOM_UTF8) :] if body.startswith(codecs.BOM_UTF8) else body


def text_excerpt(body: bytes, content_type: str | None = None, *, limit: int = EXCERPT_CHARS) -> str:
    """A short, single-line text rendering of a body for messages: markup stripped, whitespace collapsed.

    Args:
        body: The raw body.
        content_type: The response's ``Content-Type``; its charset is used when valid, else UTF-8.
        limit: Maximum characters kept (an ellipsis marks the cut).

    Returns:
        E.g. ``"403 Forbidden nginx"`` for nginx's HTML error page. Not redacted: the caller's error does it.
    """
    charset = "utf-8"
    if content_type and (found := _CHARSET.search(content_type)):
        try:
            charset = codecs.lookup(found.group(1)).name
        except LookupError:
            pass
    text = _strip_bom(body[: limit * 64]).decode(charset, errors="replace")
    if "<" in text and ">" in text:
        text = html.unescape(_TAG.sub(" ", _SCRIPT_OR_STYLE.sub(" ", text)))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def decode_json(
    body: bytes,
    *,
    status: int | None,
    content_type: str | None,
    what: str,
    redactor: Callable[[str], str] | None = None,
) -> Any:
    """Decode a JSON body.

    Args:
        body: The raw body (UTF-8, with or without a BOM; ``\\uXXXX`` escapes are ordinary JSON).
        status: The HTTP status, for messages (204 always means "no body").
        content_type: The response's ``Content-Type``, for messages and to tell broken JSON from non-JSON.
        what: The request, for messages.
        redactor: Masks secrets in messages; defaults to personal data only.

    Returns:
        The decoded value, or None for a 204 or an empty (whitespace-only) body.

    Raises:
        NonJsonError: The body is not JSON at all (e.g. an HTML page); the message names the status,
            the content type and a short tag-stripped excerpt.
        PayloadError: The content type says JSON but the body does not parse (e.g. truncated); the body
            itself is not quoted, it may hold personal data.
    """
    if status == 204 or not body.strip():
        return None
    stripped = _strip_bom(body)
    try:
        return json.loads(stripped)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and UnicodeDecodeError; the chain is dropped on purpose (from
        # None): a decoder traceback says nothing an operator can act on.
        reason = (
            f"{type(exc).__name__}: {exc.msg}"
            if isinstance(exc, json.JSONDecodeError)
            else type(exc).__name__
        )
    status_text = f"HTTP {status}" if status is not None else "a response"
    if is_json_type(content_type) and not stripped.lstrip().startswith(b"<"):
        raise PayloadError(
            f"{what}: {status_text} body is not valid JSON ({reason}); {len(body)} bytes received, "
            "possibly truncated",
            status=status,
            what=what,
            redactor=redactor,
        ) from None
    excerpt = text_excerpt(body, content_type)
    raise NonJsonError(
        f"{what}: {status_text} returned {content_type or 'no Content-Type'}, not JSON: {excerpt!r}",
        status=status,
        what=what,
        content_type=content_type,
        excerpt=excerpt,
        redactor=redactor,
    ) from None


def as_mapping(value: Any, *, what: str = "value") -> dict[str, Any]:
    """Read a JSON value that should be an object, accepting PHP's ``[]`` for an empty one.

    Args:
        value: A decoded JSON value (e.g. Bitrix24's ``result.result_error``).
        what: Names the value in the error message, e.g. ``"batch result_error"``.

    Returns:
        The object itself, or ``{}`` for ``[]``.

    Raises:
        PayloadError: The value is a non-empty list or not an object at all.
    """
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, list) and not value:
        return {}
    shape = f"a list of {len(value)} item(s)" if isinstance(value, list) else type(value).__name__
    raise PayloadError(f"{what}: expected a JSON object, got {shape}", what=what)


@dataclass(frozen=True)
class ErrorBody:
    """What an error response says about itself, as far as it can be read.

    Attributes:
        excerpt: Short text rendering of the body (see :func:`text_excerpt`), not redacted.
        title: problem+json ``title``.
        detail: problem+json ``detail``, or Bitrix24's ``error_description``.
        code: Bitrix24's ``error`` (often ``""``), or a string ``error`` of other APIs.
        validation_errors: amoCRM's problem+json ``validation-errors``.
    """

    excerpt: str
    title: str | None = None
    detail: str | None = None
    code: str | None = None
    validation_errors: list[Any] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """One line for an error message: the API's own words when it gave any, else the excerpt."""
        parts = [part for part in (self.title, self.code, self.detail) if part]
        if self.validation_errors:
            parts.append(f"validation-errors: {json.dumps(self.validation_errors, ensure_ascii=False)}")
        text = ": ".join(parts) if parts else self.excerpt
        return text if len(text) <= 2 * EXCERPT_CHARS else text[: 2 * EXCERPT_CHARS - 1] + "…"


def _text_field(doc: Mapping[str, Any], key: str) -> str | None:
    value = doc.get(key)
    return value if isinstance(value, str) else None


def parse_error_body(body: bytes, content_type: str | None) -> ErrorBody:
    """Read an error body: ``application/problem+json`` (amoCRM), ``{"error", "error_description"}``
    (Bitrix24, OAuth servers) or anything else as a text excerpt.

    Args:
        body: The raw body.
        content_type: The response's ``Content-Type``.

    Returns:
        The fields found; never raises, whatever the body.
    """
    excerpt = text_excerpt(body, content_type)
    try:
        doc = json.loads(_strip_bom(body)) if body.strip() else None
    except (ValueError, RecursionError):
        doc = None
    if not isinstance(doc, Mapping):
        return ErrorBody(excerpt=excerpt)
    validation = doc.get("validation-errors")
    return ErrorBody(
        excerpt=excerpt,
        title=_text_field(doc, "title"),
        detail=_text_field(doc, "detail") or _text_field(doc, "error_description"),
        code=_text_field(doc, "error"),
        validation_errors=list(validation) if isinstance(validation, list) else [],
    )

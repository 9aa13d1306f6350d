"""The list endpoints' ``query`` search and lead filters as the sandbox answers them, on API records.

amoCRM documents ``query`` only as "searches through the filled fields of the entity". The sandbox
searches what a person would: the name (and a contact's first and last name) and every custom-field
value, case-insensitively as a substring. A query that looks like a phone number (digits with ``+``,
spaces, brackets, dots or dashes, at least :data:`MIN_PHONE_DIGITS` digits) is also compared with the
PHONE field by digits, so ``8 (701) 123-45-67``, ``+77011234567`` and ``7011234567`` find the same
contact: the last ten digits are the number without its country or trunk prefix (7 or 8 in Kazakhstan).

The real search is fuzzier than an exact match (amocrm/amocrm-api-php#515: a phone query returned a
contact whose number differed), so callers must check the value they searched for in what comes back;
so must tests of the sandbox: a substring also matches longer values ("123" finds "91234").
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Fewer digits than this is a number or a fragment, not a phone.
MIN_PHONE_DIGITS = 5
#: Digits of a phone without its country/trunk prefix (KZ/RU national numbers are 10 digits).
NATIONAL_DIGITS = 10
_PHONE_QUERY = re.compile(r"[+\d\s().-]+")
_NOT_DIGIT = re.compile(r"\D")


def digits(text: str) -> str:
    """The digits of ``text``, in order."""
    return _NOT_DIGIT.sub("", text)


def phone_key(text: str) -> str:
    """What two spellings of one phone share: its last ten digits (all of them when fewer)."""
    return digits(text)[-NATIONAL_DIGITS:]


@dataclass(frozen=True)
class Search:
    """A parsed ``query``.

    Attributes:
        text: The query, stripped and case-folded (substring of a name or a field value).
        phone: The query's :func:`phone_key` when it looks like a phone number, else None.
    """

    text: str
    phone: str | None

    @classmethod
    def parse(cls, raw: str) -> "Search | None":
        """Read a ``query`` parameter; None when it is blank (no search)."""
        text = raw.strip()
        if not text:
            return None
        phone = phone_key(text) if _PHONE_QUERY.fullmatch(text) else None
        return cls(text.casefold(), phone if phone and len(phone) >= MIN_PHONE_DIGITS else None)


def _texts(record: Mapping[str, Any]) -> Iterable[str]:
    for key in ("name", "first_name", "last_name"):
        value = record.get(key)
        if isinstance(value, str):
            yield value
    for field in record.get("custom_fields_values") or ():
        for item in field.get("values") or ():
            if item.get("value") is not None:
                yield str(item["value"])


def _phones(record: Mapping[str, Any]) -> Iterable[str]:
    for field in record.get("custom_fields_values") or ():
        if field.get("field_code") == "PHONE":
            yield from (str(item.get("value") or "") for item in field.get("values") or ())


def matches(record: Mapping[str, Any], search: Search) -> bool:
    """Whether an API record (lead, contact, company) is found by ``search``.

    Args:
        record: The record as the list shows it.
        search: The parsed query.

    Returns:
        True when the query is a substring of a name or a field value, or its phone key is within the
        digits of one of the record's phones.
    """
    if any(search.text in text.casefold() for text in _texts(record)):
        return True
    return search.phone is not None and any(search.phone in digits(phone) for phone in _phones(record))


def in_pipelines(
    record: Mapping[str, Any],
    pipeline_ids: frozenset[int] | None,
    statuses: frozenset[tuple[int, int]] | None,
) -> bool:
    """``filter[pipeline_id]`` and ``filter[statuses]`` on a lead (both given: both must hold).

    Args:
        record: A lead as the list shows it.
        pipeline_ids: Pipelines the lead must be in, or None.
        statuses: ``(pipeline_id, status_id)`` pairs one of which the lead must be in, or None.

    Returns:
        Whether the lead passes.
    """
    pipeline, status = record.get("pipeline_id"), record.get("status_id")
    if pipeline_ids is not None and pipeline not in pipeline_ids:
        return False
    return statuses is None or (pipeline, status) in statuses

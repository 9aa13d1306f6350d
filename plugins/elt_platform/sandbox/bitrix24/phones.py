"""Communication match codes as Bitrix24's duplicate index computes them (``crm.duplicate.findbycomm``).

Phones go through the main module's ``NormalizePhone($value, 1)`` and then lose any extension
(``DuplicateCommunicationCriterion::normalizePhone``): keep digits (and ``#*,;``); if at least 10 are
left, a leading ``00``/``011`` is an international prefix and is dropped, a leading ``8`` (except
``80``/``81``/``82``) becomes ``7``, a leading ``0`` is dropped; ``+8…`` is read as ``00 8…``. So
``+7 701 123-45-67``, ``8 (701) 123 45 67`` and ``87011234567`` all match ``77011234567``, while the
ten-digit ``7011234567`` does **not** — exactly the trap a client that strips country codes falls into.
E-mails match trimmed and lower-cased.
"""

import re

_KEPT = re.compile(r"[^0-9#*,;]")
_EXTENSION = re.compile(r"(\d+)([;#]*)([\d,]*)")


def normalize_phone(value: str) -> str:
    """The match code of a phone number, as Bitrix24 indexes and looks it up.

    Args:
        value: A phone as typed, e.g. ``"8 (701) 123-45-67"`` or ``"+7 701 1234567 #12"``.

    Returns:
        Its digits with the country prefix normalised (``"77011234567"``), or ``""`` if it has none.
    """
    number = value
    if len(number) >= 10 and number.startswith("+8"):
        number = "00" + number[1:]
    number = _KEPT.sub("", number)
    if len(number) >= 10:
        if number[:2] in ("80", "81", "82"):
            pass
        elif number.startswith("00"):
            number = number[2:]
        elif number.startswith("011"):
            number = number[3:]
        elif number.startswith("8"):
            number = "7" + number[1:]
        elif number.startswith("0"):
            number = number[1:]
    return _EXTENSION.sub(r"\1", number)


def normalize_email(value: str) -> str:
    """The match code of an e-mail address: trimmed and lower-cased."""
    return value.strip().lower()


def match_code(comm_type: str, value: str) -> str:
    """The match code of ``value`` for ``PHONE`` or ``EMAIL``."""
    return normalize_phone(value) if comm_type == "PHONE" else normalize_email(value)

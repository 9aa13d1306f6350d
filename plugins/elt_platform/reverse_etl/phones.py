"""Phone numbers as the reverse-ETL destinations send and compare them: E.164, ``+7`` and 10 digits.

The rules are those of the platform's dbt macro ``phone_e164`` (``dbt/macros/phone.sql``), which produces
the phones of the outbound gold models: a destination accepts what gold holds (``+77011234567``) and the
domestic forms a CRM's own records may still have, and refuses anything else rather than searching for,
or matching, a wrong number. Bitrix24 sends the E.164 form to its duplicate search; amoCRM searches for
its digits and compares the phones of the contacts it finds in this form.
"""

import re

_ALLOWED = re.compile(r"^\+?[0-9 ().-]+$")
_NOT_DIGIT = re.compile(r"[^0-9]")


def e164(value: str) -> str | None:
    """A Kazakh/Russian phone number in E.164 (``+7`` and 10 digits), or None when it is not one.

    Accepted: digits with spaces, brackets, dots and dashes, written as ``+7XXXXXXXXXX``, ``8XXXXXXXXXX``,
    ``7XXXXXXXXXX`` or the 10 digits ``7XXXXXXXXX`` (a Kazakh number without the country code).

    Args:
        value: The number as written.

    Returns:
        E.g. ``"+77011234567"`` for ``"8 (701) 123-45-67"``; None for anything else.
    """
    text = value.strip()
    if not _ALLOWED.match(text):
        return None
    digits = _NOT_DIGIT.sub("", text)
    if text.startswith("+"):
        return f"+{digits}" if len(digits) == 11 and digits.startswith("7") else None
    if len(digits) == 11 and digits[0] in "78":
        return f"+7{digits[1:]}"
    if len(digits) == 10 and digits.startswith("7"):
        return f"+7{digits}"
    return None

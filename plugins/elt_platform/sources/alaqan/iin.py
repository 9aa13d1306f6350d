"""Kazakhstan IIN (ИИН) validation and masking; pure, no I/O.

Layout of the 12 digits (Government Decree No. 565 of 11 June 2003 and later amendments):

* digits 1-6: birth date ``YYMMDD``;
* digit 7: century and sex: 1/2 → 1800s, 3/4 → 1900s, 5/6 → 2000s (odd = male, even = female);
* digits 8-11: serial number;
* digit 12: check digit: ``sum(d_i * i for i in 1..11) % 11``; when that is 10, recompute with weights
  ``3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2``; when it is 10 again the number is never issued (invalid).

Decision on digit 7 = 0 (and 7-9): rejected as ``bad_century_digit``. The published rule lists 1-6 only;
reports of 0 for some foreigners could not be confirmed, so we keep the strict rule and let silver
decide what to do with such rows (they are kept in bronze either way). Birth dates must exist on the
calendar (no ``00`` day or month).

The bronze loader does NOT call :func:`iin_problem`: the check digit is validated in silver (dbt).
This module is the reference implementation for tests, docs and the sandbox generator.
"""

import re
from datetime import date

IIN_LENGTH = 12

_TWELVE_DIGITS = re.compile(r"[0-9]{12}")
_WEIGHTS_FIRST = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
_WEIGHTS_SECOND = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)

#: Digit 7 → first year of the birth century.
CENTURY_BY_DIGIT = {1: 1800, 2: 1800, 3: 1900, 4: 1900, 5: 2000, 6: 2000}

#: Every reason :func:`iin_problem` can return, in the order the checks run.
IIN_PROBLEMS = ("not_12_digits", "bad_century_digit", "bad_birth_date", "bad_check_digit")


def check_digit(first_eleven: str) -> int | None:
    """Compute the IIN check digit for the first 11 digits.

    Args:
        first_eleven: Exactly 11 ASCII digits.

    Returns:
        The check digit 0-9, or None when both weightings give 10 (such a number is never issued).

    Raises:
        ValueError: If ``first_eleven`` is not 11 ASCII digits.
    """
    if len(first_eleven) != IIN_LENGTH - 1 or not first_eleven.isascii() or not first_eleven.isdigit():
        raise ValueError(f"expected 11 ASCII digits, got {len(first_eleven)} characters")
    digits = [ord(c) - 48 for c in first_eleven]
    for weights in (_WEIGHTS_FIRST, _WEIGHTS_SECOND):
        remainder = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
        if remainder != 10:
            return remainder
    return None


def birth_date(iin: str) -> date | None:
    """Return the birth date encoded in an IIN, or None when digits 1-7 do not form one.

    Args:
        iin: A 12-digit IIN string.

    Returns:
        The birth date, or None for an unknown century digit or an impossible date.
    """
    century = CENTURY_BY_DIGIT.get(ord(iin[6]) - 48) if len(iin) == IIN_LENGTH else None
    if century is None:
        return None
    try:
        return date(century + int(iin[0:2]), int(iin[2:4]), int(iin[4:6]))
    except ValueError:
        return None


def iin_problem(iin: object) -> str | None:
    """Say what is wrong with an IIN, if anything.

    Args:
        iin: The candidate, normally a string (anything else is ``not_12_digits``).

    Returns:
        None for a valid IIN, otherwise the first failing check, one of :data:`IIN_PROBLEMS`.
    """
    if not isinstance(iin, str) or not _TWELVE_DIGITS.fullmatch(iin):
        return "not_12_digits"
    if ord(iin[6]) - 48 not in CENTURY_BY_DIGIT:
        return "bad_century_digit"
    if birth_date(iin) is None:
        return "bad_birth_date"
    if check_digit(iin[:11]) != ord(iin[11]) - 48:
        return "bad_check_digit"
    return None


def mask_iin(iin: object) -> str:
    """Mask an IIN for logs and error messages, keeping 4 leading and 2 trailing characters.

    Args:
        iin: The value to mask (non-strings are converted with ``str``).

    Returns:
        E.g. ``"6507******49"`` for ``"650727300949"``; values shorter than 8 characters are fully masked.
    """
    text = str(iin)
    if len(text) < 8:
        return "*" * len(text)
    return text[:4] + "*" * (len(text) - 6) + text[-2:]

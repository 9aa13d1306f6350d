"""A patient's full name split as a CRM contact takes it.

iDent writes ``patient_full_name`` as "last first middle" (``Сейткали Айгерим Муратовна``); both CRMs keep
the parts in separate contact fields (Bitrix24 ``LAST_NAME``/``NAME``/``SECOND_NAME``, amoCRM
``last_name``/``first_name``, the middle name after the first name).
"""

from typing import NamedTuple


class FullName(NamedTuple):
    """The parts of a full name; empty strings for the parts it lacks."""

    last: str
    first: str
    middle: str


def split_full_name(text: str | None) -> FullName:
    """Split a full name written "last first middle…".

    A single word is taken as the first name (``Айгерим`` → first ``Айгерим``, no last name); words after
    the third belong to the middle name (``Кызы`` in ``Алиева Лейла Гасан Кызы``).

    Args:
        text: The full name (None or blank: no name).

    Returns:
        Its parts, e.g. ``FullName("Сейткали", "Айгерим", "Муратовна")``.
    """
    parts = (text or "").split()
    if len(parts) < 2:
        return FullName("", parts[0] if parts else "", "")
    return FullName(parts[0], parts[1], " ".join(parts[2:]))

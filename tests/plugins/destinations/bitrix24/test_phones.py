"""Phones sent to the duplicate search: the forms the dbt macro phone_e164 accepts, and nothing else."""

import pytest

from elt_platform.destinations.bitrix24.phones import e164


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+77011234567", "+77011234567"),
        ("+7 (701) 123-45-67", "+77011234567"),
        ("8 701 123 45 67", "+77011234567"),
        ("87011234567", "+77011234567"),
        ("77011234567", "+77011234567"),
        ("7011234567", "+77011234567"),
        (" 8.701.123.45.67 ", "+77011234567"),
        ("+8 701 123 45 67", None),
        ("+1 415 555 2671", None),
        ("123-45", None),
        ("8701123456", None),
        ("tel: 87011234567", None),
        ("", None),
    ],
)
def test_e164(value: str, expected: str | None) -> None:
    assert e164(value) == expected

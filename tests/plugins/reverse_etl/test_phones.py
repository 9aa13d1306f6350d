"""Phones the destinations send and compare: the forms the dbt macro phone_e164 accepts, and nothing else."""

import pytest

from elt_platform.reverse_etl.phones import e164


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+77011234567", "+77011234567"),
        ("+7 (701) 123-45-67", "+77011234567"),
        ("8 701 123 45 67", "+77011234567"),  # domestic 8-prefix
        ("87011234567", "+77011234567"),
        ("77011234567", "+77011234567"),
        ("7011234567", "+77011234567"),  # 10 digits: a Kazakh number without the country code
        (" 8.701.123.45.67 ", "+77011234567"),
        ("+8 701 123 45 67", None),
        ("+1 415 555 2671", None),
        ("9161234567", None),  # 10 digits not starting with 7
        ("123-45", None),
        ("8701123456", None),
        ("tel: 87011234567", None),
        ("Иванова", None),
        ("", None),
    ],
)
def test_e164(value: str, expected: str | None) -> None:
    assert e164(value) == expected

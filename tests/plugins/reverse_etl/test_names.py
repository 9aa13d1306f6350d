"""Full names split as both CRMs' contacts take them."""

import pytest

from elt_platform.reverse_etl.names import FullName, split_full_name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Сейткали Айгерим Муратовна", FullName("Сейткали", "Айгерим", "Муратовна")),
        ("  Сейткали   Айгерим ", FullName("Сейткали", "Айгерим", "")),
        ("Алиева Лейла Гасан Кызы", FullName("Алиева", "Лейла", "Гасан Кызы")),
        ("Айгерим", FullName("", "Айгерим", "")),
        ("", FullName("", "", "")),
        (None, FullName("", "", "")),
    ],
)
def test_split_full_name(text: str | None, expected: FullName) -> None:
    assert split_full_name(text) == expected

"""Watermarks: absent until set, then the last value written."""

from __future__ import annotations

from elt_platform.state.store import StateStore
from elt_platform.state.watermarks import get_watermark, list_watermarks, set_watermark


def test_watermark_is_none_until_set_then_last_value_wins(store: StateStore) -> None:
    assert get_watermark(store, "amocrm:leads") is None

    set_watermark(store, "amocrm:leads", "2025-03-01T00:00:00Z")
    set_watermark(store, "amocrm:leads", "2025-03-02T00:00:00Z")
    set_watermark(store, "amocrm:contacts", "cursor-17")

    assert get_watermark(store, "amocrm:leads") == "2025-03-02T00:00:00Z"
    assert [(row["key"], row["value"]) for row in list_watermarks(store)] == [
        ("amocrm:contacts", "cursor-17"),
        ("amocrm:leads", "2025-03-02T00:00:00Z"),
    ]

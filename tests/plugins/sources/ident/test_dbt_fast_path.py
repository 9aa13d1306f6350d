"""When ``transform_clinic`` may take the incremental fast path: ``full_rebuild_reason``, fake catalog."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from pyiceberg.exceptions import NoSuchTableError

from elt_platform.sources.ident.dbt import (
    FULL_BUILD_MARKER,
    INCREMENTAL_TABLES,
    MICRO_BATCH_TABLE,
    full_rebuild_reason,
)
from elt_platform.sources.ident.pipeline import SOURCE

BUILT = datetime(2025, 3, 10, 4, 0, tzinfo=UTC)


@dataclass
class _Snapshot:
    timestamp_ms: int


@dataclass
class _Schema:
    column_names: list[str]


@dataclass
class _Table:
    committed: datetime | None
    columns: list[str] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)

    def current_snapshot(self):
        return None if self.committed is None else _Snapshot(int(self.committed.timestamp() * 1000))

    def schema(self):
        return _Schema(self.columns)


class _Catalog:
    def __init__(self, tables: dict[str, _Table]) -> None:
        self.tables = tables

    def load_table(self, name: str) -> _Table:
        if name not in self.tables:
            raise NoSuchTableError(name)
        return self.tables[name]


def _lakehouse() -> dict[str, _Table]:
    """A lakehouse right after a full rebuild at BUILT, then a micro-batch."""
    tables = {name: _Table(BUILT - timedelta(hours=1)) for name in SOURCE.bronze_tables}
    tables[MICRO_BATCH_TABLE] = _Table(BUILT + timedelta(minutes=5))
    tables[FULL_BUILD_MARKER] = _Table(BUILT)
    for name, mark in INCREMENTAL_TABLES.items():
        kind, key = mark.split(":", 1)
        tables[name] = (
            _Table(BUILT, properties={key: "2025-03-10 03:59:00"})
            if kind == "property"
            else _Table(BUILT, columns=["source_db", key])
        )
    return tables


def _reason(tables: dict[str, _Table], now: datetime = BUILT + timedelta(minutes=6)) -> str | None:
    return full_rebuild_reason(_Catalog(tables), now=now)


def test_a_micro_batch_after_a_full_rebuild_takes_the_fast_path():
    assert _reason(_lakehouse()) is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda t: t.pop(FULL_BUILD_MARKER), "no full build yet"),
        (lambda t: t.pop("outbound.amocrm_deals"), "no full build yet"),
        (lambda t: t["gold.ident_receptions"].properties.clear(), "gold.ident_receptions has no high-water"),
        (lambda t: t["silver.ident_receptions"].columns.pop(), "silver.ident_receptions has no high-water"),
        (
            lambda t: setattr(t["bronze.ident_persons"], "committed", BUILT + timedelta(minutes=1)),
            "bronze.ident_persons changed since the last full build",
        ),
    ],
    ids=["never-built", "table-missing", "no-property", "no-column", "daily-load"],
)
def test_a_full_rebuild_is_needed(change, expected):
    tables = _lakehouse()
    change(tables)
    assert (_reason(tables) or "").startswith(expected)


def test_a_day_without_a_full_rebuild_forces_one():
    assert (_reason(_lakehouse(), now=BUILT + timedelta(hours=27)) or "").startswith("the last full build is")

"""Incremental watermarks: the last cursor value a source was extracted up to, by key.

Keys are free text chosen by the source (e.g. ``"amocrm:leads:updated_at"``) and values are strings
(an ISO timestamp, an id, an opaque API cursor) so no source has to fit a column type.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from elt_platform.state.schema import watermarks
from elt_platform.state.store import StateStore, utcnow


def get_watermark(store: StateStore, key: str) -> str | None:
    """The stored value of ``key``.

    Args:
        store: the state store.
        key: the watermark's name.

    Returns:
        The value, or ``None`` if it was never set.
    """
    with store.transaction(write=False) as conn:
        return conn.execute(select(watermarks.c.value).where(watermarks.c.key == key)).scalar_one_or_none()


def set_watermark(store: StateStore, key: str, value: str) -> None:
    """Insert or overwrite ``key`` (stamping ``updated_at``).

    Args:
        store: the state store.
        key: the watermark's name.
        value: the new value; callers advance it only after the data up to it is committed.
    """
    with store.transaction() as conn:
        store.upsert(conn, watermarks, {"key": key, "value": value, "updated_at": utcnow()})


def list_watermarks(store: StateStore) -> list[dict[str, Any]]:
    """Every watermark (``key``, ``value``, ``updated_at``), by key."""
    with store.transaction(write=False) as conn:
        rows = conn.execute(select(watermarks).order_by(watermarks.c.key)).all()
    return [dict(row._mapping) for row in rows]

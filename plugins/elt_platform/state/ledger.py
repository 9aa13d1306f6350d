"""The transform ledger: which bronze slices a domain's transformation still has to process.

An extract run records each slice it wrote (``loaded``); the bronze quality gate promotes the slices it
passed (``pending``); a transform run claims every pending slice of its domain (``claimed``), and
marks them ``done`` when it succeeds or releases them back to ``pending`` when it fails cleanly.
A run killed mid-way leaves its claims behind; the next run claims them again, so nothing is lost.

One row per (domain, source, slice): a source feeding two domains is recorded once for each, and each
domain consumes it on its own schedule. Claiming does not exclude a concurrent run of the same domain
(a stale claim must stay claimable): run one transformation per domain at a time (``max_active_runs=1``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, select, update

from elt_platform.state.schema import transform_ledger
from elt_platform.state.store import StateStore, utcnow

LOADED = "loaded"
PENDING = "pending"
CLAIMED = "claimed"
DONE = "done"
#: Statuses a slice may be recorded with (``claimed`` only ever comes from :meth:`TransformLedger.claim`).
RECORDABLE = (LOADED, PENDING, DONE)


@dataclass(frozen=True)
class LedgerEntry:
    """One slice in the ledger.

    Attributes:
        domain: the transformation that consumes the slice.
        source: the bronze source that produced it.
        slice_key: the slice's identity within the source (a day, a package id).
        start: first day covered, if the slice is an interval.
        end: end of the interval (as the extract defined it), if any.
        status: ``loaded``, ``pending``, ``claimed`` or ``done``.
        run_id: the run that recorded (loaded) the slice.
        claimed_by: the transform run holding the claim, if claimed.
        updated_at: last change (UTC).
    """

    domain: str
    source: str
    slice_key: str
    start: date | None
    end: date | None
    status: str
    run_id: str
    claimed_by: str | None
    updated_at: datetime


class TransformLedger:
    """The ledger of one domain.

    Args:
        store: the state store.
        domain: the transformation (e.g. ``"alaqan"``) whose slices this ledger tracks.
    """

    def __init__(self, store: StateStore, domain: str) -> None:
        self.store = store
        self.domain = domain

    def __repr__(self) -> str:
        return f"TransformLedger({self.domain!r})"

    def record(
        self,
        source: str,
        slice_key: str,
        *,
        start: date | None = None,
        end: date | None = None,
        run_id: str,
        status: str = LOADED,
    ) -> None:
        """Record that ``run_id`` (re)wrote a slice; a rerun resets it to ``status`` and drops any claim.

        Args:
            source: the bronze source.
            slice_key: the slice's identity within the source.
            start: first day covered, if any.
            end: end of the interval, if any.
            run_id: the extract run that wrote it.
            status: ``loaded`` (awaits the quality gate), ``pending`` (no gate) or ``done``.

        Raises:
            ValueError: ``status`` is not one of :data:`RECORDABLE`.
        """
        if status not in RECORDABLE:
            raise ValueError(f"a slice is recorded as one of {RECORDABLE}, not {status!r}")
        now = utcnow()
        with self.store.transaction() as conn:
            self.store.upsert(
                conn,
                transform_ledger,
                {
                    "domain": self.domain,
                    "source": source,
                    "slice_key": slice_key,
                    "slice_start": start,
                    "slice_end": end,
                    "status": status,
                    "run_id": run_id,
                    "claimed_by": None,
                    "claimed_at": None,
                    "done_at": now if status == DONE else None,
                    "updated_at": now,
                },
            )

    def mark_ready(self, source: str, slice_keys: Iterable[str], run_id: str) -> int:
        """Promote slices that passed the bronze quality gate from ``loaded`` to ``pending``.

        Only slices last recorded by ``run_id`` move: if another run has rewritten a slice since, the
        gate's verdict was about data that no longer exists.

        Args:
            source: the bronze source.
            slice_keys: the slices that passed.
            run_id: the run that loaded them (the same id given to :meth:`record`).

        Returns:
            How many slices became pending.
        """
        keys = list(slice_keys)
        if not keys:
            return 0
        return self._set(
            transform_ledger.c.source == source,
            transform_ledger.c.slice_key.in_(keys),
            transform_ledger.c.run_id == run_id,
            transform_ledger.c.status == LOADED,
            status=PENDING,
            updated_at=utcnow(),
        )

    def claim(self, run_id: str) -> list[LedgerEntry]:
        """Claim every pending slice of the domain, and every slice an earlier run claimed but never finished.

        Args:
            run_id: the transform run.

        Returns:
            The claimed entries, ordered by (start, slice_key); slices without a start come first.
        """
        now = utcnow()
        with self.store.transaction() as conn:
            conn.execute(
                update(transform_ledger)
                .where(
                    transform_ledger.c.domain == self.domain,
                    transform_ledger.c.status.in_((PENDING, CLAIMED)),
                )
                .values(status=CLAIMED, claimed_by=run_id, claimed_at=now, updated_at=now)
            )
            rows = conn.execute(
                select(transform_ledger).where(transform_ledger.c.domain == self.domain, *_claimed_by(run_id))
            ).all()
        return _ordered(rows)

    def complete(self, run_id: str) -> int:
        """Mark the slices ``run_id`` claimed as ``done``.

        Returns:
            How many slices were completed (slices re-recorded since the claim are not among them).
        """
        now = utcnow()
        return self._set(*_claimed_by(run_id), status=DONE, done_at=now, updated_at=now)

    def release(self, run_id: str) -> int:
        """Give the slices ``run_id`` claimed back to ``pending`` (the transformation failed).

        Returns:
            How many slices were released.
        """
        return self._set(
            *_claimed_by(run_id), status=PENDING, claimed_by=None, claimed_at=None, updated_at=utcnow()
        )

    def pending(self) -> list[LedgerEntry]:
        """Slices still to transform: ``pending`` and ``claimed``, ordered as :meth:`claim` returns them."""
        return self.entries(statuses=(PENDING, CLAIMED))

    def entries(self, statuses: Iterable[str] | None = None) -> list[LedgerEntry]:
        """The domain's slices, optionally only those in ``statuses``, ordered by (start, slice_key)."""
        query = select(transform_ledger).where(transform_ledger.c.domain == self.domain)
        if statuses is not None:
            query = query.where(transform_ledger.c.status.in_(tuple(statuses)))
        with self.store.transaction(write=False) as conn:
            rows = conn.execute(query).all()
        return _ordered(rows)

    def _set(self, *where: ColumnElement[bool], **values: Any) -> int:
        """Set ``values`` on the domain's rows matching ``where``, in one transaction; the rows changed."""
        with self.store.transaction() as conn:
            result = conn.execute(
                update(transform_ledger)
                .where(transform_ledger.c.domain == self.domain, *where)
                .values(**values)
            )
        return result.rowcount


def _claimed_by(run_id: str) -> tuple[ColumnElement[bool], ...]:
    return transform_ledger.c.status == CLAIMED, transform_ledger.c.claimed_by == run_id


def list_ledger(store: StateStore, domain: str | None = None) -> list[LedgerEntry]:
    """Every ledger entry, or one domain's, ordered by domain, source, then (start, slice_key).

    Args:
        store: the state store.
        domain: only this domain's entries.

    Returns:
        The entries.
    """
    query = select(transform_ledger)
    if domain is not None:
        query = query.where(transform_ledger.c.domain == domain)
    with store.transaction(write=False) as conn:
        rows = conn.execute(query).all()
    entries = _ordered(rows)
    return sorted(entries, key=lambda entry: (entry.domain, entry.source))


def _ordered(rows) -> list[LedgerEntry]:
    # Sorted here rather than in SQL: NULL ordering differs between SQLite and Postgres.
    entries = [
        LedgerEntry(
            domain=row.domain,
            source=row.source,
            slice_key=row.slice_key,
            start=row.slice_start,
            end=row.slice_end,
            status=row.status,
            run_id=row.run_id,
            claimed_by=row.claimed_by,
            updated_at=row.updated_at,
        )
        for row in rows
    ]
    return sorted(
        entries, key=lambda entry: (entry.start is not None, entry.start or date.min, entry.slice_key)
    )

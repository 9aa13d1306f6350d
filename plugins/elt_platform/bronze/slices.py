"""The bronze load loop of an API source: fetch slices → land raw → parse → replace slices.

A slice is one value of the target table's slice column (a day for an interval source) and the unit
of idempotency: its raw response is fetched, landed (compressed, content-addressed, *before* parsing,
so an unusable body stays for inspection), parsed into rows and quarantined records, and the rows
replace exactly that slice of the table (the quarantined records the same slice of the quarantine
table). Slices are:

* fetched by a small thread pool, a few ahead of the one being parsed, and yielded in order (a
  failure surfaces at its slice); landing runs in the fetch threads too (gzip releases the GIL);
* converted to Arrow at once (:func:`~elt_platform.bronze.arrow.records_to_arrow`): keeping a chunk
  of Python dicts alive would cost memory and GC time;
* committed N at a time (main and quarantine table together, through
  :class:`~elt_platform.bronze.transaction.SliceTransaction`): an Iceberg commit costs 70–190 ms and
  grows with snapshot count, so a year of history must not commit per day.

A failing slice stops the load with :class:`SliceError` naming it; chunks committed before it stay
(rerunning the interval replaces them again, nothing is duplicated).

Quarantined records carry a ``reason`` of the form ``"<code>: <detail>"``; the summary counts codes.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, TypeVar

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from elt_platform.bronze.arrow import records_to_arrow
from elt_platform.bronze.transaction import SliceTransaction
from elt_platform.iceberg.tables import TableSpec
from elt_platform.iceberg.writer import CommitInfo, ensure_table
from elt_platform.landing import land

log = logging.getLogger(__name__)

S = TypeVar("S")
R = TypeVar("R")


class ParsedSlice(Protocol):
    """What a parse callable returns for one slice (e.g. Alaqan's ``ParsedDay``)."""

    @property
    def rows(self) -> Sequence[Mapping[str, Any]]: ...

    @property
    def quarantined(self) -> Sequence[Mapping[str, Any]]: ...


class SliceError(RuntimeError):
    """One slice could not be fetched or parsed; the load stopped there.

    Attributes:
        slice: The slice value.
        committed: Slices committed before the failure (they stay in bronze).
    """

    def __init__(self, message: str, *, slice: object, committed: int) -> None:
        super().__init__(message)
        self.slice = slice
        self.committed = committed


@dataclass
class SliceLoadSummary:
    """What a slice load wrote, for logs, task return values and asset event extras."""

    slices: int = 0
    rows: int = 0
    quarantined: int = 0
    commits: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    batch_id: str | None = None


@dataclass
class _Chunk:
    """Slices parsed since the last commit, as Arrow, and where their raw responses were landed."""

    loaded_at: datetime
    slices: list[Any] = field(default_factory=list)
    uris: dict[Any, str] = field(default_factory=dict)
    rows: list[pa.Table] = field(default_factory=list)
    quarantined: list[pa.Table] = field(default_factory=list)

    def add(self, item: Any, uri: str, rows: pa.Table, quarantined: pa.Table | None) -> None:
        self.slices.append(item)
        self.uris[item] = uri
        self.rows.append(rows)
        if quarantined is not None:
            self.quarantined.append(quarantined)


def days(start: date, end: date) -> list[date]:
    """Days of the half-open interval ``[start, end)``: the slices of an interval source.

    Raises:
        ValueError: ``end`` is before ``start``.
    """
    if end < start:
        raise ValueError(f"interval end {end} is before its start {start}")
    return [start + timedelta(days=n) for n in range((end - start).days)]


def fetch_in_order(
    fetch: Callable[[S], R], items: Iterable[S], *, workers: int = 4, ahead: int | None = None
) -> Generator[tuple[S, Future[R]], None, None]:
    """Run ``fetch`` over ``items`` in a thread pool and yield them in order.

    At most ``ahead`` items (default twice ``workers``) are submitted beyond the one the caller is
    working on, which bounds the bodies held in memory. Each item comes with its future:
    ``future.result()`` returns the value or raises that item's error, so the caller knows which item
    failed. Closing the iterator cancels what has not started.
    """
    workers = max(1, workers)
    ahead = max(ahead or 2 * workers, 1)
    remaining = iter(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bronze-fetch") as pool:
        pending: deque[tuple[S, Future[R]]] = deque()
        try:
            for item in remaining:
                pending.append((item, pool.submit(fetch, item)))
                if len(pending) >= ahead:
                    break
            while pending:
                item, future = pending.popleft()
                for following in remaining:
                    pending.append((following, pool.submit(fetch, following)))
                    break
                yield item, future
        finally:
            for _, future in pending:
                future.cancel()


def _reason_code(record: Mapping[str, Any]) -> str:
    return str(record.get("reason") or "").split(":", 1)[0]


def load_slices(
    slices: Sequence[S],
    *,
    fetch: Callable[[S], bytes],
    parse: Callable[[S, bytes], ParsedSlice],
    landing_key: Callable[[S], str],
    table: TableSpec,
    commit: CommitInfo,
    catalog: Catalog,
    quarantine: TableSpec | None = None,
    slice_column: str | None = None,
    slices_per_commit: int = 31,
    workers: int = 4,
    constants: Callable[[datetime], Mapping[str, Any]] | None = None,
    landing_extension: str = "json",
) -> SliceLoadSummary:
    """Load ``slices`` into ``table`` (and ``quarantine``), replacing each slice.

    Args:
        slices: Values of the slice column to load, in order (e.g. :func:`days`).
        fetch: Returns a slice's raw response body (runs in a pool thread).
        parse: ``(slice, body) -> ParsedSlice``: rows and quarantined records (pure; raises on a
            body unusable as a whole).
        landing_key: A slice's path under ``<landing>/<source>/`` (e.g. ``byDate/visit_date=2025-03-03``).
        table: The main table's declaration.
        commit: Lineage of the load (run id, source, interval): its ``_batch_id`` and snapshot
            properties; ``_loaded_at`` and ``_source_uri`` are set per commit by this loop.
        catalog: The lakehouse catalog.
        quarantine: The quarantine table's declaration (None: parse never quarantines).
        slice_column: Column holding the slice value in both tables (default ``table.slice_column``);
            filled with the slice for every row.
        slices_per_commit: Slices written per Iceberg commit.
        workers: Concurrent fetches.
        constants: Commit time → further constant columns (a spec's own load-time columns).
        landing_extension: File type of the landed bodies.

    Returns:
        Counts of what was written.

    Raises:
        SliceError: A slice's fetch, parse or conversion failed, or it quarantined records with no
            quarantine table (chunks committed before it stay; the cause is chained).
        ValueError: No slice column given or declared.
    """
    column = slice_column or table.slice_column
    if column is None:
        raise ValueError(f"{table.identifier}: no slice column given or declared")
    targets = [ensure_table(catalog, table)]
    if quarantine is not None:
        targets.append(ensure_table(catalog, quarantine))
    source = commit.source
    summary = SliceLoadSummary(batch_id=commit.batch)
    log.info("%s: loading %d slice(s) of %s as run %s", source, len(slices), column, commit.run_id)

    def fetch_and_land(item: S) -> tuple[bytes, str]:
        body = fetch(item)
        return body, land(body, source=source, key=landing_key(item), extension=landing_extension)

    chunk: _Chunk | None = None
    with closing(fetch_in_order(fetch_and_land, slices, workers=workers)) as fetched:
        for item, future in fetched:
            chunk = chunk or _Chunk(loaded_at=datetime.now(UTC))
            try:
                body, uri = future.result()
                parsed = parse(item, body)
                fixed = {**(constants(chunk.loaded_at) if constants else {}), column: item}
                rows = records_to_arrow(parsed.rows, table, fixed)
                if parsed.quarantined and quarantine is None:
                    raise ValueError(f"{len(parsed.quarantined)} quarantined record(s), no quarantine table")
                rejected = records_to_arrow(parsed.quarantined, quarantine, fixed) if quarantine else None
            except Exception as exc:
                committed = summary.slices - len(chunk.slices)
                raise SliceError(
                    f"{source} slice {item}: {type(exc).__name__}: {exc} "
                    f"({committed} earlier slice(s) committed; rerun to finish)",
                    slice=item,
                    committed=committed,
                ) from exc
            chunk.add(item, uri, rows, rejected)
            for record in parsed.quarantined:
                code = _reason_code(record)
                summary.quarantine_reasons[code] = summary.quarantine_reasons.get(code, 0) + 1
            summary.slices += 1
            log.info(
                "%s %s: %d rows, %d quarantined (%d/%d slices)",
                source,
                item,
                len(parsed.rows),
                len(parsed.quarantined),
                summary.slices,
                len(slices),
            )
            if len(chunk.slices) >= slices_per_commit or summary.slices == len(slices):
                _commit_chunk(chunk, targets, column=column, commit=commit, summary=summary)
                chunk = None
    log.info(
        "%s: loaded %d rows over %d slice(s), %d quarantined %s",
        source,
        summary.rows,
        summary.slices,
        summary.quarantined,
        summary.quarantine_reasons or "",
    )
    return summary


def _commit_chunk(
    chunk: _Chunk, targets: list[Table], *, column: str, commit: CommitInfo, summary: SliceLoadSummary
) -> None:
    """Replace the chunk's slices in the main (and quarantine) table, both or neither."""
    lineage = replace(commit, loaded_at=chunk.loaded_at, source_uri=chunk.uris)
    parts = [chunk.rows, chunk.quarantined][: len(targets)]
    with SliceTransaction(column=column, values=chunk.slices, commit=lineage) as tx:
        written = [
            tx.replace(target, pa.concat_tables(data)) for target, data in zip(targets, parts, strict=True)
        ]
    summary.rows += written[0]
    summary.quarantined += sum(written[1:])
    summary.commits += len(targets)


__all__ = ["ParsedSlice", "SliceError", "SliceLoadSummary", "days", "fetch_in_order", "load_slices"]

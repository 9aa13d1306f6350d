"""Stage a CommerceML package: parse every file into one Parquet file per bronze table, nothing committed.

Staging is the first half of an atomic package load (the loader commits the staged tables
afterwards): a malformed file anywhere in the package fails here, before any table is touched.
Records stream from :func:`~elt_platform.sources.commerceml.package.parse_package` in dependency
order; each is checked against the references known so far (:mod:`.rules`), turned into a row of its
table's Arrow schema (lists and dicts as JSON strings) and buffered; buffers are flushed to Parquet
every ``batch_size`` rows, so memory is bounded whatever the package size.

No Iceberg, no Airflow: pyarrow and the parser only.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from elt_platform.iceberg.tables import TableSpec
from elt_platform.sources.commerceml.package import Manifest, parse_package
from elt_platform.sources.commerceml.rules import References, check
from elt_platform.sources.commerceml.settings import BATCH_SIZE

# Bronze column ← parser field, where the names differ.
_RENAMED = {"source_line": "sourceline"}
# Columns the stager fills itself, not from the record.
_COMPUTED = frozenset({"package_id", "record_no", "_issues", "_loaded_at", "_run_id"})


@dataclass
class StagedPackage:
    """What staging produced.

    Attributes:
        directory: Where the Parquet files are (removed by the caller).
        paths: Entity → staged Parquet file (only entities with rows).
        counts: Entity → rows staged.
        skipped: Entity → records parsed but not staged (outside the requested entities).
        issues: Entity → reason code → rows carrying it.
        flagged: Entity → rows with at least one issue.
        headers: The package's ``file_headers`` records (one per XML file).
    """

    directory: Path
    paths: dict[str, Path] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    issues: dict[str, Counter[str]] = field(default_factory=dict)
    flagged: Counter[str] = field(default_factory=Counter)
    headers: list[dict[str, Any]] = field(default_factory=list)


def _cell(value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


def to_arrow(
    records: list[dict[str, Any]], spec: TableSpec, constants: Mapping[str, Any] | None = None
) -> pa.Table:
    """Rows in ``spec``'s Arrow schema: lists/dicts become JSON strings, constants fill whole columns.

    Args:
        records: Parser records (plus ``record_no``/``_issues`` set by the stager).
        spec: The bronze table declaration.
        constants: Column → one value for every row (``package_id``, ``_loaded_at``, ``_run_id``).

    Returns:
        A table with exactly the declared columns, in order.
    """
    constants = constants or {}
    schema = spec.arrow_schema()
    columns = []
    for f in schema:
        if f.name in constants:
            columns.append(pa.repeat(pa.scalar(constants[f.name], f.type), len(records)))
            continue
        key = _RENAMED.get(f.name, f.name)
        values = [r.get(key) for r in records]
        if pa.types.is_large_string(f.type) or pa.types.is_string(f.type):
            values = [_cell(v) for v in values]
        columns.append(pa.array(values, type=f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def unmapped_fields(entity: str, record: Mapping[str, Any], spec: TableSpec) -> set[str]:
    """Record fields with no column in ``spec`` (would be lost: a test keeps this empty)."""
    columns = {_RENAMED.get(c.name, c.name) for c in spec.columns if c.name not in _COMPUTED}
    return set(record) - columns


class _Sink:
    """Buffered Parquet writer for one entity."""

    def __init__(self, path: Path, spec: TableSpec, constants: Mapping[str, Any], batch_size: int) -> None:
        self.path = path
        self.spec = spec
        self.constants = constants
        self.batch_size = batch_size
        self.buffer: list[dict[str, Any]] = []
        self.writer: pq.ParquetWriter | None = None

    def add(self, record: dict[str, Any]) -> None:
        self.buffer.append(record)
        if len(self.buffer) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        table = to_arrow(self.buffer, self.spec, self.constants)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        self.writer.write_table(table)
        self.buffer = []

    def close(self) -> None:
        self.flush()
        if self.writer is not None:
            self.writer.close()


def stage_package(
    path: str | Path,
    manifest: Manifest,
    *,
    specs: Mapping[str, TableSpec],
    refs: References,
    directory: Path,
    loaded_at: datetime,
    run_id: str,
    batch_size: int = BATCH_SIZE,
) -> StagedPackage:
    """Parse the whole package into ``directory/<entity>.parquet``, checking rules on the way.

    Args:
        path: The package (directory, zip or single XML file).
        manifest: Its manifest (:func:`~elt_platform.sources.commerceml.package.build_manifest`).
        specs: Entity → bronze declaration, for the entities to stage; other entities are counted
            in :attr:`StagedPackage.skipped` only.
        refs: Ids known from bronze; the package's own declarations are added as they stream.
        directory: An empty directory for the Parquet files.
        loaded_at: Stamped on every row (``_loaded_at``).
        run_id: Stamped on every row (``_run_id``).
        batch_size: Rows per Parquet row group.

    Returns:
        Paths, counts, issue counts and file headers.

    Raises:
        CommerceMLSyntaxError: A file is malformed (message names file, line and element).
        CommerceMLUnsafeXMLError: A file declares a DOCTYPE/entities.
    """
    staged = StagedPackage(directory=directory)
    constants = {"package_id": manifest.package_id, "_loaded_at": loaded_at, "_run_id": run_id}
    sinks: dict[str, _Sink] = {}
    try:
        for entity, record in parse_package(path, manifest=manifest):
            if entity == "file_headers":
                staged.headers.append(record)
                continue
            refs.learn(entity, record)
            spec = specs.get(entity)
            if spec is None:
                staged.skipped[entity] += 1
                continue
            issues = check(entity, record, refs)
            staged.counts[entity] += 1
            record["record_no"] = staged.counts[entity]
            record["_issues"] = ";".join(issues) if issues else None
            if issues:
                staged.flagged[entity] += 1
                bucket = staged.issues.setdefault(entity, Counter())
                bucket.update(issues)
            sink = sinks.get(entity)
            if sink is None:
                sink = sinks[entity] = _Sink(directory / f"{entity}.parquet", spec, constants, batch_size)
            sink.add(record)
    finally:
        for sink in sinks.values():
            sink.close()
    staged.paths = {entity: sink.path for entity, sink in sinks.items() if sink.path.exists()}
    return staged


def read_staged(staged: StagedPackage, entity: str, spec: TableSpec) -> pa.Table:
    """The staged rows of one entity (an empty table in ``spec``'s schema when none)."""
    path = staged.paths.get(entity)
    if path is None:
        return spec.arrow_schema().empty_table()
    return pq.read_table(path, schema=spec.arrow_schema())


def header_summary(headers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-file facts from ``file_headers`` for the package journal (sections, record counts)."""
    return {
        h["source_file"]: {
            "sections": h.get("sections"),
            "record_counts": h.get("record_counts"),
            "exchange_id": h.get("exchange_id"),
        }
        for h in headers
    }


__all__ = ["StagedPackage", "header_summary", "read_staged", "stage_package", "to_arrow", "unmapped_fields"]

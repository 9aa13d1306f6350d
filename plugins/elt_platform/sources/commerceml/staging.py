"""Stage a CommerceML package: parse every file into one Parquet file per bronze table, nothing committed.

Staging is the first half of an atomic package load (the loader commits the staged tables
afterwards): a malformed file anywhere in the package fails here, before any table is touched.
Records stream from :func:`~elt_platform.sources.commerceml.package.parse_package` in dependency
order; each is checked against the references known so far (:mod:`.rules`) and buffered; buffers are
turned into their table's Arrow schema (:func:`~elt_platform.bronze.arrow.records_to_arrow`: lists and
dicts as JSON strings, lineage columns left to the writer) and flushed to Parquet every ``batch_size``
rows, so memory is bounded whatever the package size.

No Iceberg, no Airflow: pyarrow and the parser only.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from elt_platform.bronze.arrow import records_to_arrow
from elt_platform.iceberg.tables import TableSpec
from elt_platform.sources.commerceml.package import Manifest, parse_package
from elt_platform.sources.commerceml.rules import References, check
from elt_platform.sources.commerceml.settings import BATCH_SIZE

RECORD_KEYS = {"source_line": "sourceline"}
"""Bronze column → parser field, where the names differ."""


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
        table = records_to_arrow(self.buffer, self.spec, self.constants, keys=RECORD_KEYS)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        self.writer.write_table(table)
        self.buffer = []

    def close(self) -> None:
        self.flush()
        if self.writer is not None:
            self.writer.close()


def stage_package(
    path: str | os.PathLike[str],
    manifest: Manifest,
    *,
    specs: Mapping[str, TableSpec],
    refs: References,
    directory: Path,
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
        batch_size: Rows per Parquet row group.

    Returns:
        Paths, counts, issue counts and file headers.

    Raises:
        CommerceMLSyntaxError: A file is malformed (message names file, line and element).
        CommerceMLUnsafeXMLError: A file declares a DOCTYPE/entities.
    """
    staged = StagedPackage(directory=directory)
    constants = {"package_id": manifest.package_id}
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
    """The staged rows of one entity (an empty table in ``spec``'s schema when none), without lineage."""
    schema = spec.arrow_schema(lineage=False)
    path = staged.paths.get(entity)
    if path is None:
        return schema.empty_table()
    return pq.read_table(path, schema=schema)


__all__ = ["RECORD_KEYS", "StagedPackage", "read_staged", "stage_package"]

"""Table declarations from ``schemas/`` turned into Iceberg schemas, partition specs and Arrow schemas.

A YAML file under ``schemas/bronze/<source>/`` is the single description of a bronze table: the
writer creates the table from it, evolves it when a column is added, and builds Arrow batches in its
column order. Besides ``table``, ``columns`` and ``partition_by`` a declaration may name:

* ``slice_column``: the column a load replaces by (a day, a package id); the default slice column of
  :mod:`elt_platform.bronze.slices` and :mod:`elt_platform.bronze.transaction`. A table without one
  is replaced by its load batch, the ``_batch_id`` lineage column (:attr:`TableSpec.replace_column`);
* ``natural_key``: the columns that identify one source record. Bronze keeps duplicates (sources
  repeat records, every package is kept); silver deduplicates on this key, latest load first, and
  the silver quality suite of the same table checks it unique (``tests/plugins/iceberg`` holds them
  to the same columns).

Every bronze table also gets :data:`LINEAGE_COLUMNS`, appended here: a declaration never lists them,
and the writer (:func:`elt_platform.iceberg.writer.stamp_lineage`) fills them on every write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa
import yaml
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import (
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    IcebergType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestampType,
    TimestamptzType,
)

from elt_platform.config import REPO_ROOT

SCHEMAS_DIR = REPO_ROOT / "schemas"

_ICEBERG_TYPES: dict[str, IcebergType] = {
    "string": StringType(),
    "date": DateType(),
    "timestamp": TimestampType(),
    "timestamptz": TimestamptzType(),
    "int": IntegerType(),
    "long": LongType(),
    "double": DoubleType(),
    "boolean": BooleanType(),
}
_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.large_string(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "int": pa.int32(),
    "long": pa.int64(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
}


class TableSpecError(ValueError):
    """A file under ``schemas/`` does not describe a valid table."""


@dataclass(frozen=True)
class Column:
    """One declared column."""

    name: str
    type: str
    required: bool = False
    doc: str | None = None


LINEAGE_COLUMNS: tuple[Column, ...] = (
    Column("_run_id", "string", doc="Airflow run id (or CLI batch id) of the load that wrote the row."),
    Column("_loaded_at", "timestamptz", doc="When the row was written (UTC)."),
    Column(
        "_batch_id",
        "string",
        doc="Slice the row was written under: the data interval 'YYYY-MM-DD/YYYY-MM-DD' (half-open) "
        "for interval sources, the package id for file packages.",
    ),
    Column("_source_uri", "string", doc="Landing URI of the raw response, or the package's path/URI."),
)
"""Columns the writer stamps on every bronze table (declared here once, never in ``schemas/bronze``)."""

LINEAGE_NAMES = frozenset(c.name for c in LINEAGE_COLUMNS)
#: The lineage column holding a row's load batch (a data interval, a package id, a run's batch).
BATCH_COLUMN = "_batch_id"


@dataclass(frozen=True)
class TableSpec:
    """A bronze table as declared in ``schemas/``."""

    identifier: str
    columns: tuple[Column, ...]
    partition_by: tuple[str, ...] = ()
    description: str = ""
    slice_column: str | None = None
    natural_key: tuple[str, ...] = ()

    @property
    def namespace(self) -> str:
        return self.identifier.split(".", 1)[0]

    @property
    def replace_column(self) -> str:
        """The column a load replaces by: the declared slice column, else the load batch."""
        return self.slice_column or BATCH_COLUMN

    def iceberg_schema(self) -> Schema:
        """The Iceberg schema, field ids numbered from 1 in declaration order."""
        return Schema(
            *(
                NestedField(i, c.name, _iceberg_type(c.type), required=c.required, doc=c.doc)
                for i, c in enumerate(self.columns, start=1)
            )
        )

    def partition_spec(self) -> PartitionSpec:
        """Identity partitioning on the declared columns."""
        ids = {c.name: i for i, c in enumerate(self.columns, start=1)}
        return PartitionSpec(
            *(
                PartitionField(
                    source_id=ids[name], field_id=1000 + n, transform=IdentityTransform(), name=name
                )
                for n, name in enumerate(self.partition_by)
            )
        )

    def arrow_schema(self, *, lineage: bool = True) -> pa.Schema:
        """Arrow schema matching the table, for building write batches.

        Args:
            lineage: include :data:`LINEAGE_COLUMNS` (False: the columns a load supplies itself).
        """
        return pa.schema(
            [
                pa.field(c.name, _arrow_type(c.type), nullable=not c.required)
                for c in self.columns
                if lineage or c.name not in LINEAGE_NAMES
            ]
        )


_DECIMAL = re.compile(r"decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)")


def _iceberg_type(name: str) -> IcebergType:
    if match := _DECIMAL.fullmatch(name):
        return DecimalType(int(match[1]), int(match[2]))
    return _ICEBERG_TYPES[name]


def _arrow_type(name: str) -> pa.DataType:
    if match := _DECIMAL.fullmatch(name):
        return pa.decimal128(int(match[1]), int(match[2]))
    return _ARROW_TYPES[name]


def load_spec(relative_path: str, root: Path = SCHEMAS_DIR) -> TableSpec:
    """Read one declaration, e.g. ``load_spec("bronze/alaqan/visits.yaml")``.

    A declaration under ``bronze/`` gets :data:`LINEAGE_COLUMNS` appended.

    Raises:
        TableSpecError: unknown type, partition/slice/key column not declared, a bronze declaration
            listing a lineage column itself, or missing keys.
    """
    path = root / relative_path
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        columns = tuple(
            Column(c["name"], c["type"], bool(c.get("required", False)), c.get("doc")) for c in doc["columns"]
        )
        spec = TableSpec(
            identifier=doc["table"],
            columns=columns,
            partition_by=tuple(doc.get("partition_by", ())),
            description=doc.get("description", ""),
            slice_column=doc.get("slice_column"),
            natural_key=tuple(doc.get("natural_key", ())),
        )
    except (KeyError, TypeError) as exc:
        raise TableSpecError(f"{path}: missing or malformed key {exc}") from exc
    names = {c.name for c in columns}
    for column in columns:
        if column.type not in _ICEBERG_TYPES and not _DECIMAL.fullmatch(column.type):
            raise TableSpecError(f"{path}: column {column.name!r} has unknown type {column.type!r}")
    for role, declared in (
        ("partition column", spec.partition_by),
        ("slice column", (spec.slice_column,) if spec.slice_column else ()),
        ("natural key column", spec.natural_key),
    ):
        for name in declared:
            if name not in names:
                raise TableSpecError(f"{path}: {role} {name!r} is not declared")
    if Path(relative_path).parts[0] == "bronze":
        if lineage := sorted(names & LINEAGE_NAMES):
            raise TableSpecError(f"{path}: lineage columns {lineage} are added by the platform, remove them")
        spec = replace(spec, columns=(*columns, *LINEAGE_COLUMNS))
    return spec

"""The iDent manifest (``schemas/sources/ident.yaml``): databases, branches, tables — validated.

The manifest is the one description of what the extract reads. Everything else derives from it:
the T-SQL (:mod:`~elt_platform.sources.ident.queries`), the bronze declarations under
``schemas/bronze/ident/`` (:mod:`~elt_platform.sources.ident.declarations`) and the load plan.
A bad manifest fails with :class:`ManifestError`, one line naming the place and the problem.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from elt_platform.config import REPO_ROOT, is_time_zone

MANIFEST_PATH = REPO_ROOT / "schemas" / "sources" / "ident.yaml"

#: SQL Server type → bronze (Iceberg) type. ``datetime`` is local wall clock: a timestamp without zone.
#: decimal/money become decimal(28,10) (iDent prints scale 10): exact, no float rounding in sums.
BRONZE_TYPES: dict[str, str] = {
    "int": "long",
    "bigint": "long",
    "rowversion": "long",
    "bit": "boolean",
    "datetime": "timestamp",
    "date": "date",
    "decimal": "decimal(28, 10)",
    "nvarchar": "string",
}
SourceType = Literal["int", "bigint", "rowversion", "bit", "datetime", "date", "decimal", "nvarchar"]

_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
Identifier = Annotated[str, StringConstraints(pattern=_IDENTIFIER)]
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake(name: str) -> str:
    """Bronze name of a source identifier: ``ID_Patients`` → ``id_patients``."""
    return _CAMEL.sub("_", name).lower()


class ManifestError(ValueError):
    """The manifest is invalid (the message is one line: where and what)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Database(_Strict):
    """One clinic database: its Airflow connection and the time zone of its wall-clock values."""

    connection: Identifier
    timezone: str

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if not is_time_zone(value):
            raise ValueError(f"unknown time zone {value!r}")
        return value


class Branch(_Strict):
    """A branch (филиал): the database it lives in and its ``OwnCompanies`` ids there."""

    database: str
    own_companies: list[int] = Field(min_length=1)


class RowVersionTracking(_Strict):
    rowversion: Identifier


class AuditTracking(_Strict):
    audit: list[Identifier] = Field(min_length=1)


class Table(_Strict):
    """One source table: columns (source name → SQL Server type), key, change tracking, load mode."""

    key: list[Identifier] = Field(min_length=1)
    change_tracking: RowVersionTracking | AuditTracking | Literal["full"]
    load: Literal["incremental", "full"]
    columns: dict[Identifier, SourceType] = Field(min_length=1)
    partition_by: list[str] = Field(default_factory=lambda: ["extract_date"])
    reconcile: bool | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Table:
        missing = [k for k in self.key if k not in self.columns]
        if missing:
            raise ValueError(f"key columns {missing} are not among the columns")
        full = self.change_tracking == "full"
        if full != (self.load == "full"):
            raise ValueError(f"load {self.load!r} contradicts change_tracking {self.change_tracking!r}")
        tracked = self.tracking_columns
        if unknown := [c for c in tracked if c not in self.columns]:
            raise ValueError(f"change-tracking columns {unknown} are not among the columns")
        if isinstance(self.change_tracking, RowVersionTracking):
            if self.columns[self.change_tracking.rowversion] != "rowversion":
                raise ValueError(f"{self.change_tracking.rowversion} must have type rowversion")
        if isinstance(self.change_tracking, AuditTracking):
            if wrong := [c for c in tracked if self.columns[c] != "datetime"]:
                raise ValueError(f"audit columns {wrong} must have type datetime")
        snakes = [snake(c) for c in self.columns]
        if clash := sorted({s for s in snakes if snakes.count(s) > 1} | (set(snakes) & set(LOAD_COLUMNS))):
            raise ValueError(f"columns collide once snake_cased: {clash}")
        if bad := [p for p in self.partition_by if p not in (*snakes, *LOAD_COLUMNS)]:
            raise ValueError(f"partition columns {bad} are not bronze columns")
        return self

    @property
    def rowversion(self) -> str | None:
        """The rowversion column, if the table is tracked by one."""
        return (
            self.change_tracking.rowversion if isinstance(self.change_tracking, RowVersionTracking) else None
        )

    @property
    def audit(self) -> list[str]:
        """The audit (change time) columns, if the table is tracked by them."""
        return list(self.change_tracking.audit) if isinstance(self.change_tracking, AuditTracking) else []

    @property
    def tracking_columns(self) -> list[str]:
        return [self.rowversion] if self.rowversion else self.audit

    @property
    def reconciled(self) -> bool:
        """Whether hard deletes are looked for (default: incremental tables; full snapshots show them)."""
        return self.load == "incremental" if self.reconcile is None else self.reconcile


#: Columns every bronze table has besides the source's (before the writer's lineage columns).
LOAD_COLUMNS = ("source_db", "extract_date", "is_deleted")


class Manifest(_Strict):
    """The whole manifest."""

    source: Literal["ident"]
    schema_: Identifier = Field(alias="schema")
    chunk_rows: int = Field(gt=0, le=100_000)
    audit_overlap_minutes: int = Field(ge=0)
    databases: dict[str, Database] = Field(min_length=1)
    branches: dict[int, Branch] = Field(min_length=1)
    tables: dict[Identifier, Table] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> Manifest:
        if bad := [k for k in self.databases if not re.fullmatch(r"[1-9][0-9]*", k)]:
            raise ValueError(f"database keys must be positive numbers as strings, got {bad}")
        connections = [d.connection for d in self.databases.values()]
        if dup := sorted({c for c in connections if connections.count(c) > 1}):
            raise ValueError(f"databases share connections {dup}")
        seen: dict[tuple[str, int], int] = {}
        for number, branch in self.branches.items():
            if branch.database not in self.databases:
                raise ValueError(f"branch {number} names unknown database {branch.database!r}")
            for company in branch.own_companies:
                other = seen.setdefault((branch.database, company), number)
                if other != number:
                    raise ValueError(
                        f"OwnCompanies {company} of database {branch.database!r} "
                        f"is in branches {other} and {number}"
                    )
        names = [bronze_name(t) for t in self.tables]
        if dup := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"tables collide once snake_cased: {dup}")
        return self

    def branch_of(self, database: str, own_company: int) -> int | None:
        """The branch number of an ``OwnCompanies`` id in ``database`` (None if unmapped)."""
        for number, branch in self.branches.items():
            if branch.database == database and own_company in branch.own_companies:
                return number
        return None

    def branches_in(self, database: str) -> list[int]:
        """The branch numbers stored in ``database``."""
        return [n for n, b in self.branches.items() if b.database == database]


def bronze_name(table: str) -> str:
    """``OrderServiceRelation`` → ``order_service_relation`` (``bronze.ident_<that>``)."""
    return snake(table)


def bronze_identifier(table: str) -> str:
    """The bronze table of a source table: ``bronze.ident_receptions``."""
    return f"bronze.ident_{bronze_name(table)}"


def _location(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if not str(p).startswith(("function-after", "function-before"))]
    # Unions report the member tried ("RowVersionTracking"); keep the path readable.
    parts = [p for p in parts if p not in ("RowVersionTracking", "AuditTracking", "literal['full']")]
    return ".".join(parts) or "manifest"


def parse_manifest(document: object, *, origin: str = "manifest") -> Manifest:
    """Validate a parsed YAML document.

    Raises:
        ManifestError: One line: ``<origin>: <path>: <problem>`` (the first problem found).
    """
    if not isinstance(document, dict):
        raise ManifestError(f"{origin}: expected a mapping at the top level")
    try:
        return Manifest.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        message = str(error["msg"]).removeprefix("Value error, ")
        raise ManifestError(f"{origin}: {_location(error['loc'])}: {message}") from None


def load_manifest(path: Path | str = MANIFEST_PATH) -> Manifest:
    """Read and validate the manifest file.

    Raises:
        ManifestError: The file is not valid YAML or not a valid manifest (one line).
    """
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    return parse_manifest(document, origin=str(path))


__all__ = [
    "BRONZE_TYPES",
    "LOAD_COLUMNS",
    "Manifest",
    "ManifestError",
    "Table",
    "bronze_identifier",
    "bronze_name",
    "load_manifest",
    "parse_manifest",
    "snake",
]

"""Load one 1C exchange package into the ``bronze.onec_*`` Iceberg tables, atomically.

A package is all-or-nothing:

1. **Fingerprint** — :func:`~elt_platform.sources.commerceml.package.build_manifest` (files, sizes,
   sha256, roles, schema version, delta flag, ``package_id``). The journal row in
   ``bronze.onec_packages`` becomes ``loading``.
2. **Stage** — every file is parsed into one Parquet file per table in a temporary directory
   (:mod:`.staging`), with rule checks (:mod:`.rules`). A malformed file fails the package here,
   naming file, line and element, before any table is touched.
3. **Commit** — table by table, each commit replaces exactly the package's partition
   (``package_id``), so a replay of the same package converges to the same rows. The snapshot each
   table had before is remembered.
4. **Roll back on failure** — if any commit (or the final journal write) fails, every table already
   committed is set back to its pre-package snapshot (or, if another writer committed meanwhile,
   the package's slice is restored to what it held before), then the journal row becomes
   ``failed`` with the error (a failed *replay* of a loaded package leaves it ``loaded``: its previous
   rows are what bronze holds again). Retrying is loading the same package again.

The ``stocks`` mode is the fast path (``extract_onec_stocks``): it accepts only packages whose files
are prices/rests and writes only ``bronze.onec_prices`` and ``bronze.onec_stocks``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import EqualTo
from pyiceberg.table import Table

from elt_platform.config import PlatformConfig
from elt_platform.iceberg.catalog import load_catalog
from elt_platform.iceberg.tables import TableSpec, load_spec
from elt_platform.iceberg.writer import CommitInfo, ensure_table, replace_slice
from elt_platform.sources.commerceml.package import Manifest, build_manifest, package_fingerprint
from elt_platform.sources.commerceml.rules import References
from elt_platform.sources.commerceml.settings import (
    BATCH_SIZE,
    BRONZE_ENTITIES,
    MODES,
    PACKAGE_COLUMN,
    PACKAGES_SPEC,
    SOURCE,
    STOCK_ENTITIES,
    STOCK_ROLES,
    entity_spec,
)
from elt_platform.sources.commerceml.staging import StagedPackage, read_staged, stage_package, to_arrow

log = logging.getLogger(__name__)

# Bronze columns read back to know which ids earlier packages declared.
_REFERENCE_COLUMNS = {
    "groups": ("id",),
    "properties": ("id",),
    "price_types": ("id",),
    "warehouses": ("id",),
    "products": ("parent_id", "characteristic_id"),
    "offers": ("product_id", "characteristic_id"),
}


class PackageLoadError(RuntimeError):
    """A package could not be loaded; nothing of it is in bronze (its journal row says ``failed``).

    Attributes:
        package_id: The package's id (None if not even its files could be read).
        source: The path given.
        attempts: Load attempts of this package so far, this one included.
    """

    def __init__(self, message: str, *, package_id: str | None, source: str, attempts: int) -> None:
        super().__init__(message)
        self.package_id = package_id
        self.source = source
        self.attempts = attempts


class PackageModeError(ValueError):
    """The stocks fast path was given a package holding more than prices and rests."""


@dataclass(frozen=True)
class PackageCommit(CommitInfo):
    """Lineage of a package's commits: the writer's fields plus the package id."""

    package_id: str = ""

    def snapshot_properties(self) -> dict[str, str]:
        return {**super().snapshot_properties(), "elt.onec_package_id": self.package_id}


@dataclass
class PackageLoadResult:
    """What a package load did (the CLI prints it, the DAG returns it as XCom)."""

    package_id: str
    package_name: str
    source: str
    mode: str
    status: str
    is_full: bool
    contains_only_changes: bool | None
    schema_version: str | None
    counts: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    issues: dict[str, dict[str, int]] = field(default_factory=dict)
    flagged: dict[str, int] = field(default_factory=dict)
    snapshots: dict[str, int] = field(default_factory=dict)
    attempts: int = 1
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "package_id": self.package_id,
            "package_name": self.package_name,
            "source": self.source,
            "mode": self.mode,
            "status": self.status,
            "is_full": self.is_full,
            "contains_only_changes": self.contains_only_changes,
            "schema_version": self.schema_version,
            "counts": dict(self.counts),
            "skipped": dict(self.skipped),
            "issues": {k: dict(v) for k, v in self.issues.items()},
            "flagged": dict(self.flagged),
            "flagged_rows": sum(self.flagged.values()),
            "snapshots": dict(self.snapshots),
            "attempts": self.attempts,
            "seconds": round(self.seconds, 3),
        }


def package_kind(manifest: Manifest) -> str:
    """``stocks`` when every XML file is a prices/rests file (by name and content), else ``catalog``."""
    if manifest.files and all(set(f.roles) <= STOCK_ROLES for f in manifest.files):
        return "stocks"
    return "catalog"


def _entities(mode: str) -> tuple[str, ...]:
    if mode not in MODES:
        raise ValueError(f"unknown load mode {mode!r}; expected one of {MODES}")
    return STOCK_ENTITIES if mode == "stocks" else BRONZE_ENTITIES


def _parse_generated(values: Iterable[str | None]) -> datetime | None:
    """Latest ``ДатаФормирования`` (``2015-07-08T14:10:30``, sometimes date-only), as a naive datetime."""
    parsed = []
    for value in values:
        if not value:
            continue
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            log.warning("onec: unreadable ДатаФормирования %r ignored", value)
            continue
        parsed.append(moment.replace(tzinfo=None) if moment.tzinfo else moment)
    return max(parsed) if parsed else None


@functools.cache
def _spec(relative_path: str) -> TableSpec:
    return load_spec(relative_path)


def ensure_tables(catalog: Catalog, entities: Iterable[str] = BRONZE_ENTITIES) -> dict[str, Table]:
    """Create (or evolve) the journal and the entities' bronze tables; returns entity → table."""
    tables = {"packages": ensure_table(catalog, _spec(PACKAGES_SPEC))}
    for entity in entities:
        tables[entity] = ensure_table(catalog, _spec(entity_spec(entity)))
    return tables


def known_references(catalog: Catalog) -> References:
    """Ids bronze already holds (every loaded package): what a new package may reference."""
    refs = References()
    for entity, columns in _REFERENCE_COLUMNS.items():
        try:
            table = catalog.load_table(f"bronze.{SOURCE}_{entity}")
        except NoSuchTableError:
            continue
        if table.current_snapshot() is None:
            continue
        rows = table.scan(selected_fields=columns).to_arrow().to_pylist()
        if entity in ("groups", "properties", "price_types", "warehouses"):
            getattr(refs, entity).update(r["id"] for r in rows if r["id"] is not None)
        else:
            refs.learn_all(entity, rows)
    return refs


def journal_row(package_id: str, table: Table) -> dict[str, Any] | None:
    """The journal row of a package in ``bronze.onec_packages``, or None if never seen."""
    if table.current_snapshot() is None:
        return None
    rows = table.scan(row_filter=EqualTo(PACKAGE_COLUMN, package_id)).to_arrow().to_pylist()
    return rows[0] if rows else None


def _replace(
    table: Table, data: pa.Table, package_id: str, commit: PackageCommit, *, fresh: bool = False
) -> None:
    """Replace the package's slice of ``table``.

    ``fresh`` (the package was never journaled, so no table holds a row of it) appends instead: the
    same result, without the delete pass that an overwrite costs.
    """
    if fresh:
        if len(data):
            table.append(data, snapshot_properties=commit.snapshot_properties())
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Delete operation did not match any records")
        replace_slice(table, data, column=PACKAGE_COLUMN, values=[package_id], commit=commit)


def _snapshot_id(table: Table) -> int | None:
    snapshot = table.current_snapshot()
    return snapshot.snapshot_id if snapshot else None


def _rollback(
    tables: Mapping[str, Table],
    before: Mapping[str, int | None],
    committed: Mapping[str, int],
    package_id: str,
    commit: PackageCommit,
) -> None:
    """Undo the package's commits, newest first, without discarding other writers' commits."""
    slice_filter = EqualTo(PACKAGE_COLUMN, package_id)
    for entity in reversed(list(committed)):
        table = tables[entity]
        table.refresh()
        previous = before[entity]
        if _snapshot_id(table) == committed[entity]:
            if previous is not None:
                table.manage_snapshots().set_current_snapshot(snapshot_id=previous).commit()
            else:
                table.delete(slice_filter, snapshot_properties=commit.snapshot_properties())
            log.warning("onec %s: rolled %s back to snapshot %s", package_id[:12], entity, previous)
            continue
        # Someone committed after us: put the package's slice back as it was, keep their commit.
        if previous is None:
            restored = table.schema().as_arrow().empty_table()
        else:
            restored = table.scan(row_filter=slice_filter, snapshot_id=previous).to_arrow()
        _replace(table, restored, package_id, commit)
        log.warning("onec %s: restored %s's slice to snapshot %s", package_id[:12], entity, previous)


def _files_json(manifest: Manifest, staged: StagedPackage | None) -> str:
    counts = {h["source_file"]: h.get("record_counts") for h in staged.headers} if staged else {}
    files = []
    for entry in manifest.to_dict()["files"]:
        entry["record_counts"] = counts.get(entry["name"])
        files.append(entry)
    return json.dumps(files, ensure_ascii=False)


def load_package(
    path: str | os.PathLike[str],
    *,
    run_id: str,
    mode: str = "catalog",
    catalog: Catalog | None = None,
    batch_size: int = BATCH_SIZE,
    staging_root: str | os.PathLike[str] | None = None,
    source: str | None = None,
) -> PackageLoadResult:
    """Load one package (directory, zip or single XML file) into bronze, all tables or none.

    Args:
        path: The package.
        run_id: Airflow run id or a CLI batch id (stamped on rows, snapshots and the journal).
        mode: ``catalog`` (every entity) or ``stocks`` (prices and stocks only; the package must
            hold only prices/rests files).
        catalog: Lakehouse catalog (default: from the environment).
        batch_size: Rows per staged Parquet row group.
        staging_root: Where the temporary staging directory goes (default ``$ELT_HOME/staging``).
        source: Where the package came from, recorded instead of ``path`` (an ``s3://`` URI when
            ``path`` is a downloaded copy); its last segment is the package name.

    Returns:
        The load's summary (status ``loaded``).

    Raises:
        PackageLoadError: Parsing, a rule of the mode, or a commit failed; bronze is unchanged and the
            journal row says ``failed`` with the same message.
        FileNotFoundError: ``path`` does not exist.
    """
    began = time.monotonic()
    entities = _entities(mode)
    source = source or os.fspath(path)
    catalog = catalog or load_catalog()
    tables = ensure_tables(catalog, entities if mode == "stocks" else BRONZE_ENTITIES)
    journal, journal_spec = tables["packages"], _spec(PACKAGES_SPEC)
    specs = {entity: _spec(entity_spec(entity)) for entity in entities}
    started_at = datetime.now(UTC)

    package_id = package_fingerprint(path)
    previous = journal_row(package_id, journal)
    # A replay of a loaded package keeps it visible to silver: its slices hold the same rows before,
    # during and after the replay (same bytes, same records), and a failed replay is rolled back.
    was_loaded = (previous or {}).get("status") == "loaded"
    attempts = (previous or {}).get("attempts") or 0
    attempts += 1
    # What this attempt would record; a replay of a loaded package records it only once it succeeded.
    identity = {
        "package_name": Path(source.rstrip("/")).name,
        "source": source,
        "load_mode": mode,
        "_run_id": run_id,
    }
    row: dict[str, Any] = dict(previous or {})  # a failed replay keeps the last good load's facts
    row |= {
        "package_id": package_id,
        "status": "loaded" if was_loaded else "loading",
        "attempts": attempts,
        "first_seen_at": (previous or {}).get("first_seen_at") or started_at,
        "started_at": started_at,
    }
    if not was_loaded:
        row |= identity
    commit = PackageCommit(run_id=run_id, source=SOURCE, package_id=package_id)
    manifest: Manifest | None = None
    staged: StagedPackage | None = None
    before: dict[str, int | None] = {}
    committed: dict[str, int] = {}

    journaled = previous is not None

    def write_journal(**changes: Any) -> None:
        nonlocal journaled
        row.update(changes, _loaded_at=datetime.now(UTC))
        _replace(journal, to_arrow([row], journal_spec), package_id, commit, fresh=not journaled)
        journaled = True

    try:
        manifest = build_manifest(path)
        row.update(  # the same bytes give the same facts: safe on a replay too
            kind=manifest.kind,
            files=_files_json(manifest, None),
            file_count=len(manifest.files),
            total_bytes=sum(f.size for f in manifest.files),
            ignored_files=json.dumps(list(manifest.ignored), ensure_ascii=False),
            schema_version=manifest.schema_version,
            schema_versions=json.dumps(list(manifest.schema_versions)),
            contains_only_changes=manifest.contains_only_changes,
            is_full=manifest.contains_only_changes is False,
            generated_at=_parse_generated(f.generated_at for f in manifest.files),
        )
        write_journal()
        if mode == "stocks" and package_kind(manifest) != "stocks":
            others = sorted({r for f in manifest.files for r in f.roles} - STOCK_ROLES)
            raise PackageModeError(
                f"not a stocks package: files with roles {others} belong to extract_onec (catalog mode)"
            )
        refs = known_references(catalog)
        root = Path(staging_root) if staging_root else PlatformConfig.from_env().home / "staging"
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"onec-{package_id[:12]}-", dir=root) as directory:
            staged = stage_package(
                path,
                manifest,
                specs=specs,
                refs=refs,
                directory=Path(directory),
                loaded_at=started_at,
                run_id=run_id,
                batch_size=batch_size,
            )
            log.info(
                "onec %s: staged %s (%d flagged) from %d file(s)",
                package_id[:12],
                dict(staged.counts),
                sum(staged.flagged.values()),
                len(manifest.files),
            )
            earlier = json.loads((previous or {}).get("entity_counts") or "{}")
            for entity in entities:
                if not staged.counts.get(entity) and not earlier.get(entity):
                    continue  # nothing to write and nothing of this package to replace
                table = tables[entity]
                before[entity] = _snapshot_id(table)
                data = read_staged(staged, entity, specs[entity])
                _replace(table, data, package_id, commit, fresh=previous is None)
                after = _snapshot_id(table)
                if after is not None and after != before[entity]:
                    committed[entity] = after
        write_journal(
            **identity,
            status="loaded",
            error=None,
            files=_files_json(manifest, staged),
            entity_counts=json.dumps({e: staged.counts.get(e, 0) for e in entities}),
            skipped_counts=json.dumps(dict(staged.skipped)),
            issue_counts=json.dumps({e: dict(c) for e, c in staged.issues.items()}, ensure_ascii=False),
            flagged_rows=sum(staged.flagged.values()),
            table_snapshots=json.dumps({f"bronze.{SOURCE}_{e}": s for e, s in committed.items()}),
            finished_at=datetime.now(UTC),
        )
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        restored = True
        if committed:
            try:
                _rollback(tables, before, committed, package_id, commit)
            except Exception:  # noqa: BLE001 - report the original failure; the rollback's is logged
                log.exception("onec %s: ROLLBACK FAILED for %s", package_id[:12], list(committed))
                message += f" (rollback failed, tables {sorted(committed)} need attention)"
                restored = False
        # Bronze holds what it held before: a loaded package stays loaded (the error is recorded).
        kept = was_loaded and restored
        changes = {} if kept else {"table_snapshots": None}
        try:
            write_journal(
                status="loaded" if kept else "failed", error=message, finished_at=datetime.now(UTC), **changes
            )
        except Exception:  # noqa: BLE001 - the journal is best effort on the failure path
            log.exception("onec %s: could not record the failure in the journal", package_id[:12])
        log.error("onec %s (%s) failed, attempt %d: %s", package_id[:12], source, attempts, message)
        raise PackageLoadError(message, package_id=package_id, source=source, attempts=attempts) from exc

    assert manifest is not None and staged is not None
    result = PackageLoadResult(
        package_id=package_id,
        package_name=row["package_name"],
        source=source,
        mode=mode,
        status="loaded",
        is_full=bool(row["is_full"]),
        contains_only_changes=manifest.contains_only_changes,
        schema_version=manifest.schema_version,
        counts={e: staged.counts.get(e, 0) for e in entities},
        skipped=dict(staged.skipped),
        issues={e: dict(c) for e, c in staged.issues.items()},
        flagged=dict(staged.flagged),
        snapshots={f"bronze.{SOURCE}_{e}": s for e, s in committed.items()},
        attempts=attempts,
        seconds=time.monotonic() - began,
    )
    log.info(
        "onec %s: loaded %s in %.1fs (%s, %s): %s",
        package_id[:12],
        source,
        result.seconds,
        mode,
        "full" if result.is_full else "delta",
        {k: v for k, v in result.counts.items() if v},
    )
    return result


__all__ = [
    "PackageCommit",
    "PackageLoadError",
    "PackageLoadResult",
    "PackageModeError",
    "ensure_tables",
    "journal_row",
    "known_references",
    "load_package",
    "package_kind",
]

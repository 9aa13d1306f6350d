"""Load one 1C exchange package into the ``bronze.onec_*`` Iceberg tables, atomically.

A package is all-or-nothing:

1. **Fingerprint** — :func:`~elt_platform.sources.commerceml.package.build_manifest` (files, sizes,
   sha256, roles, schema version, delta flag, ``package_id``). The journal row in
   ``bronze.onec_packages`` becomes ``loading``.
2. **Stage** — every file is parsed into one Parquet file per table in a temporary directory
   (:mod:`.staging`), with rule checks (:mod:`.rules`). A malformed file fails the package here,
   naming file, line and element, before any table is touched.
3. **Commit** — table by table through :class:`~elt_platform.bronze.transaction.SliceTransaction`,
   each commit replacing exactly the package's partition (``package_id``), so a replay of the same
   package converges to the same rows; then the journal row becomes ``loaded``.
4. **Roll back on failure** — if any commit (or the final journal write) fails, the transaction sets
   every table already committed back to its pre-package snapshot (or, if another writer committed
   meanwhile, restores the package's slice to what it held before), then the journal row becomes
   ``failed`` with the error (a failed *replay* of a loaded package leaves it ``loaded``: its previous
   rows are what bronze holds again). Retrying is loading the same package again.

Every row gets the writer's lineage: ``_batch_id`` is the package id, ``_source_uri`` the package's
path or URI.

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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import EqualTo
from pyiceberg.table import Table

from elt_platform.bronze.arrow import records_to_arrow
from elt_platform.bronze.transaction import SliceTransaction
from elt_platform.config import PlatformConfig
from elt_platform.iceberg.catalog import load_catalog
from elt_platform.iceberg.tables import TableSpec, load_spec
from elt_platform.iceberg.writer import CommitInfo, ensure_table, replace_slice
from elt_platform.sources.commerceml.package import (
    EmptyPackageError,
    Manifest,
    build_manifest,
    package_fingerprint,
)
from elt_platform.sources.commerceml.parser import CommerceMLError
from elt_platform.sources.commerceml.rules import References
from elt_platform.sources.commerceml.settings import (
    AUTO_MODE,
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
from elt_platform.sources.commerceml.staging import StagedPackage, read_staged, stage_package

log = logging.getLogger(__name__)

# Bronze columns read back to know which ids earlier packages declared.
_REFERENCE_COLUMNS = {
    "groups": ("id",),
    "properties": ("id",),
    "price_types": ("id",),
    "warehouses": ("id",),
    "products": ("parent_id", "characteristic_id"),
    "offers": ("product_id", "characteristic_id", "group_ids"),
}


class PackageLoadError(RuntimeError):
    """A package could not be loaded; nothing of it is in bronze (its journal row says ``failed``).

    Attributes:
        package_id: The package's id (None when no package was identified: the path does not exist
            or holds no XML file; then nothing is journaled).
        source: The path given.
        attempts: Load attempts of this package so far, this one included (0 when not identified).
        reason: The cause on one line, naming the file inside the package (``import.xml: not a
            CommerceML document: root element <html>, …``), without the exception type.
        journal_status: The package's journal row after the failure: ``failed``, ``loaded`` (a failed
            replay of a loaded package: bronze holds its rows as before) or None (not journaled).
    """

    def __init__(
        self,
        message: str,
        *,
        package_id: str | None,
        source: str,
        attempts: int,
        reason: str | None = None,
        journal_status: str | None = None,
    ) -> None:
        super().__init__(message)
        self.package_id = package_id
        self.source = source
        self.attempts = attempts
        self.reason = reason or _one_line(message)
        self.journal_status = journal_status


class PackageModeError(ValueError):
    """The stocks fast path was given a package holding more than prices and rests."""


@dataclass(frozen=True)
class PackageCommit(CommitInfo):
    """Lineage of a package's commits (``batch_id`` = package id), also named ``elt.onec_package_id``."""

    def snapshot_properties(self) -> dict[str, str]:
        return {**super().snapshot_properties(), "elt.onec_package_id": self.batch or ""}


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


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "unknown error"


def _reason(exc: BaseException) -> str:
    """The cause as an operator reads it: our own errors speak for themselves, others keep their type."""
    if isinstance(exc, CommerceMLError | PackageModeError):
        return _one_line(str(exc))
    return _one_line(f"{type(exc).__name__}: {exc}")


def package_kind(manifest: Manifest) -> str:
    """``stocks`` when every XML file is a prices/rests file (by name and content), else ``catalog``."""
    if manifest.files and all(set(f.roles) <= STOCK_ROLES for f in manifest.files):
        return "stocks"
    return "catalog"


def _entities(mode: str) -> tuple[str, ...]:
    if mode not in MODES:
        raise ValueError(f"unknown load mode {mode!r}; expected one of {(*MODES, AUTO_MODE)}")
    return STOCK_ENTITIES if mode == "stocks" else BRONZE_ENTITIES


def is_full_package(contains_only_changes: bool | None) -> bool:
    """A package is a full export unless a file declares ``СодержитТолькоИзменения="true"``.

    The schema declares the attribute without a default, and site importers (1C-Bitrix's among them)
    treat anything but ``true`` — ``false`` or no attribute at all — as a full package.
    """
    return contains_only_changes is not True


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
        elif entity == "offers":  # lists are JSON strings in bronze
            refs.learn_all(entity, (r | {"group_ids": json.loads(r["group_ids"] or "[]")} for r in rows))
        else:
            refs.learn_all(entity, rows)
    return refs


def journal_row(package_id: str, table: Table) -> dict[str, Any] | None:
    """The journal row of a package in ``bronze.onec_packages``, or None if never seen."""
    if table.current_snapshot() is None:
        return None
    # pyiceberg's pydantic predicates: mypy sees the model fields, not the positional __init__.
    row_filter = EqualTo(PACKAGE_COLUMN, package_id)  # type: ignore[call-arg, misc, arg-type]
    rows = table.scan(row_filter=row_filter).to_arrow().to_pylist()
    return rows[0] if rows else None


def _files_json(manifest: Manifest, staged: StagedPackage | None) -> str:
    counts = {h["source_file"]: h.get("record_counts") for h in staged.headers} if staged else {}
    files = []
    for entry in manifest.to_dict()["files"]:
        entry["record_counts"] = counts.get(entry["name"])
        files.append(entry)
    return json.dumps(files, ensure_ascii=False)


@dataclass
class _Attempt:
    """One load attempt of a package: its journal row as it stands, and how to write it."""

    package_id: str
    source: str
    mode: str
    started_at: datetime
    previous: dict[str, Any] | None
    row: dict[str, Any]
    commit: PackageCommit
    journal: Table
    journaled: bool = False
    transaction: SliceTransaction | None = None

    @property
    def was_loaded(self) -> bool:
        # A replay of a loaded package keeps it visible to silver: its slices hold the same rows
        # before, during and after the replay (same bytes, same records), and a failed replay is
        # rolled back.
        return (self.previous or {}).get("status") == "loaded"

    @property
    def attempts(self) -> int:
        return self.row["attempts"]

    def identity(self) -> dict[str, Any]:
        """What this attempt records about the package; a replay of a loaded one only once it succeeded."""
        return {
            "package_name": Path(self.source.rstrip("/")).name,
            "source": self.source,
            "load_mode": self.mode,
        }

    def write_journal(self, **changes: Any) -> None:
        """Replace the package's journal row with the row as it stands plus ``changes``."""
        self.row.update(changes)
        replace_slice(
            self.journal,
            records_to_arrow([self.row], _spec(PACKAGES_SPEC)),
            column=PACKAGE_COLUMN,
            values=[self.package_id],
            commit=self.commit,
            new_slice=not self.journaled,
        )
        self.journaled = True


def _begin(package_id: str, *, source: str, mode: str, run_id: str, journal: Table) -> _Attempt:
    """Prepare the package's journal row (nothing written yet)."""
    started_at = datetime.now(UTC)
    previous = journal_row(package_id, journal)
    row: dict[str, Any] = dict(previous or {})  # a failed replay keeps the last good load's facts
    attempt = _Attempt(
        package_id=package_id,
        source=source,
        mode=mode,
        started_at=started_at,
        previous=previous,
        row=row,
        commit=PackageCommit(run_id=run_id, source=SOURCE, batch_id=package_id, source_uri=source),
        journal=journal,
        journaled=previous is not None,
    )
    row |= {
        "package_id": package_id,
        "status": "loaded" if attempt.was_loaded else "loading",
        "attempts": ((previous or {}).get("attempts") or 0) + 1,
        "first_seen_at": (previous or {}).get("first_seen_at") or started_at,
        "started_at": started_at,
    }
    if not attempt.was_loaded:
        row |= attempt.identity()
    return attempt


def _record_manifest(attempt: _Attempt, path: str | os.PathLike[str]) -> Manifest:
    """Read the package's files into its manifest, journal them, check the mode accepts them.

    Raises:
        PackageModeError: The stocks fast path got a package holding more than prices and rests.
    """
    manifest = build_manifest(path)
    if attempt.mode == AUTO_MODE:
        attempt.mode = package_kind(manifest)
        if not attempt.was_loaded:
            attempt.row["load_mode"] = attempt.mode
    attempt.write_journal(  # the same bytes give the same facts: safe on a replay too
        kind=manifest.kind,
        files=_files_json(manifest, None),
        file_count=len(manifest.files),
        total_bytes=sum(f.size for f in manifest.files),
        ignored_files=json.dumps(list(manifest.ignored), ensure_ascii=False),
        schema_version=manifest.schema_version,
        schema_versions=json.dumps(list(manifest.schema_versions)),
        contains_only_changes=manifest.contains_only_changes,
        is_full=is_full_package(manifest.contains_only_changes),
        generated_at=_parse_generated(f.generated_at for f in manifest.files),
    )
    if attempt.mode == "stocks" and package_kind(manifest) != "stocks":
        others = sorted({r for f in manifest.files for r in f.roles} - STOCK_ROLES)
        raise PackageModeError(
            f"not a stocks package: files with roles {others} belong to extract_onec (catalog mode)"
        )
    return manifest


@contextmanager
def _staging_directory(staging_root: str | os.PathLike[str] | None, package_id: str) -> Iterator[Path]:
    root = Path(staging_root) if staging_root else PlatformConfig.from_env().home / "staging"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"onec-{package_id[:12]}-", dir=root) as directory:
        yield Path(directory)


def _stage(
    attempt: _Attempt,
    path: str | os.PathLike[str],
    manifest: Manifest,
    *,
    catalog: Catalog,
    entities: tuple[str, ...],
    directory: Path,
    batch_size: int,
) -> StagedPackage:
    """Parse the whole package into Parquet, checking rules against what bronze already holds."""
    staged = stage_package(
        path,
        manifest,
        specs={entity: _spec(entity_spec(entity)) for entity in entities},
        refs=known_references(catalog),
        directory=directory,
        batch_size=batch_size,
    )
    log.info(
        "onec %s: staged %s (%d flagged) from %d file(s)",
        attempt.package_id[:12],
        dict(staged.counts),
        sum(staged.flagged.values()),
        len(manifest.files),
    )
    return staged


def _commit(
    attempt: _Attempt,
    manifest: Manifest,
    staged: StagedPackage,
    *,
    tables: dict[str, Table],
    entities: tuple[str, ...],
) -> dict[str, int]:
    """Replace the package's slice in every entity table, then journal it ``loaded``: all or none.

    Returns:
        Table identifier → snapshot id committed.
    """
    earlier = json.loads((attempt.previous or {}).get("entity_counts") or "{}")
    attempt.transaction = transaction = SliceTransaction(
        column=PACKAGE_COLUMN,
        values=[attempt.package_id],
        commit=replace(attempt.commit, loaded_at=attempt.started_at),
        new_slice=attempt.previous is None,
    )
    with transaction:
        for entity in entities:
            if not staged.counts.get(entity) and not earlier.get(entity):
                continue  # nothing to write and nothing of this package to replace
            spec = _spec(entity_spec(entity))
            transaction.replace(tables[entity], functools.partial(read_staged, staged, entity, spec))
        attempt.write_journal(
            **attempt.identity(),
            status="loaded",
            error=None,
            files=_files_json(manifest, staged),
            entity_counts=json.dumps({e: staged.counts.get(e, 0) for e in entities}),
            skipped_counts=json.dumps(dict(staged.skipped)),
            issue_counts=json.dumps({e: dict(c) for e, c in staged.issues.items()}, ensure_ascii=False),
            flagged_rows=sum(staged.flagged.values()),
            table_snapshots=json.dumps(transaction.committed),
            finished_at=datetime.now(UTC),
        )
    return dict(transaction.committed)


def _fail(attempt: _Attempt, exc: Exception) -> PackageLoadError:
    """Journal the failure (bronze already holds what it held before) and build the error to raise."""
    message = f"{type(exc).__name__}: {exc}"
    reason = _reason(exc)
    unrestored = attempt.transaction.unrestored if attempt.transaction else []
    if unrestored:
        message += f" (rollback failed, tables {unrestored} need attention)"
        reason += f" (rollback failed, tables {unrestored} need attention)"
    # Bronze holds what it held before: a loaded package stays loaded (the error is recorded).
    kept = attempt.was_loaded and not unrestored
    changes = {} if kept else {"table_snapshots": None}
    status: str | None = "loaded" if kept else "failed"
    try:
        attempt.write_journal(status=status, error=message, finished_at=datetime.now(UTC), **changes)
    except Exception:  # noqa: BLE001 - the journal is best effort on the failure path
        log.exception("onec %s: could not record the failure in the journal", attempt.package_id[:12])
        status = None
    log.error(
        "onec %s (%s) failed, attempt %d: %s",
        attempt.package_id[:12],
        attempt.source,
        attempt.attempts,
        message,
    )
    return PackageLoadError(
        message,
        package_id=attempt.package_id,
        source=attempt.source,
        attempts=attempt.attempts,
        reason=reason,
        journal_status=status,
    )


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
        mode: ``catalog`` (every entity), ``stocks`` (prices and stocks only; the package must
            hold only prices/rests files) or ``auto`` (``stocks`` when every file is a prices/rests
            file, else ``catalog``; decided once the files were read, so an unreadable package is
            still journaled).
        catalog: Lakehouse catalog (default: from the environment).
        batch_size: Rows per staged Parquet row group.
        staging_root: Where the temporary staging directory goes (default ``$ELT_HOME/staging``).
        source: Where the package came from, recorded instead of ``path`` (an ``s3://`` URI when
            ``path`` is a downloaded copy); its last segment is the package name.

    Returns:
        The load's summary (status ``loaded``).

    Raises:
        PackageLoadError: Parsing (a file that is not XML, not CommerceML, has a DOCTYPE, is
            malformed), a rule of the mode, or a commit failed; bronze is unchanged and the journal
            row says ``failed`` with the same message. Also when ``path`` does not exist or holds no
            XML file: then no package is identified and nothing is journaled (``package_id`` None).
    """
    began = time.monotonic()
    if mode != AUTO_MODE:
        _entities(mode)
    shown = source or os.fspath(path)
    try:
        package_id = package_fingerprint(path)
    except (FileNotFoundError, EmptyPackageError) as exc:  # no package: nothing to journal
        given = os.fspath(path)
        reason = "no such file or directory" if isinstance(exc, FileNotFoundError) else str(exc)
        reason = reason.removeprefix(f"{given}: ")
        log.error("onec: %s: %s", shown, reason)
        raise PackageLoadError(
            f"{shown}: {reason}", package_id=None, source=shown, attempts=0, reason=reason
        ) from exc
    catalog = catalog or load_catalog()
    tables = ensure_tables(catalog, STOCK_ENTITIES if mode == "stocks" else BRONZE_ENTITIES)
    attempt = _begin(package_id, source=shown, mode=mode, run_id=run_id, journal=tables["packages"])
    try:
        manifest = _record_manifest(attempt, path)
        entities = _entities(attempt.mode)
        with _staging_directory(staging_root, attempt.package_id) as directory:
            staged = _stage(
                attempt,
                path,
                manifest,
                catalog=catalog,
                entities=entities,
                directory=directory,
                batch_size=batch_size,
            )
            snapshots = _commit(attempt, manifest, staged, tables=tables, entities=entities)
    except Exception as exc:
        raise _fail(attempt, exc) from exc
    return _result(attempt, manifest, staged, snapshots, entities=entities, seconds=time.monotonic() - began)


def _result(
    attempt: _Attempt,
    manifest: Manifest,
    staged: StagedPackage,
    snapshots: dict[str, int],
    *,
    entities: tuple[str, ...],
    seconds: float,
) -> PackageLoadResult:
    result = PackageLoadResult(
        package_id=attempt.package_id,
        package_name=attempt.row["package_name"],
        source=attempt.source,
        mode=attempt.mode,
        status="loaded",
        is_full=bool(attempt.row["is_full"]),
        contains_only_changes=manifest.contains_only_changes,
        schema_version=manifest.schema_version,
        counts={e: staged.counts.get(e, 0) for e in entities},
        skipped=dict(staged.skipped),
        issues={e: dict(c) for e, c in staged.issues.items()},
        flagged=dict(staged.flagged),
        snapshots=snapshots,
        attempts=attempt.attempts,
        seconds=seconds,
    )
    log.info(
        "onec %s: loaded %s in %.1fs (%s, %s): %s",
        attempt.package_id[:12],
        attempt.source,
        result.seconds,
        attempt.mode,
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
    "is_full_package",
    "journal_row",
    "known_references",
    "load_package",
    "package_kind",
]

"""The 1C exchange area on a remote store (S3, SFTP): same layout and rules as :mod:`.exchange`.

The root (``$ELT_ONEC_EXCHANGE_URI``) holds ``incoming/``, ``archive/<date>/`` and ``failed/``. A package
is a folder (``incoming/<package>/…``) or a zip (``incoming/<package>.zip``); the completeness rule is
the local one — a ``.complete`` marker (``<package>/.complete`` or ``<package>.zip.complete``), or no
file of the package modified for ``settle_seconds`` and none with an in-progress suffix, and a zip must
be readable (only its central directory is fetched).

A complete package is downloaded into the local staging area (:meth:`RemoteExchangeArea.checkout`) and
loaded by the same loader as a local one; afterwards its files are moved to ``archive/`` or ``failed/``.
Only the files listed when the package was found are moved, so a file written later stays in
``incoming/``.

The store is reached through :class:`RemoteFiles` (:class:`.exchange_s3.S3Files`,
:class:`.exchange_sftp.SFTPFiles`); this module holds the rules once for both. Nothing here imports
Airflow, and no credential is ever logged or put in a repr.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from elt_platform.config import PlatformConfig
from elt_platform.sources.commerceml.exchange import route
from elt_platform.sources.commerceml.settings import (
    MARKER_NAME,
    PARTIAL_SUFFIXES,
    SETTLE_SECONDS,
    SETTLE_SECONDS_ENV,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteFile:
    """One file of the store, as listed.

    Attributes:
        path: Store path (``bucket/key`` on S3, absolute path on SFTP), ``/``-separated.
        mtime: Modification time, POSIX seconds (0 when the store does not say).
        size: Bytes.
    """

    path: str
    mtime: float
    size: int


class RemoteFiles(Protocol):
    """The few file operations the exchange area needs from a store."""

    def uri(self, path: str) -> str:
        """``<scheme>://…`` of a store path (recorded in the journal and in logs)."""

    def list_files(self, folder: str) -> list[RemoteFile]:
        """Every file under ``folder``, recursively; a missing folder lists nothing."""

    def exists(self, path: str) -> bool:
        """True when a file or folder is at ``path``."""

    def open_read(self, path: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """A seekable binary reader (zip central directories are read by seeking)."""

    def download(self, path: str, target: Path) -> None:
        """Copy a file to a local path."""

    def move(self, source: str, target: str) -> None:
        """Move a file, creating the target's parent folders."""

    def delete(self, path: str) -> None:
        """Remove one file."""

    def prune(self, folder: str) -> None:
        """Remove ``folder`` if no file is left under it (empty sub-folders go too)."""

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write a small file, creating its parent folders."""

    def close(self) -> None:
        """Release the connection, if any."""


@dataclass(frozen=True)
class RemotePackage:
    """One package of ``incoming/`` on the store, as listed.

    Attributes:
        name: ``<package>`` or ``<package>.zip``.
        uri: ``<scheme>://…/incoming/<name>`` (recorded as the package's source in the journal).
        members: Store path → path inside the package (``.complete`` included).
        marker: Store path of the zip's ``<name>.zip.complete``, if any.
        changed: Latest modification time of its files (POSIX seconds).
    """

    name: str
    uri: str
    members: dict[str, str]
    marker: str | None
    changed: float

    @property
    def is_zip(self) -> bool:
        return self.name.lower().endswith(".zip")


def _safe_parts(relative: str) -> bool:
    return all(part not in ("", ".", "..") for part in relative.split("/"))


def _is_hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split("/"))


def _settle_seconds() -> float:
    return float(os.environ.get(SETTLE_SECONDS_ENV, SETTLE_SECONDS))


@dataclass(frozen=True)
class RemoteExchangeArea:
    """The exchange folders of one 1C installation on a remote store.

    Attributes:
        files: The store.
        root: Store path of the area (no trailing slash).
        staging_root: Where packages are downloaded (default ``$ELT_HOME/staging``).
    """

    files: RemoteFiles = field(repr=False)
    root: str
    staging_root: Path | None = None

    @property
    def uri(self) -> str:
        return self.files.uri(self.root)

    @property
    def incoming(self) -> str:
        return f"{self.root}/incoming"

    @property
    def archive_dir(self) -> str:
        return f"{self.root}/archive"

    @property
    def failed_dir(self) -> str:
        return f"{self.root}/failed"

    def close(self) -> None:
        """Release the store's connection."""
        self.files.close()

    def packages(self) -> list[RemotePackage]:
        """Every package-shaped entry of ``incoming/``, complete or not (loose and hidden files skipped)."""
        members: dict[str, dict[str, str]] = {}
        changed: dict[str, float] = {}
        markers: dict[str, str] = {}
        for info in self.files.list_files(self.incoming):
            relative = info.path[len(self.incoming) + 1 :]
            if not _safe_parts(relative):
                log.warning("onec: skipped a file with an unsafe path %s", info.path)
                continue
            first, _, rest = relative.partition("/")
            if first.startswith("."):
                continue
            if rest:
                name = first
            elif first.lower().endswith(".zip"):
                name, rest = first, first
            elif first.lower().endswith(".zip" + MARKER_NAME):
                markers[first[: -len(MARKER_NAME)]] = info.path
                continue
            else:
                continue  # loose files are not a package
            members.setdefault(name, {})[info.path] = rest
            changed[name] = max(changed.get(name, 0.0), info.mtime)
        return [
            RemotePackage(
                name=name,
                uri=self.files.uri(f"{self.incoming}/{name}"),
                members=dict(sorted(files.items())),
                marker=markers.get(name) if name.lower().endswith(".zip") else None,
                changed=changed[name],
            )
            for name, files in members.items()
        ]

    def _zip_names(self, package: RemotePackage) -> list[str]:
        """Member names of a zip package, reading only its central directory.

        Raises:
            zipfile.BadZipFile: Not (yet) a readable zip.
        """
        (path,) = package.members
        with self.files.open_read(path) as handle, zipfile.ZipFile(handle) as archive:
            return sorted(i.filename for i in archive.infolist() if not i.is_dir())

    def member_names(self, package: RemotePackage) -> list[str]:
        """Names of the files of a package, dot-files excluded (as :func:`.exchange.member_names`)."""
        if package.is_zip:
            return self._zip_names(package)
        return sorted(n for n in package.members.values() if not _is_hidden(n))

    def is_complete(self, package: RemotePackage, *, settle_seconds: float, now: float) -> bool:
        """Apply the completeness rule (module docstring) to one listed package."""
        if package.marker or (not package.is_zip and MARKER_NAME in package.members.values()):
            return True
        if any(posixpath.basename(n).lower().endswith(PARTIAL_SUFFIXES) for n in package.members.values()):
            return False
        if now - package.changed < settle_seconds:
            return False
        try:
            names = self.member_names(package)
        except zipfile.BadZipFile:
            return False
        return package.is_zip or any(n.lower().endswith(".xml") for n in names)

    def pending(
        self, kind: str, *, settle_seconds: float | None = None, now: float | None = None
    ) -> list[RemotePackage]:
        """Complete packages of ``kind`` in ``incoming/``, oldest first (as :meth:`.ExchangeArea.pending`)."""
        settle = _settle_seconds() if settle_seconds is None else settle_seconds
        moment = datetime.now(UTC).timestamp() if now is None else now
        found = []
        for package in self.packages():
            if not self.is_complete(package, settle_seconds=settle, now=moment):
                continue
            try:
                names = self.member_names(package)
            except zipfile.BadZipFile:
                names = []  # the catalog DAG takes it and records the failure
            if route(names) == kind:
                found.append(package)
        return sorted(found, key=lambda p: (p.changed, p.name))

    def contains(self, package: object) -> bool:
        """True for packages listed from ``incoming/`` (a manual local path is loaded in place)."""
        return isinstance(package, RemotePackage)

    @contextlib.contextmanager
    def checkout(self, package: RemotePackage | Path) -> Iterator[Path]:
        """A local copy of the package (same name) in a temporary staging folder, removed afterwards."""
        if not isinstance(package, RemotePackage):
            yield Path(package)
            return
        root = self.staging_root or PlatformConfig.from_env().home / "staging"
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="onec-download-", dir=root) as directory:
            local = Path(directory) / package.name
            for path, relative in package.members.items():
                target = local if package.is_zip else local / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                self.files.download(path, target)
            log.info("onec: downloaded %s (%d file(s))", package.uri, len(package.members))
            yield local

    def _move(self, package: RemotePackage, target_dir: str) -> str:
        target = f"{target_dir}/{package.name}"
        if self.files.exists(target):
            stamp = datetime.now(UTC).strftime("%H%M%S%f")
            stem, dot, suffix = package.name.rpartition(".") if package.is_zip else (package.name, "", "")
            target = f"{target_dir}/{stem}.{stamp}{dot}{suffix}"
        for path, relative in package.members.items():
            self.files.move(path, target if package.is_zip else f"{target}/{relative}")
        if package.marker:
            self.files.delete(package.marker)
        if not package.is_zip:
            self.files.prune(f"{self.incoming}/{package.name}")
        return target

    def archive(self, package: RemotePackage) -> str:
        """Move a loaded package to ``archive/<today>/``; returns its new URI."""
        target = self.files.uri(
            self._move(package, f"{self.archive_dir}/{datetime.now(UTC).date().isoformat()}")
        )
        log.info("onec: archived %s → %s", package.uri, target)
        return target

    def quarantine(self, package: RemotePackage, error: str) -> str:
        """Move a package that keeps failing to ``failed/`` with ``<name>.error.txt`` beside it."""
        target = self._move(package, self.failed_dir)
        self.files.write_bytes(target + ".error.txt", (error + "\n").encode("utf-8"))
        log.error("onec: moved %s to %s: %s", package.uri, self.files.uri(target), error)
        return self.files.uri(target)


__all__ = ["RemoteExchangeArea", "RemoteFile", "RemoteFiles", "RemotePackage"]

"""The 1C exchange area on S3 (MinIO or AWS): same layout and rules as :mod:`.exchange`, on objects.

Root ``s3://<bucket>/<prefix>`` (``$ELT_ONEC_EXCHANGE_URI``) holds ``incoming/``, ``archive/<date>/``
and ``failed/`` as key prefixes. A package is a "folder" (``incoming/<package>/…``) or a zip
(``incoming/<package>.zip``); the completeness rule is the local one — a ``.complete`` marker object
(``<package>/.complete`` or ``<package>.zip.complete``), or no object of the package modified for
``settle_seconds`` and none with an in-progress suffix, and a zip must be readable (only its central
directory is fetched, by ranged reads).

A complete package is downloaded into the local staging area (:meth:`S3ExchangeArea.checkout`) and
loaded by the same loader as a local one; afterwards its objects are copied to ``archive/`` or
``failed/`` and deleted from ``incoming/`` (S3 has no rename). Only the objects listed when the package
was found are moved, so an object written later stays in ``incoming/``.

Credentials come from the caller (:class:`S3Credentials`, built from the ``onec_exchange`` Airflow
connection by :func:`elt_platform.sources.commerceml.extract.load_pending`): nothing here imports
Airflow, and no credential is ever logged or put in a repr.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyarrow import fs

from elt_platform.config import PlatformConfig
from elt_platform.sources.commerceml.exchange import route
from elt_platform.sources.commerceml.settings import (
    MARKER_NAME,
    PARTIAL_SUFFIXES,
    SETTLE_SECONDS,
    SETTLE_SECONDS_ENV,
)

log = logging.getLogger(__name__)

S3_SCHEME = "s3://"


def is_s3_uri(uri: str) -> bool:
    """True for ``s3://bucket[/prefix]``."""
    return uri.lower().startswith(S3_SCHEME)


@dataclass(frozen=True)
class S3Credentials:
    """How to reach the object store; any field left None falls back to the AWS SDK default chain.

    Attributes:
        access_key: Access key id.
        secret_key: Secret access key (kept out of the repr).
        endpoint_url: ``http(s)://host:port`` of a MinIO/S3-compatible endpoint; None = AWS.
        region: Region to sign for.
    """

    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    endpoint_url: str | None = None
    region: str | None = None

    @classmethod
    def from_connection(cls, connection: Any) -> S3Credentials:
        """From an Airflow ``aws`` connection: login = access key, password = secret key, extra
        ``endpoint_url`` and ``region_name`` (the Amazon provider's ``aws_access_key_id``/
        ``aws_secret_access_key`` extras are accepted too).

        Args:
            connection: Anything with ``login``, ``password`` and ``extra_dejson`` (or a JSON ``extra``).
        """
        extra = getattr(connection, "extra_dejson", None)
        if extra is None:
            raw = getattr(connection, "extra", None) or "{}"
            extra = json.loads(raw) if isinstance(raw, str) else dict(raw)
        return cls(
            access_key=connection.login or extra.get("aws_access_key_id") or None,
            secret_key=connection.password or extra.get("aws_secret_access_key") or None,
            endpoint_url=extra.get("endpoint_url") or None,
            region=extra.get("region_name") or None,
        )

    @classmethod
    def from_platform(cls) -> S3Credentials:
        """The lakehouse's own S3 settings: ``ELT_S3_ENDPOINT`` and the AWS default credential chain."""
        return cls(endpoint_url=PlatformConfig.from_env().s3_endpoint)


def s3_filesystem(credentials: S3Credentials) -> fs.S3FileSystem:
    """A ``pyarrow.fs.S3FileSystem`` for ``credentials`` (path-style addressing, as MinIO needs)."""
    options: dict[str, Any] = {}
    if credentials.endpoint_url:
        scheme, sep, host = credentials.endpoint_url.partition("://")
        options |= (
            {"endpoint_override": host.rstrip("/"), "scheme": scheme}
            if sep
            else {"endpoint_override": scheme}
        )
    if credentials.access_key:
        options |= {"access_key": credentials.access_key, "secret_key": credentials.secret_key}
    if credentials.region:
        options["region"] = credentials.region
    return fs.S3FileSystem(**options)


@dataclass(frozen=True)
class RemotePackage:
    """One package of ``incoming/`` on the object store, as listed.

    Attributes:
        name: ``<package>`` or ``<package>.zip``.
        uri: ``s3://…/incoming/<name>`` (recorded as the package's source in the journal).
        members: Object path (``bucket/key``) → path inside the package (``.complete`` included).
        marker: Path of the zip's ``<name>.zip.complete`` object, if any.
        changed: Latest modification time of its objects (POSIX seconds).
    """

    name: str
    uri: str
    members: dict[str, str]
    marker: str | None
    changed: float

    @property
    def is_zip(self) -> bool:
        return self.name.lower().endswith(".zip")

    @property
    def objects(self) -> list[str]:
        """Every object of the package, marker included."""
        return [*self.members, *([self.marker] if self.marker else [])]


def _safe_parts(relative: str) -> bool:
    return all(part not in ("", ".", "..") for part in relative.split("/"))


def _is_hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split("/"))


def _settle_seconds() -> float:
    return float(os.environ.get(SETTLE_SECONDS_ENV, SETTLE_SECONDS))


@dataclass(frozen=True)
class S3ExchangeArea:
    """The exchange prefixes of one 1C installation on S3.

    Attributes:
        filesystem: Built with :func:`s3_filesystem`.
        root: ``bucket/prefix`` (no scheme, no trailing slash).
        staging_root: Where packages are downloaded (default ``$ELT_HOME/staging``).
    """

    filesystem: fs.FileSystem = field(repr=False)
    root: str
    staging_root: Path | None = None

    @classmethod
    def from_uri(
        cls, uri: str, credentials: S3Credentials, *, staging_root: Path | None = None
    ) -> S3ExchangeArea:
        """Area at ``s3://bucket/prefix`` reached with ``credentials``."""
        if not is_s3_uri(uri):
            raise ValueError(f"not an s3:// URI: {uri!r}")
        root = uri[len(S3_SCHEME) :].strip("/")
        if not root:
            raise ValueError(f"no bucket in {uri!r}")
        return cls(s3_filesystem(credentials), root, staging_root)

    @property
    def uri(self) -> str:
        return S3_SCHEME + self.root

    @property
    def incoming(self) -> str:
        return f"{self.root}/incoming"

    @property
    def archive_dir(self) -> str:
        return f"{self.root}/archive"

    @property
    def failed_dir(self) -> str:
        return f"{self.root}/failed"

    def _list(self, prefix: str) -> list[fs.FileInfo]:
        selector = fs.FileSelector(prefix, recursive=True, allow_not_found=True)
        return [i for i in self.filesystem.get_file_info(selector) if i.type == fs.FileType.File]

    def packages(self) -> list[RemotePackage]:
        """Every package-shaped entry of ``incoming/``, complete or not (loose and hidden objects skipped)."""
        members: dict[str, dict[str, str]] = {}
        changed: dict[str, float] = {}
        markers: dict[str, str] = {}
        for info in self._list(self.incoming):
            relative = info.path[len(self.incoming) + 1 :]
            if not _safe_parts(relative):
                log.warning("onec: skipped object with an unsafe key %s", info.path)
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
            mtime = info.mtime.timestamp() if info.mtime else 0.0
            changed[name] = max(changed.get(name, 0.0), mtime)
        return [
            RemotePackage(
                name=name,
                uri=f"{S3_SCHEME}{self.incoming}/{name}",
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
        (key,) = package.members
        with self.filesystem.open_input_file(key) as handle, zipfile.ZipFile(handle) as archive:
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
            for key, relative in package.members.items():
                target = local if package.is_zip else local / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                with self.filesystem.open_input_stream(key) as source, target.open("wb") as out:
                    shutil.copyfileobj(source, out, length=1 << 20)
            log.info("onec: downloaded %s (%d object(s))", package.uri, len(package.members))
            yield local

    def _exists(self, path: str) -> bool:
        return self.filesystem.get_file_info(path).type != fs.FileType.NotFound

    def _move(self, package: RemotePackage, target_dir: str) -> str:
        target = f"{target_dir}/{package.name}"
        if self._exists(target):
            stamp = datetime.now(UTC).strftime("%H%M%S%f")
            stem, dot, suffix = package.name.rpartition(".") if package.is_zip else (package.name, "", "")
            target = f"{target_dir}/{stem}.{stamp}{dot}{suffix}"
        for key, relative in package.members.items():
            self.filesystem.copy_file(key, target if package.is_zip else f"{target}/{relative}")
        for key in package.objects:
            self.filesystem.delete_file(key)
        folder = f"{self.incoming}/{package.name}"
        if not package.is_zip and self._exists(folder) and not self._list(folder):
            self.filesystem.delete_dir(folder)  # the empty "folder" object pyarrow leaves behind
        return S3_SCHEME + target

    def archive(self, package: RemotePackage) -> str:
        """Move a loaded package to ``archive/<today>/``; returns its new URI."""
        target = self._move(package, f"{self.archive_dir}/{datetime.now(UTC).date().isoformat()}")
        log.info("onec: archived %s → %s", package.uri, target)
        return target

    def quarantine(self, package: RemotePackage, error: str) -> str:
        """Move a package that keeps failing to ``failed/`` with ``<name>.error.txt`` beside it."""
        target = self._move(package, self.failed_dir)
        with self.filesystem.open_output_stream(target[len(S3_SCHEME) :] + ".error.txt") as out:
            out.write((error + "\n").encode("utf-8"))
        log.error("onec: moved %s to %s: %s", package.uri, target, error)
        return target


__all__ = ["RemotePackage", "S3Credentials", "S3ExchangeArea", "is_s3_uri", "s3_filesystem"]

"""The exchange area where 1C drops packages, and the rule that says a package is complete.

Layout (root: ``$ELT_ONEC_EXCHANGE_URI`` or ``$ELT_ONEC_EXCHANGE_DIR``, default
``$ELT_HOME/exchange/onec``; ``s3://`` and ``sftp://`` roots are handled by :mod:`.exchange_remote`)::

    incoming/<package>/…xml | incoming/<package>.zip   1C (or the sync job) writes here
    archive/<YYYY-MM-DD>/<package>                     loaded packages, moved by the DAG
    failed/<package> + <package>.error.txt             packages that failed MAX_ATTEMPTS times

**Completeness rule.** A package in ``incoming/`` is picked up when

* it carries a marker — a ``.complete`` file inside the package directory, or a
  ``<name>.zip.complete`` file beside the zip (written last by the uploader), **or**
* no file of it changed for ``settle_seconds`` (default 120, ``ELT_ONEC_SETTLE_SECONDS``) and none
  has an in-progress suffix (``.tmp``, ``.part``, ``.filepart``…); a zip must also be readable
  (its central directory is written last, so a half-written zip is not a zip yet).

Files lying loose in ``incoming/`` are not a package: 1C's exchange (or the sync job) must write each
session into its own folder or zip.

**Routing.** ``extract_onec_stocks`` takes packages whose XML files are all named ``prices*``/
``rests*`` (the fast path); ``extract_onec`` takes every other package. Routing reads names only —
the loader checks the content again.

In production the exchange location can be S3/MinIO or an SFTP server directly
(``ELT_ONEC_EXCHANGE_URI=s3://…`` or ``sftp://…``, see :mod:`.exchange_s3` and :mod:`.exchange_sftp`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from elt_platform.config import PlatformConfig
from elt_platform.sources.commerceml.package import classify_name
from elt_platform.sources.commerceml.settings import (
    EXCHANGE_DIR_ENV,
    EXCHANGE_URI_ENV,
    MARKER_NAME,
    PARTIAL_SUFFIXES,
    SETTLE_SECONDS,
    SETTLE_SECONDS_ENV,
    STOCK_ROLES,
)

log = logging.getLogger(__name__)


def _is_hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def member_names(package: Path) -> list[str]:
    """Names of the files of a package (directory walked, zip listed), dot-files excluded.

    Raises:
        zipfile.BadZipFile: ``package`` is a file but not a readable zip.
    """
    if package.is_dir():
        return sorted(
            p.relative_to(package).as_posix()
            for p in package.rglob("*")
            if p.is_file() and not _is_hidden(p.relative_to(package))
        )
    with zipfile.ZipFile(package) as archive:
        return sorted(i.filename for i in archive.infolist() if not i.is_dir())


def route(names: list[str]) -> str:
    """``stocks`` when every XML file is named as a prices/rests file, else ``catalog``."""
    xml = [n for n in names if n.lower().endswith(".xml")]
    if xml and all(set(classify_name(n)) and set(classify_name(n)) <= STOCK_ROLES for n in xml):
        return "stocks"
    return "catalog"


def _marker(package: Path) -> Path:
    return package / MARKER_NAME if package.is_dir() else package.with_name(package.name + MARKER_NAME)


def _latest_change(package: Path) -> float:
    if package.is_file():
        return package.stat().st_mtime
    mtimes = [package.stat().st_mtime] + [p.stat().st_mtime for p in package.rglob("*")]
    return max(mtimes)


def _in_progress(package: Path) -> bool:
    paths = [package] if package.is_file() else list(package.rglob("*"))
    return any(p.name.lower().endswith(PARTIAL_SUFFIXES) for p in paths)


def is_complete(package: Path, *, settle_seconds: float, now: float) -> bool:
    """Apply the completeness rule (module docstring) to one entry of ``incoming/``."""
    if _marker(package).exists():
        return True
    if _in_progress(package) or now - _latest_change(package) < settle_seconds:
        return False
    if package.is_file():
        return zipfile.is_zipfile(package)
    return any(n.lower().endswith(".xml") for n in member_names(package))


def exchange_uri() -> str:
    """Where the exchange area is: ``$ELT_ONEC_EXCHANGE_URI``, else ``$ELT_ONEC_EXCHANGE_DIR``, else
    ``$ELT_HOME/exchange/onec`` (a local path, a ``file://`` URI, ``s3://…`` or ``sftp://…``)."""
    configured = os.environ.get(EXCHANGE_URI_ENV) or os.environ.get(EXCHANGE_DIR_ENV)
    return configured or os.fspath(PlatformConfig.from_env().home / "exchange" / "onec")


def _settle_seconds() -> float:
    return float(os.environ.get(SETTLE_SECONDS_ENV, SETTLE_SECONDS))


@dataclass(frozen=True)
class ExchangeArea:
    """The exchange folders of one 1C installation.

    Attributes:
        root: Holds ``incoming/``, ``archive/`` and ``failed/``.
    """

    root: Path

    @classmethod
    def from_env(cls) -> ExchangeArea:
        """The local area :func:`exchange_uri` names.

        Raises:
            ValueError: The configured location is not local (``s3://``/``sftp://``: use
                :func:`.extract.open_exchange`).
        """
        return cls.from_uri(exchange_uri())

    @classmethod
    def from_uri(cls, uri: str) -> ExchangeArea:
        """Area at a local path or ``file://`` URI.

        Raises:
            ValueError: ``uri`` has another scheme.
        """
        scheme, sep, rest = uri.partition("://")
        if sep and scheme.lower() != "file":
            raise ValueError(f"not a local exchange location: {scheme}://…")
        return cls(Path(rest if sep else uri).resolve())

    @property
    def incoming(self) -> Path:
        return self.root / "incoming"

    @property
    def archive_dir(self) -> Path:
        return self.root / "archive"

    @property
    def failed_dir(self) -> Path:
        return self.root / "failed"

    def ensure(self) -> None:
        """Create the three folders."""
        for folder in (self.incoming, self.archive_dir, self.failed_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def pending(
        self, kind: str, *, settle_seconds: float | None = None, now: float | None = None
    ) -> list[Path]:
        """Complete packages of ``kind`` (``catalog`` or ``stocks``) in ``incoming/``, oldest first.

        Args:
            kind: Which DAG asks (see routing in the module docstring).
            settle_seconds: Quiet period of the completeness rule (default from the environment).
            now: Current time as a POSIX timestamp (tests).

        Returns:
            Paths of package directories/zips, ordered by their last change.
        """
        self.ensure()
        settle = _settle_seconds() if settle_seconds is None else settle_seconds
        moment = datetime.now(UTC).timestamp() if now is None else now
        found = []
        for entry in self.incoming.iterdir():
            if entry.name.startswith(".") or entry.name.endswith(MARKER_NAME):
                continue
            if entry.is_file() and not entry.name.lower().endswith(".zip"):
                continue  # loose files are not a package
            if not is_complete(entry, settle_seconds=settle, now=moment):
                continue
            try:
                names = member_names(entry)
            except zipfile.BadZipFile:
                names = []  # the catalog DAG takes it and records the failure
            if route(names) == kind:
                found.append(entry)
        return sorted(found, key=lambda p: (_latest_change(p), p.name))

    def _move(self, package: Path, target_dir: Path) -> Path:
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / package.name
        if target.exists():
            stamp = datetime.now(UTC).strftime("%H%M%S%f")
            target = (
                target_dir / f"{PurePosixPath(package.name).stem}.{stamp}{''.join(package.suffixes[-1:])}"
            )
        marker = _marker(package)
        if marker.exists() and not package.is_dir():
            marker.unlink()
        shutil.move(os.fspath(package), os.fspath(target))
        return target

    def contains(self, package: Path) -> bool:
        """True when ``package`` sits directly in ``incoming/`` (only those are moved)."""
        return package.resolve().parent == self.incoming

    @contextlib.contextmanager
    def checkout(self, package: Path) -> Iterator[Path]:
        """The package as a local path: itself (the S3 area downloads it here)."""
        yield package

    def archive(self, package: Path) -> Path:
        """Move a loaded package to ``archive/<today>/``; returns the new path."""
        target = self._move(package, self.archive_dir / datetime.now(UTC).date().isoformat())
        log.info("onec: archived %s → %s", package.name, target)
        return target

    def quarantine(self, package: Path, error: str) -> Path:
        """Move a package that keeps failing to ``failed/`` with ``<name>.error.txt`` beside it."""
        target = self._move(package, self.failed_dir)
        target.with_name(target.name + ".error.txt").write_text(error + "\n", encoding="utf-8")
        log.error("onec: moved %s to %s: %s", package.name, target, error)
        return target


__all__ = ["ExchangeArea", "exchange_uri", "is_complete", "member_names", "route"]

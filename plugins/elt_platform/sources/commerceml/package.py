"""CommerceML exchange packages: discover the files, fingerprint them, stream their records.

A package is what one 1C exchange session leaves behind: a directory or a ``.zip`` holding one or
more XML files, possibly nested (``goods/1/import.xml``, ``properties/1/offers.xml``) and mixed with
images (ignored). :func:`build_manifest` lists the XML files with size, sha256, roles (from the file
name *and* from sniffing the content), schema version and delta flag, and derives a deterministic
``package_id``. :func:`parse_package` streams ``(entity, record)`` pairs from every file in
dependency order (dictionaries before goods before offers/prices/rests), sharing one property
dictionary so that value ids in goods and offers resolve to text even in split exports.
:func:`iter_batches` groups that stream into per-entity lists for a loader writing each entity to
its own table.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from elt_platform.sources.commerceml.parser import (
    ENTITIES,
    CommerceMLError,
    PropertyDictionary,
    Record,
    parse_file,
    read_header,
)

REFERENCE_ROLES = frozenset({"classifier", "groups", "properties", "price_types", "warehouses", "units"})
# Parse order: a split export's goods and offers need the property dictionaries read first.
_ROLE_PRIORITY = {
    **dict.fromkeys(REFERENCE_ROLES, 0),
    "import": 1,
    "goods": 1,
    "offers": 2,
    "prices": 3,
    "rests": 4,
    "contragents": 5,
    "documents": 6,
}
_UNKNOWN_PRIORITY = 7

# File-name prefixes used by 1C (UT 10/11, ERP, the Bitrix module); the longest match wins, so
# "propertiesGoods" is not read as "properties" + junk and "priceLists" is not "prices".
_NAME_ROLES = (
    ("propertiesgoods", "properties"),
    ("propertiesoffers", "properties"),
    ("properties", "properties"),
    ("pricelists", "price_types"),
    ("prices", "prices"),
    ("rests", "rests"),
    ("offers", "offers"),
    ("import", "import"),
    ("goods", "goods"),
    ("groups", "groups"),
    ("storages", "warehouses"),
    ("units", "units"),
    ("contragents", "contragents"),
    ("documents", "documents"),
    ("orders", "documents"),
    ("classifier", "classifier"),
)
_HASH_CHUNK = 1024 * 1024
_DELTA_NEEDLE = "СодержитТолькоИзменения"


class EmptyPackageError(CommerceMLError):
    """A package holds no XML file (an empty folder, images only, a zip of nothing, a ``.txt``)."""


@dataclass(frozen=True)
class PackageFile:
    """One XML file of a package.

    Attributes:
        name: Path inside the package, POSIX separators (``goods/1/offers.xml``).
        size: Size in bytes.
        sha256: Hex digest of the file's bytes.
        roles: Sorted roles from the name and from the content (see ``README.md``).
        root: Local name of the root element (``КоммерческаяИнформация``, or a fragment root).
        schema_version: ``ВерсияСхемы`` of the root, if any.
        generated_at: ``ДатаФормирования`` of the root, as written.
        encoding: Encoding declared by the XML declaration (``UTF-8`` when absent).
        contains_only_changes: True if any ``СодержитТолькоИзменения`` in the file is true, False if
            all are false, None if the file has none.
    """

    name: str
    size: int
    sha256: str
    roles: tuple[str, ...]
    root: str | None
    schema_version: str | None
    generated_at: str | None
    encoding: str
    contains_only_changes: bool | None


@dataclass(frozen=True)
class Manifest:
    """The fingerprint of a package: what a loader records before parsing it.

    Attributes:
        source: The directory, zip or file the package was read from.
        kind: ``"directory"``, ``"zip"`` or ``"file"``.
        package_id: sha256 over the sorted ``name<TAB>sha256`` lines of the XML files: the same
            bytes under the same names always give the same id, whatever the mtimes or zip order.
        files: The XML files, in parse order.
        ignored: Other files present (images, archives' folders), names only.
    """

    source: str
    kind: str
    package_id: str
    files: tuple[PackageFile, ...]
    ignored: tuple[str, ...]

    @property
    def schema_versions(self) -> tuple[str, ...]:
        """Distinct ``ВерсияСхемы`` values of the files, sorted."""
        return tuple(sorted({f.schema_version for f in self.files if f.schema_version}))

    @property
    def schema_version(self) -> str | None:
        """The package's schema version when all files agree, else None (see :attr:`schema_versions`)."""
        versions = self.schema_versions
        return versions[0] if len(versions) == 1 else None

    @property
    def contains_only_changes(self) -> bool | None:
        """True if any file is a delta, False if some declare a full export and none a delta, else None.

        Deactivating what a package does not mention is only safe when this is False.
        """
        flags = {f.contains_only_changes for f in self.files} - {None}
        if True in flags:
            return True
        return False if flags else None

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON-serialisable) including the derived package-level facts."""
        data = asdict(self)
        data["files"] = [asdict(f) | {"roles": list(f.roles)} for f in self.files]
        data["ignored"] = list(self.ignored)
        data["schema_version"] = self.schema_version
        data["schema_versions"] = list(self.schema_versions)
        data["contains_only_changes"] = self.contains_only_changes
        return data


def classify_name(name: str) -> tuple[str, ...]:
    """Roles suggested by a file's name (``prices___<guid>.xml`` → ``prices``).

    The folder counts only when the file name itself says nothing specific: in the Bitrix layout
    ``goods/1/prices.xml`` is a prices file, while ``goods/1/import.xml`` holds goods and
    ``properties/1/import.xml`` holds properties.

    Args:
        name: Path of the file inside the package.

    Returns:
        Sorted roles; empty when nothing matches.
    """
    path = PurePosixPath(name.lower())
    own = _name_role(path.stem)
    roles = {own} if own else set()
    if own in (None, "import"):
        roles.update(r for r in (_name_role(part) for part in path.parts[:-1]) if r)
    return tuple(sorted(roles))


def _name_role(stem: str) -> str | None:
    for prefix, role in _NAME_ROLES:
        if stem.startswith(prefix):
            return role
    return None


def _content_roles(header: Record) -> set[str]:
    roles = set(header["kinds"])
    if header["root"] == "Классификатор":
        roles.add("classifier")
    return roles


def _priority(roles: tuple[str, ...]) -> int:
    return min((_ROLE_PRIORITY.get(r, _UNKNOWN_PRIORITY) for r in roles), default=_UNKNOWN_PRIORITY)


class _Package:
    """Uniform access to the members of a directory, a zip or a single file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        if path.is_dir():
            self.kind = "directory"
            names = sorted(
                p.relative_to(path).as_posix()
                for p in path.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif zipfile.is_zipfile(path):
            self.kind = "zip"
            self._zip = zipfile.ZipFile(path)
            names = sorted(
                i.filename
                for i in self._zip.infolist()
                if not i.is_dir() and not i.filename.startswith("__MACOSX/")
            )
        elif path.is_file():
            self.kind = "file"
            names = [path.name]
        else:
            raise FileNotFoundError(f"no CommerceML package at {path}")
        self.xml = [n for n in names if n.lower().endswith(".xml")]
        self.ignored = [n for n in names if not n.lower().endswith(".xml")]
        if not self.xml:
            self.close()
            found = f"only {', '.join(self.ignored[:3])}{'…' if len(self.ignored) > 3 else ''}"
            raise EmptyPackageError(
                f"{path}: no XML file in the package ({found if self.ignored else 'it is empty'}; "
                "expected a directory or .zip of CommerceML .xml files, or one .xml file)"
            )

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        if self._zip is not None:
            with self._zip.open(name) as member:
                yield member
        else:
            target = self.path if self.kind == "file" else self.path / name
            with target.open("rb") as fh:
                yield fh

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


@contextmanager
def _opened(path: str | os.PathLike[str]) -> Iterator[_Package]:
    package = _Package(Path(path))
    try:
        yield package
    finally:
        package.close()


def _delta_pattern(encoding: str) -> re.Pattern[bytes]:
    try:
        needle = _DELTA_NEEDLE.encode(encoding)
    except (LookupError, UnicodeEncodeError):
        needle = _DELTA_NEEDLE.encode()
    return re.compile(re.escape(needle) + rb"""(?:\s*=\s*["']|\s*>)\s*([^"'<\s]+)""")


def _fingerprint(stream: IO[bytes], encoding: str) -> tuple[int, str, bool | None]:
    """Size, sha256 and delta flag in one streaming pass (the flag can sit anywhere in the file)."""
    digest = hashlib.sha256()
    pattern = _delta_pattern(encoding)
    size = 0
    flags: set[bool] = set()
    carry = b""
    while chunk := stream.read(_HASH_CHUNK):
        digest.update(chunk)
        size += len(chunk)
        window = carry + chunk
        for match in pattern.finditer(window):
            value = match.group(1).decode(encoding, errors="replace").strip().lower()
            if value in ("true", "false"):
                flags.add(value == "true")
        carry = window[-256:]  # a flag split across two reads is found in the overlap
    flag = True if True in flags else (False if flags else None)
    return size, digest.hexdigest(), flag


def _package_id(pairs: Iterable[tuple[str, str]]) -> str:
    lines = "".join(f"{name}\t{sha256}\n" for name, sha256 in sorted(pairs))
    return hashlib.sha256(lines.encode()).hexdigest()


def package_fingerprint(path: str | os.PathLike[str]) -> str:
    """The ``package_id`` of a package from its bytes alone, without reading any XML.

    Equal to :attr:`Manifest.package_id`; unlike :func:`build_manifest` it cannot fail on a
    malformed file, so a loader can still record a broken package under its id.

    Args:
        path: A directory, a ``.zip`` or a single XML file.

    Returns:
        The hex package id.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        EmptyPackageError: ``path`` holds no ``.xml`` file.
    """
    with _opened(path) as package:
        pairs = []
        for name in package.xml:
            digest = hashlib.sha256()
            with package.open(name) as stream:
                while chunk := stream.read(_HASH_CHUNK):
                    digest.update(chunk)
            pairs.append((name, digest.hexdigest()))
    return _package_id(pairs)


def build_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Discover and fingerprint a package.

    Args:
        path: A directory, a ``.zip`` or a single XML file.

    Returns:
        The manifest, files listed in parse order.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        EmptyPackageError: ``path`` holds no ``.xml`` file.
        CommerceMLUnsafeXMLError: A file declares a DOCTYPE/entities.
        CommerceMLContentError: A file is not a CommerceML document (refused by content, whatever
            its name: not XML, an HTML page, another root element).
        CommerceMLSyntaxError: A file's head is not well-formed XML.
    """
    with _opened(path) as package:
        files = []
        for name in package.xml:
            with package.open(name) as stream:
                header = read_header(stream, source_file=name)
            with package.open(name) as stream:
                size, sha256, flag = _fingerprint(stream, header["encoding"])
            roles = tuple(sorted(set(classify_name(name)) | _content_roles(header))) or ("unknown",)
            files.append(
                PackageFile(
                    name=name,
                    size=size,
                    sha256=sha256,
                    roles=roles,
                    root=header["root"],
                    schema_version=header["schema_version"],
                    generated_at=header["generated_at"],
                    encoding=header["encoding"],
                    contains_only_changes=flag if flag is not None else header["contains_only_changes"],
                )
            )
        files.sort(key=lambda f: (_priority(f.roles), f.name))
        return Manifest(
            source=os.fspath(path),
            kind=package.kind,
            package_id=_package_id((f.name, f.sha256) for f in files),
            files=tuple(files),
            ignored=tuple(package.ignored),
        )


def parse_package(
    path: str | os.PathLike[str], *, manifest: Manifest | None = None
) -> Iterator[tuple[str, Record]]:
    """Stream every record of a package, files in dependency order.

    Each file ends with its ``("file_headers", header)`` record, to which this adds the file's
    ``sha256``, ``size``, ``roles`` and the ``package_id``.

    Args:
        path: A directory, a ``.zip`` or a single XML file.
        manifest: A manifest already built for ``path`` (saves a hashing pass).

    Yields:
        ``(entity, record)`` pairs; entity names are those of ``parser.ENTITIES``.

    Raises:
        CommerceMLUnsafeXMLError: A file declares a DOCTYPE/entities.
        CommerceMLSyntaxError: A file is not well-formed XML.
    """
    manifest = manifest or build_manifest(path)
    dictionary = PropertyDictionary()
    with _opened(path) as package:
        for entry in manifest.files:
            with package.open(entry.name) as stream:
                for entity, record in parse_file(stream, source_file=entry.name, dictionary=dictionary):
                    if entity == "file_headers":
                        record.update(
                            sha256=entry.sha256,
                            size=entry.size,
                            roles=list(entry.roles),
                            package_id=manifest.package_id,
                        )
                    yield entity, record


def iter_batches(
    path: str | os.PathLike[str], *, batch_size: int = 10_000, manifest: Manifest | None = None
) -> Iterator[tuple[str, list[Record]]]:
    """Group :func:`parse_package` into per-entity batches for writing each entity to its own table.

    Memory is bounded by ``batch_size`` records per entity; batches of different entities
    interleave in the order they fill up, and the remainders come last.

    Args:
        path: A directory, a ``.zip`` or a single XML file.
        batch_size: Records per batch (> 0).
        manifest: A manifest already built for ``path``.

    Yields:
        ``(entity, records)`` with ``1 <= len(records) <= batch_size``.

    Raises:
        ValueError: ``batch_size`` is not positive.
    """
    if batch_size <= 0:
        raise ValueError("batch_size must be positive")
    buffers: dict[str, list[Record]] = {}
    for entity, record in parse_package(path, manifest=manifest):
        buffer = buffers.setdefault(entity, [])
        buffer.append(record)
        if len(buffer) >= batch_size:
            yield entity, buffer
            buffers[entity] = []
    for entity in ENTITIES:
        if buffers.get(entity):
            yield entity, buffers[entity]


def count_entities(path: str | os.PathLike[str]) -> dict[str, int]:
    """Count the records of every entity in a package (for a CLI summary or a smoke check).

    Args:
        path: A directory, a ``.zip`` or a single XML file.

    Returns:
        ``{entity: count}`` for every entity of ``parser.ENTITIES`` (zeros included).
    """
    counts = dict.fromkeys(ENTITIES, 0)
    for entity, _ in parse_package(path):
        counts[entity] += 1
    return counts


__all__ = [
    "REFERENCE_ROLES",
    "EmptyPackageError",
    "Manifest",
    "PackageFile",
    "build_manifest",
    "classify_name",
    "count_entities",
    "iter_batches",
    "package_fingerprint",
    "parse_package",
]

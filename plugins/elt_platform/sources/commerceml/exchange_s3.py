"""The 1C exchange area on S3 (MinIO or AWS): the rules of :mod:`.exchange_remote`, on objects.

Root ``s3://<bucket>/<prefix>`` (``$ELT_ONEC_EXCHANGE_URI``); ``incoming/``, ``archive/<date>/`` and
``failed/`` are key prefixes. A zip's central directory is fetched by ranged reads; a move is a copy
then a delete (S3 has no rename).

Credentials come from the caller (:class:`S3Credentials`, built from the ``onec_exchange`` Airflow
connection by :func:`elt_platform.sources.commerceml.extract.load_pending`): nothing here imports
Airflow, and no credential is ever logged or put in a repr.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from pyarrow import fs

from elt_platform.config import PlatformConfig
from elt_platform.sources.commerceml.exchange_remote import RemoteExchangeArea, RemoteFile, RemotePackage

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


@dataclass
class S3Files:
    """:class:`~.exchange_remote.RemoteFiles` over a ``pyarrow.fs`` filesystem (paths are ``bucket/key``)."""

    filesystem: fs.FileSystem = field(repr=False)

    def uri(self, path: str) -> str:
        return S3_SCHEME + path

    def list_files(self, folder: str) -> list[RemoteFile]:
        selector = fs.FileSelector(folder, recursive=True, allow_not_found=True)
        return [
            RemoteFile(i.path, i.mtime.timestamp() if i.mtime else 0.0, i.size or 0)
            for i in self.filesystem.get_file_info(selector)
            if i.type == fs.FileType.File
        ]

    def exists(self, path: str) -> bool:
        return self.filesystem.get_file_info(path).type != fs.FileType.NotFound

    def open_read(self, path: str) -> contextlib.AbstractContextManager[BinaryIO]:
        return self.filesystem.open_input_file(path)

    def download(self, path: str, target: Path) -> None:
        with self.filesystem.open_input_stream(path) as source, target.open("wb") as out:
            shutil.copyfileobj(source, out, length=1 << 20)

    def move(self, source: str, target: str) -> None:
        self.filesystem.copy_file(source, target)  # S3 has no rename
        self.filesystem.delete_file(source)

    def delete(self, path: str) -> None:
        self.filesystem.delete_file(path)

    def prune(self, folder: str) -> None:
        if self.exists(folder) and not self.list_files(folder):
            self.filesystem.delete_dir(folder)  # the empty "folder" object pyarrow leaves behind

    def write_bytes(self, path: str, data: bytes) -> None:
        with self.filesystem.open_output_stream(path) as out:
            out.write(data)

    def close(self) -> None:
        """Nothing to release: pyarrow pools its HTTP connections."""


class S3ExchangeArea(RemoteExchangeArea):
    """The exchange prefixes of one 1C installation on S3 (``root`` = ``bucket/prefix``)."""

    files: S3Files  # narrows the inherited field's type (declaration only: no new dataclass field)

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
        return cls(S3Files(s3_filesystem(credentials)), root, staging_root)

    @property
    def filesystem(self) -> fs.FileSystem:
        """The ``pyarrow.fs`` filesystem the area reads and writes through."""
        return self.files.filesystem


__all__ = ["RemotePackage", "S3Credentials", "S3ExchangeArea", "S3Files", "is_s3_uri", "s3_filesystem"]

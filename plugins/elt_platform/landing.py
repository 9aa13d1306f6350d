"""Landing area: raw source responses, compressed, kept once each, for audit and replay.

Files are content-addressed (``<key>/<sha256[:16]>.<ext>.gz``): rerunning a load that got the same
bytes writes nothing new, while a changed response is kept beside the earlier one. Works on a local
directory (embedded) or S3 (production) through ``pyarrow.fs``. pyarrow would gzip ``*.gz`` paths
itself; streams are opened with ``compression=None`` so a landed file is plain gzip (``zcat`` reads it).
"""

from __future__ import annotations

import gzip
import hashlib

from pyarrow import fs

from elt_platform.config import PlatformConfig


def _filesystem(uri: str) -> tuple[fs.FileSystem, str]:
    return PlatformConfig.from_env().filesystem(uri)


def land(body: bytes, *, source: str, key: str, extension: str = "json", base_uri: str | None = None) -> str:
    """Store one raw response and return its URI.

    Args:
        body: bytes exactly as received.
        source: source name (first path level), e.g. ``alaqan``.
        key: partition-like path inside the source, e.g. ``byDate/visit_date=2025-01-30``.
        extension: file type before ``.gz``.
        base_uri: landing root; defaults to ``ELT_LANDING_URI``.

    Returns:
        The URI of the stored file.
    """
    base_uri = (base_uri or PlatformConfig.from_env().landing_uri).rstrip("/")
    digest = hashlib.sha256(body).hexdigest()[:16]
    uri = f"{base_uri}/{source}/{key}/{digest}.{extension}.gz"
    filesystem, path = _filesystem(uri)
    if filesystem.get_file_info(path).type == fs.FileType.File:
        return uri
    filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with filesystem.open_output_stream(path, compression=None) as out:
        out.write(gzip.compress(body, compresslevel=5))
    return uri


def read_landed(uri: str) -> bytes:
    """Read back a landed response (for replay and audit)."""
    filesystem, path = _filesystem(uri)
    with filesystem.open_input_stream(path, compression=None) as stream:
        return gzip.decompress(stream.read())

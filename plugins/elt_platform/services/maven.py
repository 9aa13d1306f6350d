"""Jars from Maven Central, downloaded once and verified against the SHA-1 the repository publishes.

The production-local profile needs a few jars before any JVM starts: S3Proxy's, and the Spark packages
the Thrift server must have on its driver's classpath (Iceberg's runtime, its AWS bundle, the Postgres
JDBC driver). They are stored where Spark's Ivy puts resolved packages (``<ivy>/jars/<group>_<artifact>-
<version>.jar``), so task drivers find them there too and skip resolution.
"""

from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path

MAVEN_CENTRAL = "https://repo1.maven.org/maven2"


class DownloadError(RuntimeError):
    """A jar could not be downloaded or did not match its published checksum (one line)."""


def artifact_url(group: str, artifact: str, version: str, classifier: str = "") -> str:
    """The Maven Central URL of a jar."""
    name = f"{artifact}-{version}{'-' + classifier if classifier else ''}.jar"
    return f"{MAVEN_CENTRAL}/{group.replace('.', '/')}/{artifact}/{version}/{name}"


def download(url: str, target: Path) -> Path:
    """Download ``url`` to ``target`` unless it is there, checking the ``.sha1`` beside it.

    Raises:
        DownloadError: the download failed or the checksum differs (nothing is left at ``target``).
    """
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url + ".sha1", timeout=60) as response:  # noqa: S310 - https only
            expected = response.read().decode().split()[0].strip()
        digest = hashlib.sha1()  # noqa: S324 - the checksum Maven Central publishes
        with urllib.request.urlopen(url, timeout=600) as response, open(partial, "wb") as out:  # noqa: S310
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise DownloadError(f"could not download {url}: {exc}") from None
    if digest.hexdigest() != expected:
        partial.unlink(missing_ok=True)
        raise DownloadError(f"{url}: SHA-1 {digest.hexdigest()} differs from the published {expected}")
    partial.rename(target)
    return target


def ensure_packages(packages: str, ivy: Path) -> list[Path]:
    """Each ``group:artifact:version`` of ``packages`` as a jar under ``<ivy>/jars`` (downloaded if missing).

    Only for self-contained jars (shaded bundles, JDBC drivers): dependencies are not resolved.
    """
    jars = []
    for coordinate in filter(None, (p.strip() for p in packages.split(","))):
        group, artifact, version = coordinate.split(":")
        target = ivy / "jars" / f"{group}_{artifact}-{version}.jar"
        jars.append(download(artifact_url(group, artifact, version), target))
    return jars

"""The S3-compatible object store of the production-local profile: S3Proxy on a filesystem backend.

Why S3Proxy (Apache-2.0, ``org.gaul:s3proxy`` on Maven Central): it is a real S3 server — AWS
Signature V2/V4 authentication, multipart uploads, path-style buckets — in one jar that runs on the
JDK this machine already has, and Maven Central is a registry we reach. MinIO (the compose stack's
store) is only distributed as a container image or a binary download outside the registries, and
moto's server is a mock of AWS rather than a server meant to hold data. Every client reaches it the way
it reaches MinIO or S3: boto3, pyarrow (pyiceberg, landing, quality results) and Iceberg's
``S3FileIO`` in Spark, with the key pair of ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``.

The jar is downloaded once into ``.cache/s3proxy`` and checked against Maven Central's SHA-1
(:mod:`elt_platform.services.maven`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from elt_platform.config import REPO_ROOT
from elt_platform.services.maven import artifact_url, download

S3PROXY_VERSION = "4.1.0"


class ObjectStoreError(RuntimeError):
    """The object store could not be fetched, configured or prepared (one line)."""


def s3proxy_jar(cache: Path | None = None) -> Path:
    """The S3Proxy jar, downloaded from Maven Central on first use and verified by its SHA-1.

    Args:
        cache: where it is kept (default ``<repo>/.cache/s3proxy``).

    Raises:
        elt_platform.services.maven.DownloadError: the download failed or its checksum differs.
    """
    cache = cache or REPO_ROOT / ".cache" / "s3proxy"
    url = artifact_url("org.gaul", "s3proxy", S3PROXY_VERSION, "jar-with-dependencies")
    return download(url, cache / url.rsplit("/", 1)[1])


@dataclass(frozen=True)
class S3ProxyConfig:
    """One S3Proxy server: where it listens, its single key pair, where it keeps objects."""

    host: str
    port: int
    access_key: str
    secret_key: str
    directory: Path

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def properties(self) -> str:
        """S3Proxy's properties file (holds the secret: written with mode 0600)."""
        return "\n".join(
            [
                f"s3proxy.endpoint={self.endpoint}",
                "s3proxy.authorization=aws-v2-or-v4",
                f"s3proxy.identity={self.access_key}",
                f"s3proxy.credential={self.secret_key}",
                "jclouds.provider=filesystem-nio2",
                f"jclouds.filesystem.basedir={self.directory / 'data'}",
                "",
            ]
        )

    def write_properties(self) -> Path:
        """Write :meth:`properties` to ``<directory>/s3proxy.conf`` (mode 0600) and return its path."""
        (self.directory / "data").mkdir(parents=True, exist_ok=True)
        path = self.directory / "s3proxy.conf"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.properties())
        os.chmod(path, 0o600)
        return path

    def command(self, java: str = "java") -> list[str]:
        """The command line starting the server (no secret on it: they are in the properties file)."""
        return [
            java,
            "-Xmx512m",
            "-jar",
            str(s3proxy_jar()),
            "--properties",
            str(self.directory / "s3proxy.conf"),
        ]


def ensure_bucket(
    endpoint: str, bucket: str, *, region: str | None = None, credentials: tuple[str, str] | None = None
) -> bool:
    """Create ``bucket`` through the S3 API (boto3) if missing.

    Args:
        endpoint: the store's URL.
        bucket: bucket name.
        region: the region clients sign for.
        credentials: (access key, secret key); None: the AWS default credential chain.

    Returns:
        True when the bucket was created, False when it existed.
    """
    import boto3
    from botocore.exceptions import ClientError

    keys = {}
    if credentials:
        keys = {"aws_access_key_id": credentials[0], "aws_secret_access_key": credentials[1]}
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region or "us-east-1", **keys)
    try:
        s3.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise ObjectStoreError(f"bucket {bucket!r} at {endpoint}: {exc}") from None
    s3.create_bucket(Bucket=bucket)
    return True

"""Shared paths and servers for the CommerceML tests.

The real exports live outside the repo, in ``../shared/fixtures``: every directory under ``commerceml/``
is one exchange package from one real 1C install; tests that take a ``fixture_set`` argument run once
per directory, discovered at collection time. Without those fixtures collection fails, naming the path
expected (a parametrised test over no fixture would otherwise silently become zero tests). The remote
exchange-area tests get real servers on 127.0.0.1, one per session: moto's S3 and an in-process
``asyncssh`` SFTP server.
"""

import asyncio
import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

S3_BUCKET = "onec-exchange"
S3_ACCESS_KEY = "AKIAONECTEST"
S3_SECRET_KEY = "onec-secret-9f2c7e"  # secrets: must never show up in logs, reprs, summaries or errors
SFTP_USER = "onec"
SFTP_PASSWORD = "onec-sftp-pass-4d1a"


def _repo_root() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file() and (parent / "plugins").is_dir():
            return parent
    raise RuntimeError(f"no repository root above {__file__}")


COMMERCEML_FIXTURES = (_repo_root() / ".." / "shared" / "fixtures" / "commerceml").resolve()


def fixture_sets() -> list[Path]:
    """Every fixture package directory.

    Raises:
        pytest.UsageError: The shared fixtures are not checked out (or hold no package).
    """
    sets = (
        sorted(p for p in COMMERCEML_FIXTURES.iterdir() if p.is_dir()) if COMMERCEML_FIXTURES.is_dir() else []
    )
    if not sets:
        raise pytest.UsageError(
            f"shared CommerceML fixtures not found: expected package directories under {COMMERCEML_FIXTURES}"
        )
    return sets


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fixture_set" in metafunc.fixturenames:
        sets = fixture_sets()
        metafunc.parametrize("fixture_set", sets, ids=[p.name for p in sets])


@pytest.fixture(scope="session")
def cml() -> Path:
    """Root of the shared CommerceML fixtures."""
    if not COMMERCEML_FIXTURES.is_dir():
        pytest.fail(f"shared CommerceML fixtures not found at {COMMERCEML_FIXTURES}")
    return COMMERCEML_FIXTURES


@pytest.fixture(scope="session")
def s3_server() -> Iterator[SimpleNamespace]:
    """A moto S3 server on 127.0.0.1: ``endpoint`` (``http://…``), ``bucket`` and keys."""
    from moto.server import ThreadedMotoServer
    from pyarrow import fs

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    creator = fs.S3FileSystem(
        access_key=S3_ACCESS_KEY,
        secret_key=S3_SECRET_KEY,
        endpoint_override=f"{host}:{port}",
        scheme="http",
        region="us-east-1",
        allow_bucket_creation=True,
    )
    creator.create_dir(S3_BUCKET)
    yield SimpleNamespace(
        endpoint=f"http://{host}:{port}", bucket=S3_BUCKET, access_key=S3_ACCESS_KEY, secret_key=S3_SECRET_KEY
    )
    server.stop()


@pytest.fixture(scope="session")
def sftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """An SFTP server on 127.0.0.1 (asyncssh, in a background thread) serving the local filesystem.

    Yields:
        ``port``, ``user``, ``password``, ``client_key`` (OpenSSH private key text, also accepted),
        ``host_key`` (``ssh-ed25519 <base64>``, as ``ssh-keyscan`` prints it), ``known_hosts``
        (a file naming that key).
    """
    import asyncssh

    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")

    class PasswordServer(asyncssh.SSHServer):
        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, password: str) -> bool:
            return (username, password) == (SFTP_USER, SFTP_PASSWORD)

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="sftp-server", daemon=True)
    thread.start()

    async def start() -> asyncssh.SSHAcceptor:
        return await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[host_key],
            server_factory=PasswordServer,
            authorized_client_keys=asyncssh.import_authorized_keys(client_key.export_public_key().decode()),
            sftp_factory=True,
            allow_scp=False,
        )

    listener = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    port = listener.sockets[0].getsockname()[1]
    public = " ".join(host_key.export_public_key().decode().split()[:2])
    known_hosts = tmp_path_factory.mktemp("ssh") / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {public}\n")
    yield SimpleNamespace(
        port=port,
        user=SFTP_USER,
        password=SFTP_PASSWORD,
        host_key=public,
        known_hosts=str(known_hosts),
        client_key=client_key.export_private_key().decode(),
    )

    async def stop() -> None:
        listener.close()
        await listener.wait_closed()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture(params=["s3", "sftp"])
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SimpleNamespace]:
    """A fresh remote exchange area on each server: ``area`` and the ``secret`` that reaches it.

    Downloads go under ``tmp_path/staging``.
    """
    from elt_platform.sources.commerceml.exchange_s3 import S3Credentials, S3ExchangeArea
    from elt_platform.sources.commerceml.exchange_sftp import SFTPCredentials, SFTPExchangeArea

    if request.param == "s3":
        s3 = request.getfixturevalue("s3_server")
        credentials = S3Credentials(
            s3.access_key, s3.secret_key, endpoint_url=s3.endpoint, region="us-east-1"
        )
        uri = f"s3://{s3.bucket}/{uuid.uuid4().hex[:12]}/onec"
        area = S3ExchangeArea.from_uri(uri, credentials, staging_root=tmp_path / "staging")
        secret = s3.secret_key
    else:
        sftp = request.getfixturevalue("sftp_server")
        credentials = SFTPCredentials(username=sftp.user, password=sftp.password, host_key=sftp.host_key)
        uri = f"sftp://127.0.0.1:{sftp.port}{tmp_path.as_posix()}/onec"
        area = SFTPExchangeArea.from_uri(uri, credentials, staging_root=tmp_path / "staging")
        secret = sftp.password
    yield SimpleNamespace(area=area, secret=secret)
    area.close()

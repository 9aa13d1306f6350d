"""The 1C exchange area on SFTP: login, host-key checking, and the connection the DAGs use.

Runs against an asyncssh SFTP server on 127.0.0.1 (``sftp_server``); discovery, loading and the
archive/failed moves are in ``test_exchange_remote.py``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from elt_platform.sources.commerceml.exchange_sftp import (
    SFTPConnectError,
    SFTPCredentials,
    SFTPExchangeArea,
)
from elt_platform.sources.commerceml.extract import load_pending, open_exchange

WRONG_PASSWORD = "not-the-password-7e3b"


def area_at(server: SimpleNamespace, root: Path, credentials: SFTPCredentials) -> SFTPExchangeArea:
    return SFTPExchangeArea.from_uri(f"sftp://127.0.0.1:{server.port}{root.as_posix()}", credentials)


def test_wrong_password_is_a_clear_error_without_the_password(
    sftp_server: SimpleNamespace, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    credentials = SFTPCredentials(
        username=sftp_server.user, password=WRONG_PASSWORD, host_key=sftp_server.host_key
    )
    with pytest.raises(SFTPConnectError, match="login refused") as info:
        area_at(sftp_server, tmp_path, credentials).packages()
    assert f"{sftp_server.user}@127.0.0.1:{sftp_server.port}" in str(info.value)
    assert WRONG_PASSWORD not in str(info.value) + caplog.text + repr(credentials)


@pytest.mark.parametrize(
    ("host_keys", "refusal"),
    [
        ({"host_key": "other"}, "does not match"),
        ({"known_hosts": "empty"}, "not found in known_hosts"),
    ],
    ids=["changed-key", "unknown-host"],
)
def test_an_unverified_host_key_is_refused(
    sftp_server: SimpleNamespace, tmp_path: Path, host_keys: dict[str, str], refusal: str
) -> None:
    import asyncssh

    if "host_key" in host_keys:
        other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
        host_keys = {"host_key": " ".join(other.split()[:2])}
    else:
        (tmp_path / "known_hosts").write_text("")
        host_keys = {"known_hosts": str(tmp_path / "known_hosts")}
    credentials = SFTPCredentials(username=sftp_server.user, password=sftp_server.password, **host_keys)
    with pytest.raises(SFTPConnectError, match=refusal):
        area_at(sftp_server, tmp_path, credentials).packages()


@pytest.mark.parametrize(
    "extra",
    [
        {"private_key": "<client_key>", "known_hosts": "<known_hosts>"},
        {"private_key": "<client_key>", "no_host_key_check": "true"},
    ],
    ids=["key-and-known-hosts", "host-key-check-off"],
)
def test_open_exchange_logs_in_with_the_connection(
    sftp_server: SimpleNamespace, tmp_path: Path, extra: dict[str, str]
) -> None:
    values = {"<client_key>": sftp_server.client_key, "<known_hosts>": sftp_server.known_hosts}
    connection = SimpleNamespace(
        login=sftp_server.user,
        password=None,
        port=None,
        extra=json.dumps({k: values.get(v, v) for k, v in extra.items()}),
    )
    area = open_exchange(f"sftp://127.0.0.1:{sftp_server.port}{tmp_path.as_posix()}/", connection=connection)
    assert isinstance(area, SFTPExchangeArea) and area.root == tmp_path.as_posix()
    assert area.pending("catalog", settle_seconds=0) == []
    assert sftp_server.client_key not in repr(area.files)
    area.close()


def test_the_dag_entry_point_logs_in_with_the_onec_exchange_sftp_connection(
    sftp_server: SimpleNamespace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The connection as ``.env.example`` declares it, with the placeholders filled in."""
    caplog.set_level(logging.DEBUG)
    example = Path(__file__).resolve().parents[4] / ".env.example"
    name = "AIRFLOW_CONN_ONEC_EXCHANGE_SFTP="
    line = next(x for x in example.read_text().splitlines() if x.startswith(name))
    connection = json.loads(line.split("=", 1)[1].strip("'"))
    connection |= {"login": sftp_server.user, "password": sftp_server.password}
    connection["extra"]["host_key"] = sftp_server.host_key
    monkeypatch.setenv(name.rstrip("="), json.dumps(connection))
    monkeypatch.setenv("ELT_ONEC_EXCHANGE_URI", f"sftp://127.0.0.1:{sftp_server.port}{tmp_path.as_posix()}")

    assert load_pending("stocks", run_id="entry", settle_seconds=0)["packages"] == []
    assert sftp_server.password not in caplog.text

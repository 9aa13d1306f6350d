"""The 1C exchange area on an SFTP server: the rules of :mod:`.exchange_remote`, over ``paramiko``.

Root ``sftp://host[:port]/absolute/path`` (``$ELT_ONEC_EXCHANGE_URI``) holds ``incoming/``,
``archive/<date>/`` and ``failed/``. A move is an SFTP rename; folders emptied by a move are removed.

Credentials come from the caller (:class:`SFTPCredentials`, built from the ``onec_exchange_sftp``
Airflow connection by :func:`elt_platform.sources.commerceml.extract.load_pending`). The server's host
key is checked by default — against the connection's ``host_key``, its ``known_hosts`` file, else
``~/.ssh/known_hosts`` — and an unknown or changed key is refused; ``no_host_key_check: true`` in the
extra turns the check off (test rigs only). No credential is ever logged, put in a repr or an error.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

import paramiko

from elt_platform.sources.commerceml.exchange_remote import RemoteExchangeArea, RemoteFile

log = logging.getLogger(__name__)

SFTP_SCHEME = "sftp://"
DEFAULT_PORT = 22


class SFTPConnectError(ConnectionError):
    """The SFTP server could not be reached, refused the login or showed an unexpected host key."""


def is_sftp_uri(uri: str) -> bool:
    """True for ``sftp://host[:port]/path``."""
    return uri.lower().startswith(SFTP_SCHEME)


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class SFTPCredentials:
    """How to log in; field names follow the Airflow SFTP provider's connection.

    Attributes:
        username: Login.
        password: Password (kept out of the repr).
        private_key: Private key text, OpenSSH/PEM (kept out of the repr).
        private_key_passphrase: Decrypts ``private_key``/``key_file`` (kept out of the repr).
        key_file: Path of a private key file on the worker.
        port: Used when the URI names no port.
        host_key: The server's public key, ``<type> <base64>`` (as ``ssh-keyscan`` prints it).
        known_hosts: Path of a known_hosts file; None = ``~/.ssh/known_hosts``.
        no_host_key_check: Accept any host key (explicit opt-out, off by default).
        conn_timeout: TCP connect and handshake timeout, seconds.
    """

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    private_key_passphrase: str | None = field(default=None, repr=False)
    key_file: str | None = None
    port: int | None = None
    host_key: str | None = None
    known_hosts: str | None = None
    no_host_key_check: bool = False
    conn_timeout: float = 10.0

    @classmethod
    def from_connection(cls, connection: Any) -> SFTPCredentials:
        """From an Airflow ``sftp`` connection: login, password, port and the extras ``private_key``,
        ``private_key_passphrase``, ``key_file``, ``host_key``, ``known_hosts``, ``no_host_key_check``,
        ``conn_timeout``.

        Args:
            connection: Anything with ``login``, ``password``, ``port`` and ``extra_dejson`` (or a JSON
                ``extra``).
        """
        extra = getattr(connection, "extra_dejson", None)
        if extra is None:
            raw = getattr(connection, "extra", None) or "{}"
            extra = json.loads(raw) if isinstance(raw, str) else dict(raw)
        port = getattr(connection, "port", None)
        return cls(
            username=connection.login or None,
            password=connection.password or None,
            private_key=extra.get("private_key") or None,
            private_key_passphrase=extra.get("private_key_passphrase") or None,
            key_file=extra.get("key_file") or None,
            port=int(port) if port else None,
            host_key=extra.get("host_key") or None,
            known_hosts=extra.get("known_hosts") or None,
            no_host_key_check=_flag(extra.get("no_host_key_check", False)),
            conn_timeout=float(extra.get("conn_timeout") or 10),
        )


def _private_key(text: str, passphrase: str | None) -> paramiko.PKey:
    for kind in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        with contextlib.suppress(paramiko.SSHException):
            return kind.from_private_key(io.StringIO(text), password=passphrase)
    raise SFTPConnectError("private_key of the SFTP connection is not a readable Ed25519/ECDSA/RSA key")


def _host_keys_entry(host: str, port: int) -> str:
    return host if port == DEFAULT_PORT else f"[{host}]:{port}"


def connect(host: str, port: int, credentials: SFTPCredentials) -> paramiko.SSHClient:
    """An SSH client logged in to ``host:port``, the host key checked (see the module docstring).

    Raises:
        SFTPConnectError: Unreachable, unknown or changed host key, or login refused (the message names
            the server and the login, never a secret).
    """
    client = paramiko.SSHClient()
    target = f"{credentials.username or '?'}@{host}:{port}"
    if credentials.no_host_key_check:
        log.warning("onec: host key check is off for %s (no_host_key_check)", target)
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    else:
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        if credentials.known_hosts:
            client.load_host_keys(credentials.known_hosts)
        else:
            client.load_system_host_keys()
        if credentials.host_key:
            entry = paramiko.hostkeys.HostKeyEntry.from_line(
                f"{_host_keys_entry(host, port)} {credentials.host_key.strip()}"
            )
            if entry is None:
                raise SFTPConnectError("host_key of the SFTP connection must read '<type> <base64>'")
            client.get_host_keys().add(entry.hostnames[0], entry.key.get_name(), entry.key)
    pkey = (
        _private_key(credentials.private_key, credentials.private_key_passphrase)
        if credentials.private_key
        else None
    )
    try:
        client.connect(
            host,
            port,
            username=credentials.username,
            password=credentials.password,
            pkey=pkey,
            key_filename=credentials.key_file,
            passphrase=credentials.private_key_passphrase,
            timeout=credentials.conn_timeout,
            banner_timeout=credentials.conn_timeout,
            auth_timeout=credentials.conn_timeout,
            allow_agent=False,
            look_for_keys=False,
        )
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise SFTPConnectError(
            f"SFTP {target}: host key {exc.key.get_name()} does not match the known one — refusing "
            "to connect (update known_hosts/host_key if the server's key really changed)"
        ) from None
    except paramiko.AuthenticationException:
        client.close()
        raise SFTPConnectError(
            f"SFTP {target}: login refused — check the login and password or key of the connection"
        ) from None
    except paramiko.SSHException as exc:
        client.close()
        raise SFTPConnectError(f"SFTP {target}: {exc}") from None
    except OSError as exc:
        client.close()
        raise SFTPConnectError(f"SFTP {target}: cannot connect: {exc.strerror or exc}") from None
    return client


@dataclass
class SFTPFiles:
    """:class:`~.exchange_remote.RemoteFiles` on an SFTP server; logs in on first use.

    Attributes:
        host: Server name or address.
        port: SSH port.
        credentials: Login and host-key settings.
    """

    host: str
    port: int
    credentials: SFTPCredentials = field(repr=False)
    _client: paramiko.SSHClient | None = field(default=None, init=False, repr=False)
    _sftp: paramiko.SFTPClient | None = field(default=None, init=False, repr=False)

    @property
    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            self._client = connect(self.host, self.port, self.credentials)
            self._sftp = self._client.open_sftp()
        return self._sftp

    def uri(self, path: str) -> str:
        port = "" if self.port == DEFAULT_PORT else f":{self.port}"
        return f"{SFTP_SCHEME}{self.host}{port}{path}"

    def list_files(self, folder: str) -> list[RemoteFile]:
        try:
            entries = self.sftp.listdir_attr(folder)
        except FileNotFoundError:
            return []
        found = []
        for entry in entries:
            path = f"{folder}/{entry.filename}"
            mode = entry.st_mode or 0
            if stat.S_ISDIR(mode):
                found.extend(self.list_files(path))
            elif stat.S_ISREG(mode):
                found.append(RemoteFile(path, float(entry.st_mtime or 0), entry.st_size or 0))
        return found

    def exists(self, path: str) -> bool:
        try:
            self.sftp.stat(path)
        except FileNotFoundError:
            return False
        return True

    def open_read(self, path: str) -> contextlib.AbstractContextManager[BinaryIO]:
        return self.sftp.open(path, "rb")

    def download(self, path: str, target: Path) -> None:
        self.sftp.get(path, str(target))

    def _makedirs(self, folder: str) -> None:
        if not folder or self.exists(folder):
            return
        self._makedirs(folder.rpartition("/")[0])
        self.sftp.mkdir(folder)

    def move(self, source: str, target: str) -> None:
        self._makedirs(target.rpartition("/")[0])
        self.sftp.rename(source, target)

    def delete(self, path: str) -> None:
        self.sftp.remove(path)

    def prune(self, folder: str) -> None:
        try:
            entries = self.sftp.listdir_attr(folder)
        except FileNotFoundError:
            return
        for entry in entries:
            if stat.S_ISDIR(entry.st_mode or 0):
                self.prune(f"{folder}/{entry.filename}")
        if not self.sftp.listdir(folder):
            self.sftp.rmdir(folder)

    def write_bytes(self, path: str, data: bytes) -> None:
        self._makedirs(path.rpartition("/")[0])
        with self.sftp.open(path, "wb") as out:
            out.write(data)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self._sftp = None


class SFTPExchangeArea(RemoteExchangeArea):
    """The exchange folders of one 1C installation on an SFTP server (``root`` = absolute path)."""

    @classmethod
    def from_uri(
        cls, uri: str, credentials: SFTPCredentials, *, staging_root: Path | None = None
    ) -> SFTPExchangeArea:
        """Area at ``sftp://[user@]host[:port]/path``; the URI's port and user are used when given.

        Raises:
            ValueError: Not an ``sftp://`` URI, or no host or path in it.
        """
        if not is_sftp_uri(uri):
            raise ValueError(f"not an sftp:// URI: {uri!r}")
        parts = urlsplit(uri)
        root = unquote(parts.path).rstrip("/")
        if not parts.hostname or not root:
            raise ValueError(f"sftp:// URI needs a host and a path: {uri!r}")
        if parts.username and not credentials.username:
            credentials = replace(credentials, username=unquote(parts.username))
        port = parts.port or credentials.port or DEFAULT_PORT
        return cls(SFTPFiles(parts.hostname, port, credentials), root, staging_root)


__all__ = ["SFTPConnectError", "SFTPCredentials", "SFTPExchangeArea", "SFTPFiles", "connect", "is_sftp_uri"]

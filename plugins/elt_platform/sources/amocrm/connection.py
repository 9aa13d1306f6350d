"""Read the ``amocrm_default`` Airflow connection: base URL, account key, auth mode and its secrets.

Two auth modes, chosen by the connection's fields (``extra.auth`` forces one):

* **private integration** (long-lived token): ``password`` = the token; ``login`` empty;
* **OAuth 2.0** (public or private integration with an authorization code): ``login`` = client id (the
  integration's "ID интеграции"), ``password`` = client secret, ``extra.redirect_uri`` = the redirect URI
  registered with the integration. Token pairs live in the state store, never in the connection.

The host may be ``example`` (a subdomain of amocrm.ru), ``example.amocrm.ru``, ``https://example.kommo.com``,
``https://example.amocrm.ru/api/v4/`` or a sandbox URL such as ``http://127.0.0.1:8766/api/v4/``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from elt_platform.http.accounts import connection_limits
from elt_platform.http.redaction import MASK
from elt_platform.sources.amocrm.settings import (
    API_PATH,
    AUTH_LONG_LIVED,
    AUTH_OAUTH,
    CONN_ID,
    DEFAULT_BURST,
    DEFAULT_DOMAIN,
    DEFAULT_REQUESTS_PER_SECOND,
    TOKEN_PATH,
)


def _is_bare_subdomain(netloc: str) -> bool:
    host = netloc.rsplit(":", 1)[0]
    if "." in host or host == "localhost":
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


def build_base_url(host: str | None, *, port: int | None = None, schema: str | None = None) -> str:
    """The API base URL (``…/api/v4/``) from the parts of an Airflow connection.

    Args:
        host: The connection host (see the module docstring for the accepted forms).
        port: The connection port, added when the host has none.
        schema: ``http``/``https`` is taken as the scheme when the host has none (Airflow ``HttpHook``
            convention); anything else is ignored.

    Returns:
        An absolute URL ending in ``/`` (``https://example.amocrm.ru/api/v4/``).

    Raises:
        ValueError: The host is empty.
    """
    host = (host or "").strip()
    if not host:
        raise ValueError(
            f"the {CONN_ID} connection has no host: "
            "set it to https://<subdomain>.amocrm.ru (or a sandbox URL)"
        )
    scheme = (schema or "").strip().lower()
    scheme = scheme if scheme in ("http", "https") else "https"
    if "://" in host:
        parts = urlsplit(host)
        scheme, netloc, path = parts.scheme.lower(), parts.netloc, parts.path
    else:
        netloc, _, path = host.partition("/")
        path = "/" + path
    if _is_bare_subdomain(netloc):
        netloc = f"{netloc}.{DEFAULT_DOMAIN}"
    if port and urlsplit(f"//{netloc}").port is None:
        netloc = f"{netloc}:{port}"
    path = path.strip("/")
    if not path.endswith(API_PATH.strip("/")):
        path = f"{path}/{API_PATH.strip('/')}".strip("/")
    return f"{scheme}://{netloc}/{path}/"


def account_for(base_url: str) -> str:
    """The account key of a base URL (``amocrm:<host>``): keys the shared budget, breaker and tokens."""
    return f"amocrm:{urlsplit(base_url).netloc}"


def token_url(base_url: str) -> str:
    """The OAuth token endpoint beside a base URL (``https://example.amocrm.ru/oauth2/access_token``)."""
    parts = urlsplit(base_url)
    prefix = parts.path[: -len(API_PATH)] if parts.path.endswith(API_PATH) else ""
    return f"{parts.scheme}://{parts.netloc}{prefix}{TOKEN_PATH}"


@dataclass(frozen=True, repr=False)
class ConnectionConfig:
    """What the client needs from the connection.

    Attributes:
        base_url: API root ending in ``/api/v4/``.
        account: ``amocrm:<host>``.
        auth: :data:`~.settings.AUTH_LONG_LIVED` or :data:`~.settings.AUTH_OAUTH`.
        secret: The long-lived token, or the OAuth client secret.
        client_id: OAuth client id (None for a long-lived token).
        redirect_uri: OAuth redirect URI (None for a long-lived token).
        requests_per_second: The account's request rate (``extra.requests_per_second``).
        burst: Requests allowed back to back (``extra.burst``).
        max_retries: ``extra.max_retries``, or None for the client's default.
    """

    base_url: str
    account: str
    auth: str
    secret: str
    client_id: str | None = None
    redirect_uri: str | None = None
    requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND
    burst: int = DEFAULT_BURST
    max_retries: int | None = None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, account={self.account!r}, "
            f"auth={self.auth!r}, secret={MASK!r}, client_id={self.client_id!r}, "
            f"redirect_uri={self.redirect_uri!r})"
        )

    __str__ = __repr__

    @property
    def token_url(self) -> str:
        """The OAuth token endpoint of the account."""
        return token_url(self.base_url)

    @classmethod
    def from_connection(cls, conn: Any) -> ConnectionConfig:
        """Read an Airflow connection (or anything with ``host``, ``login``, ``password``, ``extra_dejson``).

        Raises:
            ValueError: No host, no password, an unknown ``extra.auth``, or OAuth without
                ``extra.redirect_uri`` (messages never quote a secret).
        """
        extra: Mapping[str, Any] = getattr(conn, "extra_dejson", None) or {}
        base_url = build_base_url(
            getattr(conn, "host", None),
            port=getattr(conn, "port", None),
            schema=getattr(conn, "schema", None),
        )
        login = (getattr(conn, "login", None) or "").strip() or None
        secret = getattr(conn, "password", None) or ""
        auth = extra.get("auth") or (AUTH_OAUTH if login else AUTH_LONG_LIVED)
        if auth not in (AUTH_LONG_LIVED, AUTH_OAUTH):
            raise ValueError(
                f"{CONN_ID}: extra.auth must be {AUTH_LONG_LIVED!r} or {AUTH_OAUTH!r}, got {auth!r}"
            )
        if not secret:
            what = "long-lived token" if auth == AUTH_LONG_LIVED else "OAuth client secret"
            raise ValueError(f"{CONN_ID}: the connection's password (the {what}) is empty")
        redirect_uri = extra.get("redirect_uri")
        limits = connection_limits(extra, DEFAULT_REQUESTS_PER_SECOND, DEFAULT_BURST)
        if auth == AUTH_OAUTH and (not login or not redirect_uri):
            raise ValueError(
                f"{CONN_ID}: OAuth 2.0 needs login = client id, password = client secret and "
                "extra.redirect_uri = the integration's redirect URI"
            )
        return cls(
            base_url=base_url,
            account=account_for(base_url),
            auth=auth,
            secret=secret,
            client_id=login if auth == AUTH_OAUTH else None,
            redirect_uri=redirect_uri if auth == AUTH_OAUTH else None,
            requests_per_second=limits.requests_per_second,
            burst=limits.burst,
            max_retries=limits.max_retries,
        )

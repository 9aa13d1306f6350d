"""Read the ``crm_bitrix24`` Airflow connection: the incoming-webhook URL, the account key, the limits.

A Bitrix24 incoming webhook is a URL whose path carries the credential: ``https://<portal>/rest/<user id>/
<token>/``. The connection holds it in one of two ways:

* ``host`` = ``https://<portal>/rest/<user id>/`` and ``password`` = the token (the ``.env.example`` form:
  Airflow encrypts the password, and the UI masks it);
* ``host`` = the whole webhook URL and no password.

A host without a scheme gets the connection's ``schema`` when that is ``http``/``https``, else ``https``; a
``port`` is added when the host has none (the local sandbox). ``extra`` may set ``requests_per_second``,
``burst`` (Enterprise plans: 5 and 250) and ``max_retries``. No message here quotes the token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from elt_platform.destinations.bitrix24.settings import (
    ACCOUNT_PREFIX,
    CONN_ID,
    DEFAULT_BURST,
    DEFAULT_REQUESTS_PER_SECOND,
)
from elt_platform.http.accounts import connection_limits
from elt_platform.http.redaction import MASK

_EXPECTED = "https://<portal>/rest/<user id>/ with the webhook token as password"


def account_for(url: str) -> str:
    """The account key of a portal (``bitrix24:<host[:port]>``): keys the shared budget and breaker.

    Bitrix24 counts its leaky bucket per portal, so every webhook of one portal shares one budget.
    """
    return f"{ACCOUNT_PREFIX}:{urlsplit(url).netloc.lower()}"


def webhook_url(
    host: str | None, password: str | None, *, port: int | None = None, schema: str | None = None
) -> str:
    """The incoming-webhook URL from the parts of a connection.

    Args:
        host: ``https://<portal>/rest/<user id>/`` (token in ``password``) or the whole webhook URL.
        password: The webhook token, or empty when ``host`` holds it.
        port: Added when the host has none.
        schema: ``http``/``https`` is the scheme of a host written without one; anything else is ignored.

    Returns:
        ``<scheme>://<host>/rest/<user id>/<token>/``.

    Raises:
        ValueError: No host, no ``/rest/<user id>/`` in it, no token anywhere, or two different tokens
            (messages name the host, never the token).
    """
    host = (host or "").strip()
    if not host:
        raise ValueError(f"the {CONN_ID} connection has no host: set it to {_EXPECTED}")
    scheme = (schema or "").strip().lower()
    if "://" not in host:
        host = f"{scheme if scheme in ('http', 'https') else 'https'}://{host}"
    parts = urlsplit(host)
    netloc = parts.netloc.lower()  # host names are case-insensitive; one portal, one account key
    if port and parts.port is None:
        netloc = f"{netloc}:{port}"
    segments = [segment for segment in parts.path.split("/") if segment]
    rest = segments.index("rest") if "rest" in segments else -1
    tail = segments[rest + 1 :] if rest >= 0 else []
    if not tail:
        raise ValueError(
            f"the {CONN_ID} connection's host ({parts.hostname!r}) has no /rest/<user id>/ path: {_EXPECTED}"
        )
    token = (password or "").strip()
    if len(tail) == 1:
        if not token:
            raise ValueError(f"the {CONN_ID} connection's password (the webhook token) is empty")
        segments = [*segments, token]
    else:
        if token and token != tail[1]:
            raise ValueError(
                f"the {CONN_ID} connection's host already holds a webhook token and its password another "
                "one: keep the token in one place"
            )
        segments = segments[: rest + 3]
    return urlunsplit((parts.scheme.lower(), netloc, "/" + "/".join(segments) + "/", "", ""))


@dataclass(frozen=True, repr=False)
class ConnectionConfig:
    """What the client needs from the connection.

    Attributes:
        webhook_url: ``https://<portal>/rest/<user id>/<token>/`` (a secret: never log it).
        account: ``bitrix24:<portal host>``.
        requests_per_second: The portal's drain rate (``extra.requests_per_second``, default 2).
        burst: The portal's bucket (``extra.burst``, default 48: the portal's 50 minus a margin).
        max_retries: ``extra.max_retries``, or None for the HTTP layer's default.
    """

    webhook_url: str
    account: str
    requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND
    burst: int = DEFAULT_BURST
    max_retries: int | None = None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(webhook_url={MASK!r}, account={self.account!r}, "
            f"requests_per_second={self.requests_per_second!r}, burst={self.burst!r})"
        )

    __str__ = __repr__

    @classmethod
    def from_connection(cls, conn: Any) -> ConnectionConfig:
        """Read an Airflow connection (or anything with ``host``, ``password``, ``port``, ``schema``,
        ``extra_dejson``).

        Raises:
            ValueError: See :func:`webhook_url`.
        """
        url = webhook_url(
            getattr(conn, "host", None),
            getattr(conn, "password", None),
            port=getattr(conn, "port", None),
            schema=getattr(conn, "schema", None),
        )
        extra: Mapping[str, Any] = getattr(conn, "extra_dejson", None) or {}
        limits = connection_limits(extra, DEFAULT_REQUESTS_PER_SECOND, DEFAULT_BURST)
        return cls(
            webhook_url=url,
            account=account_for(url),
            requests_per_second=limits.requests_per_second,
            burst=limits.burst,
            max_retries=limits.max_retries,
        )

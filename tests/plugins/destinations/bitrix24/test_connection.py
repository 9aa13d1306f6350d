"""The crm_bitrix24 connection: where the webhook URL and its token may live, and what is refused."""

import pytest
from tests.plugins.destinations.bitrix24.conftest import TOKEN, Conn

from elt_platform.destinations.bitrix24.client import Bitrix24Client
from elt_platform.destinations.bitrix24.connection import ConnectionConfig

HOOK = f"https://example.bitrix24.kz/rest/1/{TOKEN}/"


@pytest.mark.parametrize(
    "conn",
    [
        Conn(host="https://example.bitrix24.kz/rest/1/", password=TOKEN),
        Conn(host="https://example.bitrix24.kz/rest/1", password=TOKEN),
        Conn(host=HOOK, password=None),
        Conn(host=HOOK.rstrip("/"), password=TOKEN),
        Conn(host="example.bitrix24.kz/rest/1/", password=TOKEN),
        Conn(host=f"https://EXAMPLE.bitrix24.kz/rest/1/{TOKEN}/crm.deal.list.json", password=""),
    ],
    ids=[
        "host-and-password",
        "no-trailing-slash",
        "whole-url",
        "whole-url-and-same-token",
        "no-scheme",
        "with-method",
    ],
)
def test_the_webhook_url_is_read_from_host_and_password(conn: Conn) -> None:
    config = ConnectionConfig.from_connection(conn)

    assert config.webhook_url == HOOK
    assert config.account == "bitrix24:example.bitrix24.kz"
    assert TOKEN not in repr(config)


def test_a_sandbox_host_keeps_its_scheme_and_gets_the_port() -> None:
    config = ConnectionConfig.from_connection(Conn(host="127.0.0.1/rest/7/", port=8770, schema="http"))

    assert config.webhook_url == f"http://127.0.0.1:8770/rest/7/{TOKEN}/"
    assert config.account == "bitrix24:127.0.0.1:8770"


@pytest.mark.parametrize(
    ("extra", "limits"),
    # Default burst: 2 calls below the portal's 50, so that the portal never sees the client's drained
    # bucket a hair early; the connection's extra overrides it as it is.
    [({}, (2.0, 48, None)), ({"requests_per_second": 5, "burst": 248, "max_retries": 2}, (5.0, 248, 2))],
    ids=["defaults", "enterprise"],
)
def test_the_portals_limits_come_from_extra(extra: dict, limits: tuple) -> None:
    config = ConnectionConfig.from_connection(Conn(extra_dejson=extra))

    assert (config.requests_per_second, config.burst, config.max_retries) == limits


@pytest.mark.parametrize(
    ("conn", "message"),
    [
        (Conn(host=None), "no host"),
        (Conn(host="https://example.bitrix24.kz/", password=TOKEN), "no /rest/<user id>/"),
        (Conn(host="https://example.bitrix24.kz/rest/1/", password=None), "password"),
        (Conn(host=HOOK, password="another-token-1234"), "keep the token in one place"),
    ],
    ids=["no-host", "no-rest-path", "no-token", "two-tokens"],
)
def test_an_incomplete_connection_is_refused_without_quoting_the_token(conn: Conn, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        ConnectionConfig.from_connection(conn)

    assert TOKEN not in str(caught.value) and "another-token" not in str(caught.value)


def test_a_client_from_a_connection_masks_the_token_in_its_repr() -> None:
    client = Bitrix24Client.from_connection(connection=Conn(), limits=(None, None))

    assert client.account == "bitrix24:example.bitrix24.kz"
    assert TOKEN not in repr(client) and "***" in repr(client)
    client.close()

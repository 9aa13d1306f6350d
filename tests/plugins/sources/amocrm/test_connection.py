"""Reading the amocrm_default connection: base URL, account key, token endpoint, auth mode."""

import pytest
from tests.plugins.sources.amocrm.conftest import Conn

from elt_platform.sources.amocrm.connection import ConnectionConfig, account_for, build_base_url, token_url


@pytest.mark.parametrize(
    ("host", "port", "schema", "expected"),
    [
        ("example", None, None, "https://example.amocrm.ru/api/v4/"),
        ("example.amocrm.ru", None, None, "https://example.amocrm.ru/api/v4/"),
        ("https://example.amocrm.ru", None, None, "https://example.amocrm.ru/api/v4/"),
        ("https://example.amocrm.ru/api/v4", None, None, "https://example.amocrm.ru/api/v4/"),
        ("https://example.kommo.com/api/v4/", None, None, "https://example.kommo.com/api/v4/"),
        ("http://127.0.0.1:8766/api/v4/", None, None, "http://127.0.0.1:8766/api/v4/"),
        ("127.0.0.1", 8766, "http", "http://127.0.0.1:8766/api/v4/"),
        ("http://localhost:9000/amocrm", None, None, "http://localhost:9000/amocrm/api/v4/"),
    ],
)
def test_base_url_from_connection_host(
    host: str, port: int | None, schema: str | None, expected: str
) -> None:
    assert build_base_url(host, port=port, schema=schema) == expected


def test_account_and_token_endpoint_follow_the_host() -> None:
    assert account_for("https://example.amocrm.ru/api/v4/") == "amocrm:example.amocrm.ru"
    assert token_url("https://example.amocrm.ru/api/v4/") == "https://example.amocrm.ru/oauth2/access_token"
    assert (
        token_url("http://localhost:9000/amocrm/api/v4/")
        == "http://localhost:9000/amocrm/oauth2/access_token"
    )


def test_password_alone_is_a_long_lived_token() -> None:
    config = ConnectionConfig.from_connection(Conn(extra_dejson={"requests_per_second": 3, "burst": 2}))

    assert (config.auth, config.secret, config.client_id) == ("long_lived_token", "long-lived-9f3a7c", None)
    assert (config.requests_per_second, config.burst) == (3.0, 2)
    assert "long-lived-9f3a7c" not in repr(config)


def test_login_and_redirect_uri_make_an_oauth_connection() -> None:
    conn = Conn(
        login="client-id", password="client-secret-77", extra_dejson={"redirect_uri": "https://x.kz/cb"}
    )

    config = ConnectionConfig.from_connection(conn)

    assert (config.auth, config.client_id, config.redirect_uri) == ("oauth2", "client-id", "https://x.kz/cb")
    assert config.token_url == "https://example.amocrm.ru/oauth2/access_token"
    assert "client-secret-77" not in repr(config) and "client-secret-77" not in str(config)


@pytest.mark.parametrize(
    ("conn", "match"),
    [
        (Conn(host=""), "has no host"),
        (Conn(password=""), "long-lived token"),
        (Conn(login="client-id", password="s3cret-value"), "redirect_uri"),
        (Conn(extra_dejson={"auth": "basic"}), "extra.auth"),
    ],
)
def test_incomplete_connections_are_refused_without_quoting_secrets(conn: Conn, match: str) -> None:
    with pytest.raises(ValueError, match=match) as caught:
        ConnectionConfig.from_connection(conn)

    assert conn.password is None or conn.password == "" or conn.password not in str(caught.value)

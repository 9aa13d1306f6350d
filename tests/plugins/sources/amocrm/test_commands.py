"""``elt amocrm-auth --code CODE`` end to end: connection from the environment, token endpoint, state."""

import argparse
import json

import pytest
from tests.plugins.http.scripted_server import Reply, ScriptedServer, fixture_bytes

from elt_platform.sources.amocrm.commands import register
from elt_platform.state.store import open_state_store
from elt_platform.state.tokens import TokenStore

TOKENS = fixture_bytes("amocrm/ogi4i_amocrm-client/oauth.access_token.json")


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="elt")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def connection(server: ScriptedServer, tmp_path, monkeypatch: pytest.MonkeyPatch):
    def define(**fields: object) -> str:
        monkeypatch.setenv("AIRFLOW_CONN_AMOCRM_DEFAULT", json.dumps({"conn_type": "http", **fields}))
        return "amocrm:" + server.url.split("/")[2]

    monkeypatch.setenv("ELT_STATE_DB_URL", f"sqlite:///{tmp_path / 'state.db'}")
    return define


OAUTH = {"login": "client-1", "password": "cs-5e0b7d21a9", "extra": {"redirect_uri": "https://x.kz/cb"}}


def test_auth_stores_the_first_pair(
    server: ScriptedServer, connection, capsys: pytest.CaptureFixture
) -> None:
    account = connection(host=server.url, **OAUTH)
    server.script(Reply(200, TOKENS, "application/json"))

    assert _run(["amocrm-auth", "--code", "def502-code"]) == 0

    out = capsys.readouterr().out  # importing Airflow routes library log lines to stdout here too
    assert out.splitlines()[-1].startswith(f"✔ {account} authorised") and "ACCESS_TOKEN_VALUE" not in out
    assert json.loads(server.received[0].body)["code"] == "def502-code"
    assert TokenStore(open_state_store(), account).get().refresh_token == "REFRESH_TOKEN_VALUE"


def test_a_refused_code_is_one_line_without_secrets(
    server: ScriptedServer, connection, capsys: pytest.CaptureFixture
) -> None:
    connection(host=server.url, **OAUTH)
    expired = {"title": "Некорректный запрос", "status": 400, "hint": "Authorization code has expired"}
    server.script(Reply(400, expired, "application/problem+json"))

    assert _run(["amocrm-auth", "--code", "def502-code"]) == 1

    # Importing Airflow binds its log handler to the stream of the test that imported it first: only the
    # command's own line (the last) is asserted on.
    line = capsys.readouterr().err.splitlines()[-1]
    assert line.startswith("✘ amocrm_default:") and "re-authorise" in line
    assert "cs-5e0b7d21a9" not in line and "def502-code" not in line


def test_a_long_lived_token_connection_has_nothing_to_authorise(
    server: ScriptedServer, connection, capsys: pytest.CaptureFixture
) -> None:
    connection(host=server.url, password="lt-0a1b2c3d4e5f")

    assert _run(["amocrm-auth", "--code", "x"]) == 1

    assert "long-lived token" in capsys.readouterr().err.splitlines()[-1] and server.count == 0

"""The state-store CLI: each command's output lines, and no token value ever printed."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime

import pytest

from elt_platform.state.breaker import CircuitBreaker
from elt_platform.state.commands import register
from elt_platform.state.ledger import TransformLedger
from elt_platform.state.store import StateStore, open_state_store
from elt_platform.state.tokens import TokenPair, TokenStore
from elt_platform.state.watermarks import set_watermark


@pytest.fixture
def cli_store(sqlite_url: str, monkeypatch: pytest.MonkeyPatch):
    """The store the commands open, selected through ``ELT_STATE_DB_URL``."""
    monkeypatch.setenv("ELT_STATE_DB_URL", sqlite_url)
    store = open_state_store()
    yield store
    store.close()


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    parser = argparse.ArgumentParser(prog="elt")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["breaker", "list"], ["no circuit breakers"]),
        (["budget", "list"], ["no request budgets"]),
        (["ledger", "list"], ["no ledger entries"]),
        (["watermark", "list"], ["no watermarks"]),
        (["token", "list"], ["no token pairs"]),
        (["state", "upgrade"], None),
    ],
)
def test_commands_on_an_empty_store(cli_store: StateStore, capsys, argv, expected) -> None:
    if expected is None:
        expected = [f"state store {cli_store.display_url} at revision 0003 (head 0003)"]
    assert run(argv, capsys) == expected


def test_breaker_list_and_reset(cli_store: StateStore, capsys) -> None:
    CircuitBreaker(cli_store, "amocrm:main").open("HTTP 401 invalid_grant")
    opened_at = CircuitBreaker(cli_store, "amocrm:main").status()["opened_at"]

    assert run(["breaker", "list"], capsys) == [
        f"amocrm:main  OPEN since {opened_at:%Y-%m-%d %H:%M:%S} UTC: HTTP 401 invalid_grant"
    ]
    assert run(["breaker", "reset", "amocrm:main"], capsys) == ["closed the circuit breaker of amocrm:main"]
    assert run(["breaker", "reset", "amocrm:main"], capsys) == [
        "the circuit breaker of amocrm:main was not open"
    ]
    assert CircuitBreaker(cli_store, "amocrm:main").status()["state"] == "closed"


def test_token_list_shows_account_and_expiry_only(cli_store: StateStore, capsys) -> None:
    TokenStore(cli_store, "amocrm:main").save(
        TokenPair("secret-access", "secret-refresh", datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))
    )

    [line] = run(["token", "list"], capsys)

    assert line.startswith("amocrm:main  expires 2030-01-02 03:04:05 UTC  (saved ")
    assert "secret" not in line


def test_ledger_list_filters_by_domain(cli_store: StateStore, capsys) -> None:
    for domain in ("attendance", "payroll"):
        TransformLedger(cli_store, domain).record(
            "alaqan", "2025-03-01", start=date(2025, 3, 1), end=date(2025, 3, 2), run_id="extract-1"
        )
    TransformLedger(cli_store, "payroll").mark_ready("alaqan", ["2025-03-01"], run_id="extract-1")
    TransformLedger(cli_store, "payroll").claim("transform-1")

    assert run(["ledger", "list", "--domain", "payroll"], capsys) == [
        "payroll  alaqan  2025-03-01  2025-03-01..2025-03-02  claimed by transform-1  run extract-1"
    ]
    assert len(run(["ledger", "list"], capsys)) == 2


def test_watermark_and_budget_lists(cli_store: StateStore, capsys) -> None:
    from elt_platform.state.budget import RequestBudget

    set_watermark(cli_store, "amocrm:leads", "2025-03-01T00:00:00Z")
    RequestBudget(cli_store, "amocrm:main", rate=7.0, burst=3).acquire()

    [watermark] = run(["watermark", "list"], capsys)
    [budget] = run(["budget", "list"], capsys)

    assert watermark.startswith("amocrm:leads = 2025-03-01T00:00:00Z  (updated ")
    assert budget.startswith("amocrm:main  rate 7/s  burst 3  balance 2.")

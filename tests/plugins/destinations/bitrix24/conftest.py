"""Fixtures of the Bitrix24 client tests: recorded bodies, a webhook on the scripted server, batch answers.

Recorded bodies come from ``../shared/fixtures/bitrix24/`` (official doc examples and real portal captures);
a missing file fails the test. Expected values are read from those files in the tests, not from the client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from tests.plugins.http.budgets import CountingBudget
from tests.plugins.http.scripted_server import Received, ScriptedServer, fixture_bytes, fresh_script, server

from elt_platform.destinations.bitrix24.client import Bitrix24Client

__all__ = ["fresh_script", "server"]  # the HTTP tests' fixtures: pytest finds them as this conftest's names

DOCS = "b24-rest-docs"
REAL = "fast_bitrix24_real_responses"
#: Long enough that the redactor masks it wherever it appears, not only as a whole token.
TOKEN = "wh9k2f7q1x8z3m5p"


def recorded(path: str) -> Any:
    """A recorded Bitrix24 body, decoded (``"b24-rest-docs/crm.deal.list.200.json"``)."""
    return json.loads(fixture_bytes(f"bitrix24/{path}"))


def sent(request: Received) -> dict[str, Any]:
    """The JSON body a request carried."""
    return json.loads(request.body)


def batch_answer(
    results: Mapping[str, Any],
    *,
    errors: Any = (),
    totals: Mapping[str, int] | None = None,
    nexts: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """A ``batch`` answer as PHP serialises it: empty maps as ``[]``."""
    return {
        "result": {
            "result": dict(results) or [],
            "result_error": errors or [],
            "result_total": dict(totals or {}) or [],
            "result_next": dict(nexts or {}) or [],
            "result_time": [],
        },
        "time": recorded(f"{DOCS}/crm.deal.list.200.json")["time"],
    }


@dataclass
class Conn:
    """The attributes of an Airflow connection the destination reads."""

    host: str | None = "https://example.bitrix24.kz/rest/1/"
    password: str | None = TOKEN
    extra_dejson: dict[str, Any] = field(default_factory=dict)
    port: int | None = None
    schema: str | None = None


def webhook(server: ScriptedServer) -> str:
    """The webhook URL of a portal served by ``server``."""
    return f"{server.url}rest/1/{TOKEN}/"


@pytest.fixture
def budget() -> CountingBudget:
    """A request budget that never waits and counts its charges."""
    return CountingBudget()


@pytest.fixture
def slept() -> list[float]:
    """What the client slept (backoff, OPERATION_TIME_LIMIT pauses): recorded, never waited."""
    return []


@pytest.fixture
def client(server: ScriptedServer, budget: CountingBudget, slept: list[float]):
    """A client of the scripted portal, charging ``budget``, sleeping into ``slept``."""
    with Bitrix24Client(webhook(server), limits=(budget, None), sleep=slept.append) as made:
        yield made


@pytest.fixture
def state_store(tmp_path):
    """A migrated SQLite state store of its own (the shared request budgets live there)."""
    from elt_platform.state.store import StateStore

    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.upgrade()
    yield store
    store.close()

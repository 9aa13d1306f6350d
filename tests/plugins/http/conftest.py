"""Fixtures of the HTTP-layer tests: one scripted server per module, its script cleared before each test."""

from collections.abc import Iterator

import pytest
from tests.plugins.http.scripted_server import ScriptedServer


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    running = ScriptedServer().start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(autouse=True)
def _fresh_script(request: pytest.FixtureRequest) -> None:
    if "server" in request.fixturenames:
        request.getfixturevalue("server").script()

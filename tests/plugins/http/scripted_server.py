"""A scripted HTTP server on 127.0.0.1, its fixtures and the shared recorded API bodies, for HTTP tests.

Imported as ``tests.plugins.http.scripted_server``: this folder has no ``__init__.py`` on purpose, since
pytest's default import mode would turn it into a top-level package named ``http``, hiding the stdlib's.

The server answers each request with the next scripted :class:`Reply` (status, headers, body, an optional
delay or a body cut short) and records what reached it, so tests count requests server-side and check
which credential was actually sent; a subclass may answer from state instead (override ``_reply``).
A conftest imports :func:`server` and :func:`fresh_script`: one server per module, cleared before each
test. Real amoCRM and Bitrix24 bodies come from ``../shared/fixtures`` (outside the repo); a missing
file fails the test instead of skipping it.
"""

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest


def _repo_root() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file() and (parent / "plugins").is_dir():
            return parent
    raise RuntimeError(f"no repository root above {__file__}")


SHARED_FIXTURES = (_repo_root() / ".." / "shared" / "fixtures").resolve()


def fixture_bytes(relative: str) -> bytes:
    """The bytes of a shared recorded body, e.g. ``"amocrm/github_issues/error.401.unauthorized.json"``."""
    path = SHARED_FIXTURES / relative
    if not path.is_file():
        pytest.fail(f"shared fixture missing: {path} (the ../shared/fixtures checkout is required)")
    return path.read_bytes()


@dataclass
class Reply:
    """One scripted answer.

    Attributes:
        status: HTTP status.
        body: Bytes as sent; a str is UTF-8 encoded, anything else JSON-encoded.
        content_type: ``Content-Type``; None sends none.
        headers: Extra headers.
        delay: Seconds to wait before answering (client read timeouts).
        truncate: Announce more bytes than are sent, then close (a body cut mid-transfer).
    """

    status: int = 200
    body: Any = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    truncate: bool = False

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass(frozen=True)
class Received:
    """A request as the server saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class ScriptedServer:
    """A threaded HTTP/1.0 server answering from a script; the last reply repeats when the script runs out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script: list[Reply] = []
        self.received: list[Received] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                reply = owner._reply(
                    Received(self.command, parts.path, parse_qs(parts.query), dict(self.headers), body)
                )
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.payload()
                self.send_response(reply.status)
                if reply.content_type is not None:
                    self.send_header("Content-Type", reply.content_type)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                announced = len(payload) + 100 if reply.truncate else len(payload)
                self.send_header("Content-Length", str(announced))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                # A client that timed out closes its socket while a delayed reply is still being written.
                pass

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>/``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def start(self) -> "ScriptedServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> "ScriptedServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies`` in order (the last one repeats); forget the past."""
        with self._lock:
            self._script = list(replies)
            self.received = []

    def _reply(self, request: Received) -> Reply:
        """Record ``request``; the next scripted reply."""
        with self._lock:
            self.received.append(request)
            if not self._script:
                return Reply(599, "no reply scripted", content_type="text/plain")
            return self._script.pop(0) if len(self._script) > 1 else self._script[0]

    @property
    def count(self) -> int:
        """Requests received since the last :meth:`script`."""
        with self._lock:
            return len(self.received)


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    """One running :class:`ScriptedServer` for the module."""
    with ScriptedServer() as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_script(request: pytest.FixtureRequest) -> None:
    """Clear the module's server (script and received requests) before each test that uses it."""
    if "server" in request.fixturenames:
        request.getfixturevalue("server").script()

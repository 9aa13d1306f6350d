"""Fixtures of the amoCRM source tests: recorded bodies, an in-memory API, a stateful fake amoCRM server.

Recorded bodies come from ``../shared/fixtures/amocrm/`` (doc examples copied verbatim into a Go client's
tests, and a real 401 body quoted in an issue); a missing file fails the test. No public recording
exists for users, custom-field definitions or events: those tests build bodies in the documented shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

import pytest
from tests.plugins.http.scripted_server import (
    Received,
    Reply,
    ScriptedServer,
    fixture_bytes,
    fresh_script,
    server,
)

from elt_platform.http.client import HttpResponse
from elt_platform.sources.amocrm.client import ClientStats, Page

FIXTURES = "amocrm/ogi4i_amocrm-client"
__all__ = ["fresh_script", "server"]  # the HTTP tests' fixtures: pytest finds them as this conftest's names


def recorded(name: str) -> Any:
    """A recorded amoCRM body, decoded (``leads.list.page2.json``…)."""
    return json.loads(fixture_bytes(f"{FIXTURES}/{name}"))


# Documented shapes (no public recording): amoCRM API v4 docs, users / custom fields / events.
USER = {
    "id": 504141,
    "name": "Менеджер",
    "email": "manager@example.kz",
    "lang": "ru",
    "rights": {"leads": {"view": "A", "edit": "A"}, "is_admin": False, "status_rights": []},
    "_links": {"self": {"href": "https://example.amocrm.ru/api/v4/users/504141"}},
}
CUSTOM_FIELD = {
    "id": 3,
    "name": "Телефон",
    "type": "multitext",
    "code": "PHONE",
    "sort": 4,
    "is_deletable": False,
    "enums": [{"id": 1, "value": "WORK", "sort": 2}, {"id": 3, "value": "MOB", "sort": 4}],
    "entity_type": "contacts",
}
EVENT = {
    "id": "01pz58t4p3k1nfp3ewkf2fhvs8",
    "type": "lead_status_changed",
    "entity_id": 19619,
    "entity_type": "lead",
    "created_by": 504141,
    "created_at": 1709290000,
    "value_after": [{"lead_status": {"id": 142, "pipeline_id": 1300}}],
    "value_before": [{"lead_status": {"id": 32392159, "pipeline_id": 1300}}],
    "account_id": 28805383,
}


@dataclass
class Conn:
    """The attributes of an Airflow connection the source reads."""

    host: str | None = "example.amocrm.ru"
    login: str | None = None
    password: str | None = "long-lived-9f3a7c"
    extra_dejson: dict[str, Any] = field(default_factory=dict)
    port: int | None = None
    schema: str | None = None


def epoch(day: date, hour: int = 12) -> int:
    """Unix seconds of ``day`` at ``hour`` UTC."""
    return int(datetime.combine(day, time(hour), tzinfo=UTC).timestamp())


@pytest.fixture
def state_store(tmp_path):
    """A migrated SQLite state store of its own."""
    from elt_platform.state.store import StateStore

    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.upgrade()
    yield store
    store.close()


def response(body: Any, *, status: int = 200, what: str = "page", content_type: str = "application/hal+json"):
    """An :class:`HttpResponse` as the client would get it (``body`` None: a 204 without body)."""
    content = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpResponse(
        status=204 if body is None and status == 200 else status,
        headers={"Content-Type": content_type},
        content=content,
        elapsed=0.0,
        url=f"http://fake/api/v4/{what}",
        what=what,
        redactor=lambda text: text,
    )


@dataclass
class FakeApi:
    """amoCRM in memory, for :func:`load_interval`: records per endpoint (and day), paged like the API.

    ``records[path]`` serves a snapshot endpoint; ``days[(path, day)]`` the records an incremental list
    returns for the UTC day its ``filter[...][from]`` names (malformed ones included, as sent). An empty
    selection answers 204 without a body. ``fail[path]`` raises instead of answering.
    """

    records: dict[str, list[Any]] = field(default_factory=dict)
    days: dict[tuple[str, date], list[Any]] = field(default_factory=dict)
    fail: dict[str, Exception] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    pages: int = 0
    no_content: int = 0

    def add(self, path: str, day: date, *records: Any) -> None:
        self.days.setdefault((path, day), []).extend(records)

    def _selection(self, path: str, params: Mapping[str, Any]) -> list[Any]:
        since = next((v for k, v in params.items() if k.endswith("[from]")), None)
        if since is None:
            return self.records.get(path, [])
        return self.days.get((path, datetime.fromtimestamp(since, UTC).date()), [])

    def iter_pages(self, path: str, params: Mapping[str, Any] | None = None, *, limit: int = 250):
        params = dict(params or {})
        if path in self.fail:
            raise self.fail[path]
        selection = self._selection(path, params)
        key = path.rsplit("/", 1)[-1]
        number = 1
        while True:
            self.calls.append((path, {**params, "page": number, "limit": limit}))
            self.pages += 1
            chunk = selection[(number - 1) * limit : number * limit]
            if not chunk:
                self.no_content += 1
                yield Page(number, response(None, what=f"{path} page {number}"))
                return
            links: dict[str, Any] = {"self": {"href": f"http://fake/api/v4/{path}?page={number}"}}
            if number * limit < len(selection):
                links["next"] = {"href": f"http://fake/api/v4/{path}?page={number + 1}"}
            body = {"_page": number, "_links": links, "_embedded": {key: chunk}}
            yield Page(number, response(body, what=f"{path} page {number}"))
            if "next" not in links:
                return
            number += 1

    @property
    def stats(self) -> ClientStats:
        return ClientStats(requests=self.pages, pages=self.pages, no_content=self.no_content)


class FakeAmoCrmServer(ScriptedServer):
    """A stateful amoCRM on 127.0.0.1: ``route(request) -> Reply`` answers each request (thread-safe).

    Unlike the scripted server it can keep state between requests (the valid access token, the refresh
    token that may be spent once), which is what a token-rotation race needs. A context manager.
    """

    def __init__(self, route: Callable[[Received], Reply]) -> None:
        super().__init__()
        self._route = route

    def _reply(self, request: Received) -> Reply:
        with self._lock:
            self.received.append(request)
        return self._route(request)  # outside the lock: a route may wait for other requests

    def paths(self, method: str | None = None) -> list[str]:
        with self._lock:
            return [r.path for r in self.received if method is None or r.method == method]

"""The amoCRM API v4 as a sandbox: routes, bearer/OAuth auth, HAL pages and problem+json errors.

API routes (GET, behind ``Authorization: Bearer <token>``; stats name them as in brackets):

* ``/api/v4/leads`` [leads], ``/contacts`` [contacts], ``/companies`` [companies], ``/tasks`` [tasks]:
  ``page``, ``limit`` (default 50, at most 250), ``filter[updated_at][from|to]`` and
  ``filter[created_at][from|to]`` (Unix seconds, inclusive), ``filter[id][]``, ``order[id|created_at|
  updated_at]=asc|desc`` (default ``id`` ascending), ``with=`` (leads: contacts, loss_reason; contacts:
  leads; companies: contacts, leads); tasks also ``filter[is_completed]``, ``filter[entity_type][]``.
  Leads always embed ``tags`` and ``companies``; contacts ``tags`` and ``companies``; companies ``tags``.
* ``/api/v4/events`` [events]: ``filter[created_at][from|to]``, ``filter[type][]`` (or comma-separated),
  ``filter[entity][]``, ``filter[entity_id][]``, ``order[created_at|id]``; newest first by default.
* ``/api/v4/leads/pipelines`` [pipelines] (``_total_items``, no ``_page``), ``/api/v4/users`` [users],
  ``/api/v4/{leads,contacts,companies}/custom_fields`` [custom_fields], ``/api/v4/account`` [account].
* ``POST /oauth2/access_token`` [oauth] (JSON or form body; see :mod:`~elt_platform.sandbox.amocrm.oauth`).
* Search and lead filters on the lists: ``query`` (names, custom-field values, phones by digits; see
  :mod:`~elt_platform.sandbox.amocrm.search`), ``filter[pipeline_id][]`` and
  ``filter[statuses][N][pipeline_id]``/``[status_id]`` (leads).
* Writes (a JSON array; validated whole, see :mod:`~elt_platform.sandbox.amocrm.payloads`):
  ``POST /api/v4/leads`` [leads_add] and ``/contacts`` [contacts_add] (≤ 250; ``_embedded.leads[]``/
  ``contacts[]`` of ``{id, request_id, _links}``), ``PATCH /api/v4/leads`` [leads_update] and
  ``/contacts`` [contacts_update] (≤ 250, each with ``id``; ``{id, updated_at, request_id, _links}``),
  ``PATCH /api/v4/leads/{id}`` [lead_update] (an object; answers ``{id, updated_at, _links}``),
  ``POST /api/v4/leads/complex`` [leads_complex] (≤ 50, one contact and one company per lead; answers a
  plain array of ``{id, contact_id, company_id, request_id: [..], merged}``). Invalid: 400
  problem+json with ``validation-errors``; a body that is not JSON: 400 "Invalid request body".

Pages are ``{"_page", "_links": {"self", "next" (only when there is one), "first"/"prev" (after page
1)}, "_embedded": {<entity>: [...]}}`` as ``application/hal+json`` with non-ASCII escaped as ``\\uXXXX``;
a page with nothing on it is ``204 No Content`` with an empty body. Errors are ``application/problem+
json``: 401 ``{"title": "Unauthorized", "type": "https://httpstatus.es/401", "status": 401, "detail"}``,
400 with ``validation-errors`` for bad parameters (``limit`` over 250), 429 beyond the per-integration
rate, 500 for an injected fault. A banned account (admin switch) gets nginx's HTML ``403 Forbidden``
page on every route, the token endpoint included.

Admin routes beyond the base ones (:mod:`elt_platform.sandbox.admin`): ``GET``/``POST /__sandbox/clock``
(``{"now": ISO-8601 with offset | Unix seconds}``), ``GET``/``PUT``/``POST /__sandbox/ban``
(``{"banned": bool}``), ``POST /__sandbox/oauth/code`` (``{"redirect_uri"?}`` → ``{"code"}``),
``GET /__sandbox/writes`` (entities written per endpoint), ``POST /__sandbox/create/{leads|contacts}``
(an array, as people create them → ``{"ids"}``), ``POST /__sandbox/leads/{id}/edit`` (fields, optional
``"by"``: a person's edit → the lead), ``GET /__sandbox/records/{entity}/{id}`` (the record now).
"""

import json
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from elt_platform.sandbox.admin import ADMIN_PREFIX
from elt_platform.sandbox.amocrm import account
from elt_platform.sandbox.amocrm.generator import EVENT_TYPES, AmoCrmDataset, ListQuery, WriteResult
from elt_platform.sandbox.amocrm.oauth import OAuthError, TokenStore
from elt_platform.sandbox.amocrm.payloads import Rejected
from elt_platform.sandbox.amocrm.records import event_record
from elt_platform.sandbox.app import Answer, Sandbox, retry_after_header
from elt_platform.sandbox.faults import FaultConfig
from elt_platform.sandbox.rate_limits import RateLimiter

API = "/api/v4"
OAUTH_PATH = "/oauth2/access_token"
HAL_JSON = "application/hal+json"
PROBLEM_JSON = "application/problem+json"
MAX_LIMIT = 250
DEFAULT_LIMIT = 50
#: What a blocked account gets instead of JSON (amocrm/amocrm-api-php#318, #434).
BAN_PAGE = (
    "<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n"
    "<center><h1>403 Forbidden</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_ENTITY_ORDER_FIELDS = ("id", "created_at", "updated_at")
_STATUS_FILTER = re.compile(r"filter\[statuses\]\[(\d+)\]\[(pipeline_id|status_id)\]")
_EVENT_ORDER_FIELDS = ("created_at", "id")


def _dumps(body: Any) -> bytes:
    # ensure_ascii (the default) writes Cyrillic as \uXXXX, as amoCRM does.
    return json.dumps(body, separators=(",", ":")).encode()


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    """An ``application/problem+json`` answer in amoCRM's shape."""
    body = {
        **extra,
        "title": title,
        "type": f"https://httpstatus.es/{status}",
        "status": status,
        "detail": detail,
    }
    return Response(_dumps(body), status_code=status, media_type=PROBLEM_JSON)


def _invalid(path: str, detail: str) -> Response:
    errors = [{"request_id": "0", "errors": [{"code": "InvalidValue", "path": path, "detail": detail}]}]
    return problem(400, "Bad Request", "Request validation failed", **{"validation-errors": errors})


class _BadParameter(Exception):
    def __init__(self, path: str, detail: str) -> None:
        super().__init__(detail)
        self.response = _invalid(path, detail)


def _int(raw: str, path: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise _BadParameter(path, "This value should be of type int.") from None


def _values(request: Request, name: str) -> list[str]:
    """Values of ``name`` and ``name[]`` (repeated or comma-separated)."""
    raw = request.query_params.getlist(name) + request.query_params.getlist(f"{name}[]")
    return [part for value in raw for part in value.split(",") if part != ""]


def _range(request: Request, name: str) -> tuple[int | None, int | None]:
    params = request.query_params
    low, high = params.get(f"filter[{name}][from]"), params.get(f"filter[{name}][to]")
    single = params.get(f"filter[{name}]")
    if low is None and single is not None:
        low = single
    return (
        None if low is None else _int(low, f"filter[{name}][from]"),
        None if high is None else _int(high, f"filter[{name}][to]"),
    )


def _order(request: Request, fields: tuple[str, ...], default: tuple[str, str]) -> tuple[str, str]:
    asked = [
        (key[6:-1], value) for key, value in request.query_params.multi_items() if key.startswith("order[")
    ]
    if not asked:
        return default
    field, direction = asked[0]
    if field not in fields:
        raise _BadParameter(f"order[{field}]", f"Sorting is available by: {', '.join(fields)}.")
    if direction not in ("asc", "desc"):
        raise _BadParameter(f"order[{field}]", "The value you selected is not a valid choice.")
    return field, direction


def _paging(request: Request) -> tuple[int, int]:
    page = _int(request.query_params.get("page", "1"), "page")
    limit = _int(request.query_params.get("limit", str(DEFAULT_LIMIT)), "limit")
    if page < 1:
        raise _BadParameter("page", "This value should be greater than or equal to 1.")
    if not 1 <= limit <= MAX_LIMIT:
        raise _BadParameter("limit", f"This value should be between 1 and {MAX_LIMIT}.")
    return page, limit


def _statuses(request: Request) -> frozenset[tuple[int, int]] | None:
    """``filter[statuses][N][pipeline_id]`` + ``[status_id]`` pairs; each N needs both."""
    pairs: dict[str, dict[str, int]] = {}
    for key, value in request.query_params.multi_items():
        found = _STATUS_FILTER.fullmatch(key)
        if found:
            pairs.setdefault(found.group(1), {})[found.group(2)] = _int(value, key)
    for position, pair in pairs.items():
        if set(pair) != {"pipeline_id", "status_id"}:
            missing = ({"pipeline_id", "status_id"} - set(pair)).pop()
            raise _BadParameter(f"filter[statuses][{position}][{missing}]", "This value should not be blank.")
    return frozenset((p["pipeline_id"], p["status_id"]) for p in pairs.values()) if pairs else None


def _entity_query(request: Request, entity: str) -> ListQuery:
    updated = _range(request, "updated_at")
    created = _range(request, "created_at")
    ids = _values(request, "filter[id]")
    completed = _values(request, "filter[is_completed]") if entity == "tasks" else []
    entity_types = _values(request, "filter[entity_type]") if entity == "tasks" else []
    pipelines = _values(request, "filter[pipeline_id]") if entity == "leads" else []
    search = request.query_params.get("query")
    return ListQuery(
        updated_from=updated[0],
        updated_to=updated[1],
        created_from=created[0],
        created_to=created[1],
        ids=frozenset(_int(i, "filter[id]") for i in ids) if ids else None,
        order=_order(request, _ENTITY_ORDER_FIELDS, ("id", "asc")),
        is_completed=completed[-1] in ("1", "true") if completed else None,
        entity_types=frozenset(entity_types) if entity_types else None,
        search=search if search and search.strip() else None,
        pipeline_ids=frozenset(_int(p, "filter[pipeline_id]") for p in pipelines) if pipelines else None,
        statuses=_statuses(request) if entity == "leads" else None,
    )


def _events_query(request: Request) -> ListQuery:
    created = _range(request, "created_at")
    types = _values(request, "filter[type]")
    entities = _values(request, "filter[entity]")
    entity_ids = _values(request, "filter[entity_id]")
    unknown = sorted(set(entities) - set(EVENT_TYPES))
    if unknown:
        raise _BadParameter("filter[entity]", f"Unknown entity: {unknown[0]}.")
    return ListQuery(
        created_from=created[0],
        created_to=created[1],
        types=frozenset(types) if types else None,
        entity_types=frozenset(entities) if entities else None,
        entity_ids=frozenset(_int(i, "filter[entity_id]") for i in entity_ids) if entity_ids else None,
        order=_order(request, _EVENT_ORDER_FIELDS, ("created_at", "desc")),
    )


def _root(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _links(request: Request, page: int, limit: int, has_next: bool) -> dict[str, Any]:
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("page", "limit")]
    prefix = "&".join(f"{quote(k, safe='[]')}={quote(v, safe=',')}" for k, v in kept)
    base = f"{_root(request)}{request.url.path}?{prefix + '&' if prefix else ''}limit={limit}&page="
    links = {"self": {"href": f"{base}{page}"}}
    if has_next:
        links["next"] = {"href": f"{base}{page + 1}"}
    if page > 1:
        links["first"] = {"href": f"{base}1"}
        links["prev"] = {"href": f"{base}{page - 1}"}
    return links


def _page_body(
    request: Request, entity: str, page: int, limit: int, items: list, total: int, **extra: Any
) -> bytes:
    body = {**extra, "_page": page, "_links": _links(request, page, limit, total > page * limit)}
    body["_embedded"] = {entity: items}
    return _dumps(body)


def _self(request: Request, path: str) -> dict[str, Any]:
    return {"self": {"href": f"{_root(request)}{API}/{path}"}}


def _written_body(request: Request, entity: str, results: list[WriteResult], *, updated: bool) -> bytes:
    """The answer of ``POST``/``PATCH /api/v4/<entity>``: ids (updates: and ``updated_at``) by request_id."""
    items = []
    for result in results:
        item: dict[str, Any] = {"id": result.id}
        if updated:
            item["updated_at"] = result.updated_at
        item["request_id"] = result.request_id
        item["_links"] = _self(request, f"{entity}/{result.id}")
        items.append(item)
    return _dumps({"_links": _self(request, entity), "_embedded": {entity: items}})


def _complex_body(results: list[WriteResult]) -> bytes:
    """The answer of ``POST /api/v4/leads/complex``: a plain array (no HAL envelope), as the docs show."""
    return _dumps(
        [
            {
                "id": r.id,
                "contact_id": r.contact_id,
                "company_id": r.company_id,
                "request_id": [r.request_id],
                "merged": False,  # the sandbox runs no duplicate control
            }
            for r in results
        ]
    )


class AmoCrmSandbox(Sandbox):
    """The amoCRM API over an :class:`AmoCrmDataset`, with OAuth, per-integration rate limit and ban."""

    name = "amocrm"
    api_path = API + "/"
    media_type = HAL_JSON

    def __init__(
        self,
        dataset: AmoCrmDataset,
        tokens: TokenStore,
        *,
        requests_per_second: float = 7.0,
        faults: FaultConfig | None = None,
        follow_wall_clock: bool = False,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """Create the sandbox.

        Args:
            dataset: The account's data and clock.
            tokens: Codes and tokens of the integration.
            requests_per_second: The per-integration limit (amoCRM: 7); refused with 429.
            faults: Faults in force at start.
            follow_wall_clock: Before each API request, advance the dataset's clock to the current minute
                (``make run`` / Airflow: data keeps arriving as real time passes).
            wall_clock: Seconds since the epoch, for ``follow_wall_clock``.
        """
        super().__init__(faults, rate_limiter=RateLimiter(requests_per_second))
        self.dataset = dataset
        self.tokens = tokens
        self.banned = False
        self.follow_wall_clock = follow_wall_clock
        self._wall_clock = wall_clock

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dataset={self.dataset!r}, banned={self.banned})"

    # --- hooks ---------------------------------------------------------------------------------------

    async def authenticate(self, request: Request) -> str | Response:
        if self.banned:
            return HTMLResponse(BAN_PAGE, status_code=403)
        if request.url.path == OAUTH_PATH:
            return "oauth"
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        client = self.tokens.identify(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
        if client is None:
            return problem(401, "Unauthorized", "Неверный логин или пароль")
        return client

    def too_many_requests(self, request: Request, retry_after: float | None) -> Response:
        response = problem(429, "Too Many Requests", "Превышен лимит запросов к API")
        response.headers.update(retry_after_header(retry_after))
        return response

    def server_error(self, request: Request) -> Response:
        return problem(500, "Internal Server Error", "Внутренняя ошибка сервера")

    def _tick(self) -> None:
        if not self.follow_wall_clock:
            return
        minute = int(self._wall_clock()) // 60 * 60
        if minute > self.dataset.clock:
            try:
                self.dataset.advance(minute)
            except ValueError:
                pass  # another request moved the clock further meanwhile

    # --- answers -------------------------------------------------------------------------------------

    async def _guarded(self, build: Callable[[], Answer]) -> Answer:
        """Run a CPU-bound page build off the event loop, turning a bad parameter into its 400."""
        try:
            return await run_in_threadpool(build)
        except _BadParameter as exc:
            return exc.response

    def _entity_page(self, request: Request, entity: str) -> Answer:
        page, limit = _paging(request)
        query = _entity_query(request, entity)
        with_ = set(_values(request, "with"))
        self._tick()
        numbers = self.dataset.select(entity, query)
        chunk = numbers[(page - 1) * limit : page * limit]
        if not chunk:
            return Response(status_code=204)
        items = self.dataset.render(entity, chunk, _root(request), with_)
        return _page_body(request, entity, page, limit, items, len(numbers))

    def _events_page(self, request: Request) -> Answer:
        page, limit = _paging(request)
        query = _events_query(request)
        self._tick()
        events = self.dataset.select_events(query)
        chunk = events[(page - 1) * limit : page * limit]
        if not chunk:
            return Response(status_code=204)
        root = _root(request)
        return _page_body(request, "events", page, limit, [event_record(e, root) for e in chunk], len(events))

    def _static_page(self, request: Request, entity: str, items: list) -> Answer:
        page, limit = _paging(request)
        chunk = items[(page - 1) * limit : page * limit]
        if not chunk:
            return Response(status_code=204)
        page_count = max(1, -(-len(items) // limit))
        return _page_body(
            request, entity, page, limit, chunk, len(items), _total_items=len(items), _page_count=page_count
        )

    async def _token(self, request: Request) -> Answer:
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                form = await request.json()
            except ValueError:
                form = None
        else:
            form = dict(await request.form())
        if not isinstance(form, dict):
            return problem(
                400, "Некорректный запрос", "В запросе отсутствует ряд параметров или параметры невалидны"
            )
        try:
            return JSONResponse(self.tokens.exchange({k: str(v) for k, v in form.items()}))
        except OAuthError as exc:
            return Response(_dumps(exc.body), status_code=exc.status, media_type=PROBLEM_JSON)

    async def _write(
        self,
        request: Request,
        entity: str,
        operation: str,
        answer: Callable[[list[WriteResult]], Answer],
        *,
        endpoint: str,
        target: str | None = None,
    ) -> Answer:
        """Decode, validate and apply a write body; 400 problem+json when amoCRM would refuse it."""
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            return problem(400, "Bad Request", "Invalid request body")
        if target is not None:  # PATCH /leads/{id}: one object, the id from the path
            if not target.isdigit():
                return problem(404, "Not Found", "Entity not found")
            body = [{**body, "id": int(target)}] if isinstance(body, dict) else [body]
        self._tick()
        try:
            results = await run_in_threadpool(self.dataset.write, entity, operation, body, endpoint=endpoint)
        except Rejected as exc:
            return problem(
                400,
                "Bad Request",
                "Request validation failed",
                **{"validation-errors": exc.validation_errors},
            )
        return answer(results)

    # --- routes --------------------------------------------------------------------------------------

    def add_routes(self, app: FastAPI) -> None:
        for entity in ("leads", "contacts", "companies", "tasks"):
            self._add_entity_route(app, entity)
        for entity in ("leads", "contacts", "companies"):
            self._add_custom_fields_route(app, entity)
        self._add_write_routes(app)

        @app.get(f"{API}/events")
        async def events(request: Request) -> Response:
            return await self.serve(
                request, "events", lambda: self._guarded(lambda: self._events_page(request))
            )

        @app.get(f"{API}/leads/pipelines")
        async def pipelines(request: Request) -> Response:
            async def answer() -> Answer:
                root = _root(request)
                items = [account.pipeline_body(p, root) for p in self.dataset.pipelines]
                body = {
                    "_total_items": len(items),
                    "_links": {"self": {"href": f"{root}{API}/leads/pipelines"}},
                }
                body["_embedded"] = {"pipelines": items}
                return _dumps(body)

            return await self.serve(request, "pipelines", answer)

        @app.get(f"{API}/users")
        async def users(request: Request) -> Response:
            items = [account.user_body(u, _root(request)) for u in self.dataset.users]
            return await self.serve(
                request, "users", lambda: self._guarded(lambda: self._static_page(request, "users", items))
            )

        @app.get(f"{API}/account")
        async def account_route(request: Request) -> Response:
            async def answer() -> Answer:
                return _dumps(
                    account.account_body(_root(request), set(_values(request, "with")), self.dataset.users)
                )

            return await self.serve(request, "account", answer)

        @app.post(OAUTH_PATH)
        async def access_token(request: Request) -> Response:
            return await self.serve(request, "oauth", lambda: self._token(request))

        self._add_admin_routes(app)

    def _add_entity_route(self, app: FastAPI, entity: str) -> None:
        @app.get(f"{API}/{entity}", name=entity)
        async def list_entities(request: Request) -> Response:
            return await self.serve(
                request, entity, lambda: self._guarded(lambda: self._entity_page(request, entity))
            )

    def _add_custom_fields_route(self, app: FastAPI, entity: str) -> None:
        @app.get(f"{API}/{entity}/custom_fields", name=f"{entity}_custom_fields")
        async def custom_fields(request: Request) -> Response:
            items = account.custom_fields_body(entity, _root(request), self.dataset.custom_fields[entity])
            return await self.serve(
                request,
                "custom_fields",
                lambda: self._guarded(lambda: self._static_page(request, "custom_fields", items)),
            )

    def _add_write_routes(self, app: FastAPI) -> None:
        # (method, path under /api/v4, entity, operation, route name = write counter name)
        batches: tuple[tuple[str, str, str, str, str], ...] = (
            ("POST", "leads", "leads", "add", "leads_add"),
            ("PATCH", "leads", "leads", "update", "leads_update"),
            ("POST", "contacts", "contacts", "add", "contacts_add"),
            ("PATCH", "contacts", "contacts", "update", "contacts_update"),
            ("POST", "leads/complex", "leads", "complex", "leads_complex"),
        )
        for method, path, entity, operation, route in batches:
            self._add_write_route(app, method, path, entity, operation, route)

        @app.patch(f"{API}/leads/{{lead_id}}", name="lead_update")
        async def update_lead(request: Request, lead_id: str) -> Response:
            def answer(results: list[WriteResult]) -> Answer:
                (result,) = results
                return _dumps(
                    {
                        "id": result.id,
                        "updated_at": result.updated_at,
                        "_links": _self(request, f"leads/{result.id}"),
                    }
                )

            return await self.serve(
                request,
                "lead_update",
                lambda: self._write(
                    request, "leads", "update", answer, endpoint="lead_update", target=lead_id
                ),
            )

    def _add_write_route(
        self, app: FastAPI, method: str, path: str, entity: str, operation: str, route: str
    ) -> None:
        def answer_for(request: Request) -> Callable[[list[WriteResult]], Answer]:
            if operation == "complex":
                return _complex_body
            return lambda results: _written_body(request, entity, results, updated=operation == "update")

        @app.api_route(f"{API}/{path}", methods=[method], name=route)
        async def write(request: Request) -> Response:
            return await self.serve(
                request,
                route,
                lambda: self._write(request, entity, operation, answer_for(request), endpoint=route),
            )

    def _add_admin_routes(self, app: FastAPI) -> None:
        @app.get(f"{ADMIN_PREFIX}/clock")
        async def get_clock() -> dict[str, Any]:
            return {"now": self.dataset.now.isoformat(), "unix": self.dataset.clock}

        @app.post(f"{ADMIN_PREFIX}/clock")
        async def set_clock(request: Request) -> Response:
            try:
                raw = (await request.json())["now"]
                target = raw if isinstance(raw, int) else datetime.fromisoformat(raw)
                await run_in_threadpool(self.dataset.advance, target)
            except (ValueError, TypeError, KeyError) as exc:
                return JSONResponse(
                    {"message": f"expected {{'now': ISO-8601 with offset | Unix seconds}}: {exc}"}, 422
                )
            counts = await run_in_threadpool(self.dataset.counts)
            return JSONResponse(
                {"now": self.dataset.now.isoformat(), "unix": self.dataset.clock, "counts": counts}
            )

        @app.get(f"{ADMIN_PREFIX}/ban")
        async def get_ban() -> dict[str, bool]:
            return {"banned": self.banned}

        @app.api_route(f"{ADMIN_PREFIX}/ban", methods=["PUT", "POST"])
        async def set_ban(request: Request) -> Response:
            try:
                banned = (await request.json())["banned"]
            except (ValueError, KeyError, TypeError):
                banned = None
            if not isinstance(banned, bool):
                return JSONResponse({"message": 'expected {"banned": true|false}'}, 422)
            self.banned = banned
            return JSONResponse({"banned": self.banned})

        @app.get(f"{ADMIN_PREFIX}/writes")
        async def get_writes() -> dict[str, Any]:
            return {"writes": self.dataset.written.writes()}

        @app.post(f"{ADMIN_PREFIX}/create/{{entity}}")
        async def create(entity: str, request: Request) -> Response:
            if entity not in ("leads", "contacts"):
                return JSONResponse({"message": "entity must be leads or contacts"}, 404)
            try:
                ids = await run_in_threadpool(self.dataset.create, entity, await request.json())
            except (ValueError, Rejected) as exc:
                return _admin_refusal(exc)
            return JSONResponse({"ids": ids})

        @app.post(f"{ADMIN_PREFIX}/leads/{{lead_id}}/edit")
        async def edit_lead(lead_id: int, request: Request) -> Response:
            try:
                fields = await request.json()
                by = fields.pop("by", None) if isinstance(fields, dict) else None
                lead = await run_in_threadpool(lambda: self.dataset.edit_lead(lead_id, by=by, **fields))
            except (ValueError, TypeError, Rejected) as exc:
                return _admin_refusal(exc)
            return JSONResponse(lead)

        @app.get(f"{ADMIN_PREFIX}/records/{{entity}}/{{entity_id}}")
        async def get_record(entity: str, entity_id: int) -> Response:
            try:
                return JSONResponse(self.dataset.record(entity, entity_id, with_=_WITH_ALL.get(entity, ())))
            except KeyError as exc:
                return JSONResponse({"message": str(exc)}, 404)

        @app.post(f"{ADMIN_PREFIX}/oauth/code")
        async def issue_code(request: Request) -> dict[str, str]:
            try:
                body = await request.json()
            except ValueError:
                body = {}
            redirect = body.get("redirect_uri") if isinstance(body, dict) else None
            return {"code": self.tokens.issue_code(redirect), "client_id": self.tokens.client_id}


#: Embeds of the admin record view: everything the list can embed.
_WITH_ALL = {"leads": ("contacts", "loss_reason"), "contacts": ("leads",), "companies": ("contacts", "leads")}


def _admin_refusal(exc: Exception) -> Response:
    """422 for an admin request amoCRM would refuse (with its ``validation-errors``) or that is malformed."""
    if isinstance(exc, Rejected):
        return JSONResponse({"message": "validation failed", "validation-errors": exc.validation_errors}, 422)
    return JSONResponse({"message": f"expected a JSON body in the API's write shape: {exc}"}, 422)

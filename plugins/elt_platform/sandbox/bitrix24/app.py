"""A Bitrix24 portal behind an incoming webhook, as a sandbox: routes, auth, limits and error bodies.

API route: ``GET|POST /rest/<user id>/<token>/<method>[.json]``. Parameters come from the query string
and the body — form-encoded PHP-style (``filter[UF_CRM_X]=…``, ``fields[PHONE][0][VALUE]=…``,
``select[]=ID``) or JSON — merged with the body winning. Answers are ``{"result", "next"?, "total"?,
"time"}`` or ``{"error", "error_description"}`` (see :mod:`~elt_platform.sandbox.bitrix24.errors`), PHP-
encoded (:mod:`~elt_platform.sandbox.bitrix24.php`). A wrong user id or token is 401 ``NO_AUTH_FOUND``.

Limits: one leaky bucket per portal (burst 50, draining 2/s; Enterprise 250 and 5/s): beyond it 503
``QUERY_LIMIT_EXCEEDED``. A ``batch`` is one request, whatever it holds. The shared faults answer
``"429"`` with that same 503 and ``"500"`` with ``INTERNAL_SERVER_ERROR``. Stats count HTTP requests
under the method's name (``batch`` once per request); :class:`~elt_platform.sandbox.bitrix24.methods.
RestApi` counts commands, batch commands included.

Admin routes beyond the base ones (:mod:`elt_platform.sandbox.admin`):

* ``GET /__sandbox/state``: ``{"contacts", "leads", "deals"}``, every record as ``crm.*.get`` shows it;
  ``DELETE``: empty the CRM;
* ``POST /__sandbox/seed``: ``{"contacts": [fields…], "leads": […], "deals": […]}`` → their new ids (system
  fields such as ``DATE_CREATE`` allowed; not counted as traffic);
* ``POST /__sandbox/deals/<id>/edit``: change a deal as a manager would (``{"STAGE_ID": "C2:UC_W4LIST"}``)
  → the deal;
* ``GET /__sandbox/calls``: command counts; ``?method=`` adds that method's commands with their params;
  ``DELETE`` resets them;
* ``GET|PUT|POST /__sandbox/bitrix24/faults``: :class:`~elt_platform.sandbox.bitrix24.faults.Bitrix24Faults`.
"""

import hmac
import json
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from elt_platform.sandbox.admin import ADMIN_PREFIX
from elt_platform.sandbox.app import Answer, Sandbox
from elt_platform.sandbox.bitrix24 import errors
from elt_platform.sandbox.bitrix24.errors import BitrixError
from elt_platform.sandbox.bitrix24.faults import Bitrix24Faults
from elt_platform.sandbox.bitrix24.methods import RestApi
from elt_platform.sandbox.bitrix24.php import Params, dumps, parse_query
from elt_platform.sandbox.bitrix24.portal import WEBHOOK_USER, Portal
from elt_platform.sandbox.faults import FaultConfig
from elt_platform.sandbox.rate_limits import RateLimiter

JSON = "application/json; charset=utf-8"
#: Leaky-bucket sizes (burst, drained per second) of the plans (docs ``limits.md``).
PLANS = {"standard": (50, 2.0), "enterprise": (250, 5.0)}
#: The rate limiter's key: the limit is per portal, whoever calls.
PORTAL_KEY = "portal"
_ENTITIES = {"contacts": "contact", "leads": "lead", "deals": "deal"}


def error_response(error: BitrixError) -> Response:
    """A Bitrix24 error answer with its status."""
    return Response(dumps(error.body()), status_code=error.status, media_type=JSON)


async def read_params(request: Request) -> Params:
    """The request's parameters: the query string, then the body (form or JSON) on top.

    A body that is not valid JSON, or not an object, adds nothing (PHP's ``json_decode`` gives up the same
    way, and the method then complains about what is missing).
    """
    params = parse_query(request.url.query)
    body = await request.body()
    if not body:
        return params
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            decoded = json.loads(body)
        except ValueError:
            return params
        return params | decoded if isinstance(decoded, dict) else params
    return params | parse_query(body.decode("utf-8", errors="replace"))


class Bitrix24Sandbox(Sandbox):
    """The Bitrix24 REST API over a :class:`Portal`, behind one incoming webhook."""

    name = "bitrix24"
    api_path = "/rest/"
    media_type = JSON

    def __init__(
        self,
        portal: Portal,
        *,
        token: str,
        user_id: int = WEBHOOK_USER,
        plan: str = "standard",
        burst: float | None = None,
        drain_per_second: float | None = None,
        rate_limit_clock: Callable[[], float] = time.monotonic,
        faults: FaultConfig | None = None,
        bitrix_faults: Bitrix24Faults | None = None,
    ) -> None:
        """Create the sandbox.

        Args:
            portal: The CRM behind the webhook.
            token: The webhook's secret (the path segment after the user id).
            user_id: The webhook's user id (the path segment before the token).
            plan: ``standard`` (burst 50, 2/s) or ``enterprise`` (250, 5/s).
            burst: Overrides the plan's burst.
            drain_per_second: Overrides the plan's drain rate.
            rate_limit_clock: Monotonic seconds of the leaky bucket (tests pass a fake one).
            faults: Shared faults in force at start.
            bitrix_faults: Command-level faults in force at start.

        Raises:
            ValueError: Unknown plan.
        """
        if plan not in PLANS:
            raise ValueError(f"plan must be one of {sorted(PLANS)}, got {plan!r}")
        plan_burst, plan_drain = PLANS[plan]
        limiter = RateLimiter(
            drain_per_second or plan_drain, burst=burst or plan_burst, clock=rate_limit_clock
        )
        super().__init__(faults, rate_limiter=limiter)
        self.portal = portal
        self.user_id = user_id
        self._token = token
        self.api = RestApi(portal, user_id=user_id, faults=bitrix_faults)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(portal={self.portal!r}, user_id={self.user_id}, token=***)"

    @property
    def webhook_path(self) -> str:
        """``/rest/<user id>/<token>/``: the API root the client is given (it holds the secret)."""
        return f"/rest/{self.user_id}/{self._token}/"

    # --- hooks ---------------------------------------------------------------------------------------

    async def authenticate(self, request: Request) -> str | Response:
        user = str(request.path_params.get("user_id", ""))
        token = str(request.path_params.get("token", ""))
        if user != str(self.user_id) or not hmac.compare_digest(token.encode(), self._token.encode()):
            return error_response(errors.NO_AUTH_FOUND.at())
        return PORTAL_KEY

    def too_many_requests(self, request: Request, retry_after: float | None) -> Response:
        # Bitrix24 sends no Retry-After: clients back off on their own.
        return error_response(errors.QUERY_LIMIT_EXCEEDED.at())

    def server_error(self, request: Request) -> Response:
        return error_response(errors.INTERNAL_SERVER_ERROR.at())

    # --- answers -------------------------------------------------------------------------------------

    def answer(self, method: str, params: Params) -> Response:
        """Run one top-level call and build its HTTP answer (CPU work: call it off the event loop)."""
        started = self.portal.clock()
        try:
            outcome = self.api.call(method, params)
        except BitrixError as error:
            return error_response(error)
        body: dict[str, Any] = {"result": outcome.result}
        if outcome.next is not None:
            body["next"] = outcome.next
        if outcome.total is not None:
            body["total"] = outcome.total
        body["time"] = self.api.time_block(started, self.portal.clock())
        return Response(dumps(body), media_type=JSON)

    # --- routes --------------------------------------------------------------------------------------

    def add_routes(self, app: FastAPI) -> None:
        @app.api_route("/rest/{user_id}/{token}/{method}", methods=["GET", "POST"])
        async def rest(request: Request, method: str) -> Response:
            name = method.strip().lower().removesuffix(".json")

            async def handle() -> Answer:
                params = await read_params(request)
                return await run_in_threadpool(self.answer, name, params)

            return await self.serve(request, name, handle)

        self._add_admin_routes(app)

    def _add_admin_routes(self, app: FastAPI) -> None:
        @app.get(f"{ADMIN_PREFIX}/state")
        async def state() -> Response:
            return Response(dumps(await run_in_threadpool(self.portal.snapshot)), media_type=JSON)

        @app.delete(f"{ADMIN_PREFIX}/state")
        async def clear() -> dict[str, int]:
            self.portal.clear()
            return self.portal.counts()

        @app.post(f"{ADMIN_PREFIX}/seed")
        async def seed(request: Request) -> Response:
            try:
                body = await request.json()
                if not isinstance(body, dict) or set(body) - set(_ENTITIES):
                    raise ValueError(f"expected an object with {sorted(_ENTITIES)}")
                ids = await run_in_threadpool(self._seed, body)
            except (ValueError, TypeError) as exc:
                return JSONResponse({"message": str(exc)}, 422)
            except BitrixError as exc:
                return JSONResponse({"message": exc.description}, 422)
            return JSONResponse(ids)

        @app.post(ADMIN_PREFIX + "/deals/{deal_id}/edit")
        async def edit(deal_id: int, request: Request) -> Response:
            try:
                fields = await request.json()
                deal = await run_in_threadpool(self.portal.edit_as_person, "deal", deal_id, fields)
            except ValueError as exc:
                return JSONResponse({"message": str(exc)}, 422)
            except BitrixError as exc:
                return JSONResponse(
                    {"message": exc.description}, 404 if exc.description == "Not found" else 422
                )
            return Response(dumps(deal), media_type=JSON)

        @app.get(f"{ADMIN_PREFIX}/calls")
        async def calls(method: str | None = None) -> Response:
            body: dict[str, Any] = self.api.counts()
            if method is not None:
                body["log"] = [
                    {"number": c.number, "params": c.params, "in_batch": c.in_batch, "error": c.error}
                    for c in self.api.commands(method.lower())
                ]
            return Response(dumps(body), media_type=JSON)

        @app.delete(f"{ADMIN_PREFIX}/calls")
        async def reset_calls() -> dict[str, Any]:
            self.api.reset_log()
            return self.api.counts()

        @app.get(f"{ADMIN_PREFIX}/bitrix24/faults")
        async def get_faults() -> dict[str, Any]:
            return self.api.faults.to_dict()

        @app.api_route(f"{ADMIN_PREFIX}/bitrix24/faults", methods=["PUT", "POST"])
        async def set_faults(request: Request) -> Response:
            try:
                faults = Bitrix24Faults.from_dict(await request.json())
            except (ValueError, TypeError) as exc:
                return JSONResponse({"message": str(exc)}, 422)
            return JSONResponse(self.api.set_faults(faults).to_dict())

    def _seed(self, body: dict[str, Any]) -> dict[str, list[int]]:
        ids: dict[str, list[int]] = {}
        for plural, entity in _ENTITIES.items():
            rows = body.get(plural, [])
            if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
                raise ValueError(f"{plural} must be a list of field objects")
            ids[plural] = [self.portal.seed(entity, row) for row in rows]
        return ids

"""The generic half of a sandbox app: :class:`Sandbox` passes every API request through authentication,
the per-client rate limiter and the fault switches, counts it, and builds the FastAPI app with the
admin router mounted.

A concrete sandbox subclasses :class:`Sandbox`: it names itself (``name``, ``api_path``), overrides
:meth:`~Sandbox.authenticate` and the answer hooks with the real API's bodies, and registers its routes
in :meth:`~Sandbox.add_routes`, each one handing its work to :meth:`~Sandbox.serve`.
"""

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import ClassVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from elt_platform.sandbox.admin import admin_router
from elt_platform.sandbox.faults import FaultConfig
from elt_platform.sandbox.rate_limits import RateLimiter
from elt_platform.sandbox.state import SandboxState

#: What a route handler produces: a finished response, or a body sent with ``Sandbox.media_type``.
Answer = Response | bytes
Handler = Callable[[], Awaitable[Answer]]


def retry_after_header(seconds: float | None) -> dict[str, str]:
    """Return ``{"Retry-After": <whole seconds, rounded up>}``, or ``{}`` for None."""
    return {} if seconds is None else {"Retry-After": str(math.ceil(seconds))}


class Sandbox:
    """Base of every sandbox: shared state, request pipeline, answer hooks and app factory.

    Attributes:
        name: Short name, used in the app title, the health answer and the server thread's name.
        api_path: Path of the API root, so that ``SandboxServer.base_url`` is what the client expects.
        media_type: Content type of handler answers given as bytes.
        state: Faults and counters (:class:`SandboxState`).
        rate_limiter: Per-client limit enforced before faults are drawn; None means no limit.
    """

    name: ClassVar[str] = "sandbox"
    api_path: ClassVar[str] = "/"
    media_type: ClassVar[str] = "application/json"

    def __init__(self, faults: FaultConfig | None = None, *, rate_limiter: RateLimiter | None = None) -> None:
        """Create the sandbox (the app is built by :meth:`create_app`).

        Args:
            faults: Faults in force at start; None means none.
            rate_limiter: Per-client limit the real API enforces; None means none.
        """
        self.state = SandboxState(faults)
        self.rate_limiter = rate_limiter

    def __repr__(self) -> str:
        return f"{type(self).__name__}(state={self.state!r}, rate_limiter={self.rate_limiter!r})"

    async def authenticate(self, request: Request) -> str | Response:
        """Identify the caller, as the real API does.

        Args:
            request: The API request.

        Returns:
            The client's identity (the rate limiter's key), or the API's refusal (e.g. a 401) as is.
        """
        return "anonymous"

    def too_many_requests(self, request: Request, retry_after: float | None) -> Response:
        """The API's "slow down" answer, for an injected ``"429"`` fault and for the rate limiter.

        Override with the real body and status (amoCRM: 429 problem+json; Bitrix24: 503
        ``{"error": "QUERY_LIMIT_EXCEEDED", ...}``).

        Args:
            request: The API request.
            retry_after: Seconds to announce; None when no ``Retry-After`` should be sent.

        Returns:
            The response to send.
        """
        return JSONResponse(
            {"error": "too_many_requests"}, status_code=429, headers=retry_after_header(retry_after)
        )

    def server_error(self, request: Request) -> Response:
        """The API's answer to an injected ``"500"`` fault; override with the real body.

        Args:
            request: The API request.

        Returns:
            The response to send.
        """
        return JSONResponse({"error": "internal_server_error"}, status_code=500)

    def add_routes(self, app: FastAPI) -> None:
        """Register the API routes on ``app``; each calls :meth:`serve` with its handler.

        Args:
            app: The app :meth:`create_app` is building.
        """
        raise NotImplementedError(f"{type(self).__name__} must add its API routes")

    async def serve(self, request: Request, route: str, handler: Handler) -> Response:
        """Answer one API request: authenticate, limit, draw a fault, run ``handler``, count.

        A refused authentication or a rate-limited request draws no fault. ``"429"``/``"500"`` replace
        the handler's answer; ``"slow"`` delays it; ``"truncated"`` cuts a 2xx body in half (a complete
        response with the right ``Content-Length`` carrying cut JSON, as a backend dying mid-serialisation
        behind a buffering proxy sends). Run CPU-heavy generation inside the handler with
        ``starlette.concurrency.run_in_threadpool`` to keep the loop free.

        Args:
            request: The API request.
            route: The route's name in stats and in ``FaultConfig.routes``.
            handler: Produces the normal answer (validation errors included).

        Returns:
            The response to send.
        """
        response = await self._answer(request, route, handler)
        self.state.record(route, response.status_code)
        return response

    async def _answer(self, request: Request, route: str, handler: Handler) -> Response:
        client = await self.authenticate(request)
        if isinstance(client, Response):
            return client
        if self.rate_limiter is not None:
            wait = self.rate_limiter.acquire(client)
            if wait is not None:
                self.state.count_rate_limited()
                return self.too_many_requests(request, wait)
        fault = self.state.draw_fault(route)
        if fault == "429":
            return self.too_many_requests(request, self.state.faults.retry_after)
        if fault == "500":
            return self.server_error(request)
        if fault == "slow":
            await asyncio.sleep(self.state.faults.slow_seconds)
        answer = await handler()
        response = answer if isinstance(answer, Response) else Response(answer, media_type=self.media_type)
        if fault == "truncated" and 200 <= response.status_code < 300 and hasattr(response, "body"):
            cut = bytes(response.body)[: len(response.body) // 2]
            response.body = cut
            response.headers["content-length"] = str(len(cut))
        return response

    def create_app(self) -> FastAPI:
        """Build the FastAPI app: admin router first (so no API route can shadow it), then the API routes.

        Returns:
            The app; this sandbox is ``app.state.sandbox``.
        """
        app = FastAPI(title=f"{self.name} sandbox", docs_url=None, redoc_url=None, openapi_url=None)
        app.state.sandbox = self
        app.include_router(admin_router(self.state, name=self.name))
        self.add_routes(app)
        return app

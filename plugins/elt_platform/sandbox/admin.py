"""Admin endpoints every sandbox mounts under ``/__sandbox`` (never faulted, rate-limited or counted).

* ``GET /__sandbox/faults``: the :class:`FaultConfig` in force (counters show what is left);
* ``PUT`` (or ``POST``) ``/__sandbox/faults``: replace it, ``{}`` switches faults off; 422 ``{"message"}``
  for an invalid config;
* ``GET /__sandbox/stats``: API request counts by status, route and fault; ``DELETE`` zeroes them;
* ``GET /__sandbox/health``: ``{"status": "ok", "sandbox": <name>}`` once the server answers.
"""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from elt_platform.sandbox.faults import FaultConfig
from elt_platform.sandbox.state import SandboxState

ADMIN_PREFIX = "/__sandbox"


def admin_router(state: SandboxState, *, name: str) -> APIRouter:
    """Build the admin router over one sandbox's state.

    Args:
        state: The state the endpoints read and change.
        name: The sandbox's name, reported by the health endpoint.

    Returns:
        A router with the ``/__sandbox`` prefix, ready for ``app.include_router``.
    """
    router = APIRouter(prefix=ADMIN_PREFIX)

    @router.get("/faults")
    async def get_faults() -> dict[str, Any]:
        return state.faults.to_dict()

    @router.api_route("/faults", methods=["PUT", "POST"])
    async def set_faults(request: Request) -> Response:
        try:
            config = FaultConfig.from_dict(await request.json())
        except (ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError
            return JSONResponse({"message": str(exc)}, status_code=422)
        return JSONResponse(state.set_faults(config).to_dict())

    @router.get("/stats")
    async def get_stats() -> dict[str, Any]:
        return state.stats()

    @router.delete("/stats")
    async def delete_stats() -> dict[str, Any]:
        state.reset_stats()
        return state.stats()

    @router.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "sandbox": name}

    return router

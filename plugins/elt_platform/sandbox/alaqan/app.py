"""FastAPI app that answers like the Alaqan API, with switchable fault injection.

Routes (``/api/astanahub/`` prefix as in production, so only the host differs):

* ``GET employees/byDate?date=YYYY-MM-DD`` and ``GET employees/byIin?start_date=&end_date=&iin=``,
  both behind the ``X-Api-Key`` header (401 ``{"message": "Unauthenticated."}`` otherwise) and answering
  422 with a Laravel-style ``{"message", "errors"}`` body for missing or bad parameters;
* ``GET/POST /__sandbox/faults``: read or replace the :class:`FaultConfig` (``{}`` switches faults off);
* ``GET/DELETE /__sandbox/stats``: API request counts by status, route and injected fault; reset.

Nothing here logs; the access log (when a runner enables it) shows request lines, never headers.
"""

import asyncio
import hmac
import json
import random
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from datetime import date
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from elt_platform.sandbox.alaqan.generator import AlaqanDataset

API_PREFIX = "/api/astanahub"
API_KEY_HEADER = "X-Api-Key"
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TWELVE_DIGITS = re.compile(r"[0-9]{12}")
# A route's plan: an error response for bad parameters, or a thunk producing the JSON body.
_Plan = Response | Callable[[], bytes]


@dataclass
class FaultConfig:
    """Which faults the sandbox injects into API requests (the admin routes are never faulted).

    Counters are deterministic: ``next_429=3`` makes exactly the next three API requests answer 429.
    Rates draw from a ``random.Random(seed)`` re-created whenever the config is set, four draws per
    request, so the same request sequence meets the same faults. Counters are checked first, in the
    order 429, 500, truncated, slow; then rates in the same order; at most one fault per request.

    Attributes:
        next_429: Next N API requests answer 429 with ``Retry-After``.
        next_500: Next N API requests answer 500.
        next_truncated: Next N API requests answer 200 with the JSON body cut in half.
        next_slow: Next N API requests are delayed by ``slow_seconds``, then answered normally.
        rate_429: Probability of a 429 per request.
        rate_500: Probability of a 500 per request.
        rate_truncated: Probability of a truncated body per request.
        rate_slow: Probability of a delay per request.
        retry_after: ``Retry-After`` seconds sent with 429; None sends no header.
        slow_seconds: Delay of a slow response.
        seed: Seed of the rate draws.
    """

    next_429: int = 0
    next_500: int = 0
    next_truncated: int = 0
    next_slow: int = 0
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_truncated: float = 0.0
    rate_slow: float = 0.0
    retry_after: int | None = 1
    slow_seconds: float = 2.0
    seed: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FaultConfig":
        """Build a config from a JSON object; missing fields take their defaults.

        Args:
            data: Field name → value.

        Returns:
            The validated config.

        Raises:
            ValueError: Unknown field, wrong type, negative count/delay or a rate outside [0, 1].
        """
        if not isinstance(data, dict):
            raise ValueError("fault config must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault fields: {unknown}; known: {sorted(known)}")
        config = cls(**data)
        config.validate()
        return config

    def validate(self) -> None:
        """Check ranges and types.

        Raises:
            ValueError: On the first invalid field.
        """
        for name in ("next_429", "next_500", "next_truncated", "next_slow", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or (name != "seed" and value < 0):
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        for name in ("rate_429", "rate_500", "rate_truncated", "rate_slow"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        if self.retry_after is not None and (
            not isinstance(self.retry_after, int)
            or isinstance(self.retry_after, bool)
            or self.retry_after < 0
        ):
            raise ValueError(f"retry_after must be a non-negative integer or null, got {self.retry_after!r}")
        if not isinstance(self.slow_seconds, int | float) or self.slow_seconds < 0:
            raise ValueError(f"slow_seconds must be a non-negative number, got {self.slow_seconds!r}")


_FAULTS = ("429", "500", "truncated", "slow")


class SandboxState:
    """Mutable state shared by the routes: dataset, key, fault config and counters (thread-safe)."""

    def __init__(self, dataset: AlaqanDataset, api_key: str, faults: FaultConfig | None = None) -> None:
        """Create the state.

        Args:
            dataset: Source of the answers.
            api_key: The only key accepted.
            faults: Initial faults; None means none.
        """
        self.dataset = dataset
        self._api_key = api_key.encode()
        self._lock = threading.Lock()
        self._by_status: Counter[str] = Counter()
        self._by_route: Counter[str] = Counter()
        self._by_fault: Counter[str] = Counter()
        self.set_faults(faults)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(employees={len(self.dataset.profiles)}, faults={self.faults!r})"

    def key_ok(self, presented: str | None) -> bool:
        """Say whether a presented key is the configured one (constant-time comparison)."""
        return presented is not None and hmac.compare_digest(presented.encode(), self._api_key)

    def set_faults(self, faults: FaultConfig | None) -> FaultConfig:
        """Replace the fault config (a copy is kept) and re-seed the rate draws.

        Args:
            faults: The new config; None switches faults off.

        Returns:
            The config now in force.
        """
        config = replace(faults) if faults is not None else FaultConfig()
        config.validate()
        with self._lock:
            self.faults = config
            self._rng = random.Random(config.seed)
        return config

    def draw_fault(self) -> str | None:
        """Decide the fault for one API request and count it.

        Returns:
            One of ``"429"``, ``"500"``, ``"truncated"``, ``"slow"``, or None.
        """
        with self._lock:
            config = self.faults
            chosen = None
            for name in _FAULTS:
                counter = f"next_{name}"
                if getattr(config, counter) > 0:
                    setattr(config, counter, getattr(config, counter) - 1)
                    chosen = name
                    break
            draws = [self._rng.random() for _ in _FAULTS]
            if chosen is None:
                chosen = next(
                    (
                        name
                        for name, draw in zip(_FAULTS, draws, strict=True)
                        if draw < getattr(config, f"rate_{name}")
                    ),
                    None,
                )
            if chosen is not None:
                self._by_fault[chosen] += 1
            return chosen

    def record(self, route: str, status: int) -> None:
        """Count one finished API request."""
        with self._lock:
            self._by_status[str(status)] += 1
            self._by_route[route] += 1

    def stats(self) -> dict[str, Any]:
        """Return ``{"requests", "by_status", "by_route", "faults"}`` counts since start or the last reset."""
        with self._lock:
            return {
                "requests": sum(self._by_status.values()),
                "by_status": dict(self._by_status),
                "by_route": dict(self._by_route),
                "faults": dict(self._by_fault),
            }

    def reset_stats(self) -> None:
        """Zero every counter."""
        with self._lock:
            self._by_status.clear()
            self._by_route.clear()
            self._by_fault.clear()


def _validation_error(field: str, message: str) -> JSONResponse:
    return JSONResponse({"message": message, "errors": {field: [message]}}, status_code=422)


def _parse_date(request: Request, field: str) -> date | JSONResponse:
    label = field.replace("_", " ")
    raw = request.query_params.get(field)
    if not raw:
        return _validation_error(field, f"The {label} field is required.")
    try:
        if not _ISO_DATE.fullmatch(raw):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        return _validation_error(field, f"The {label} field must match the format Y-m-d.")


def _json_body(data: dict[str, Any]) -> bytes:
    # PHP's json_encode writes an empty map as []; the real backend likely does too, and the parser copes.
    return json.dumps({"data": data or []}, separators=(",", ":"), ensure_ascii=False).encode()


def create_app(dataset: AlaqanDataset, api_key: str, faults: FaultConfig | None = None) -> FastAPI:
    """Build the sandbox app.

    Args:
        dataset: Deterministic data to serve.
        api_key: The key clients must send in ``X-Api-Key``.
        faults: Faults in force at start; None means none. Change later through
            ``app.state.sandbox.set_faults(...)`` or ``POST /__sandbox/faults``.

    Returns:
        The FastAPI application; its :class:`SandboxState` is ``app.state.sandbox``.

    Raises:
        ValueError: If ``api_key`` is empty.
    """
    if not api_key:
        raise ValueError("the sandbox needs a non-empty API key")
    state = SandboxState(dataset, api_key, faults)
    app = FastAPI(title="Alaqan sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sandbox = state

    async def answer(request: Request, plan: Callable[[], _Plan]) -> Response:
        if not state.key_ok(request.headers.get(API_KEY_HEADER)):
            return JSONResponse({"message": "Unauthenticated."}, status_code=401)
        fault = state.draw_fault()
        config = state.faults
        if fault == "429":
            headers = {} if config.retry_after is None else {"Retry-After": str(config.retry_after)}
            return JSONResponse({"message": "Too Many Attempts."}, status_code=429, headers=headers)
        if fault == "500":
            return JSONResponse({"message": "Server Error"}, status_code=500)
        if fault == "slow":
            await asyncio.sleep(config.slow_seconds)
        planned = plan()
        if isinstance(planned, Response):
            return planned
        # Generating a big day takes milliseconds of CPU: keep the event loop free for other clients.
        body = await run_in_threadpool(planned)
        if fault == "truncated":
            # A complete HTTP response (right Content-Length) carrying cut JSON: what a backend that dies
            # mid-serialisation behind a buffering proxy sends. Transport-level cuts are a different fault.
            body = body[: len(body) // 2]
        return Response(body, media_type="application/json")

    async def serve(request: Request, route: str, plan: Callable[[], _Plan]) -> Response:
        response = await answer(request, plan)
        state.record(route, response.status_code)
        return response

    @app.get(f"{API_PREFIX}/employees/byDate")
    async def by_date(request: Request) -> Response:
        def plan() -> _Plan:
            day = _parse_date(request, "date")
            if isinstance(day, Response):
                return day
            return lambda: _json_body(state.dataset.day(day))

        return await serve(request, "byDate", plan)

    @app.get(f"{API_PREFIX}/employees/byIin")
    async def by_iin(request: Request) -> Response:
        def plan() -> _Plan:
            start = _parse_date(request, "start_date")
            if isinstance(start, Response):
                return start
            end = _parse_date(request, "end_date")
            if isinstance(end, Response):
                return end
            if end < start:
                return _validation_error(
                    "end_date", "The end date field must be a date after or equal to start date."
                )
            iin = request.query_params.get("iin")
            if not iin:
                return _validation_error("iin", "The iin field is required.")
            if not _TWELVE_DIGITS.fullmatch(iin):
                return _validation_error("iin", "The iin field must be 12 digits.")
            return lambda: _json_body(state.dataset.by_iin(iin, start, end))

        return await serve(request, "byIin", plan)

    @app.get("/__sandbox/faults")
    async def get_faults() -> dict[str, Any]:
        return asdict(state.faults)

    @app.post("/__sandbox/faults")
    async def post_faults(request: Request) -> Response:
        try:
            config = FaultConfig.from_dict(await request.json())
        except (ValueError, TypeError) as exc:
            return JSONResponse({"message": str(exc)}, status_code=422)
        return JSONResponse(asdict(state.set_faults(config)))

    @app.get("/__sandbox/stats")
    async def get_stats() -> dict[str, Any]:
        return state.stats()

    @app.delete("/__sandbox/stats")
    async def delete_stats() -> dict[str, Any]:
        state.reset_stats()
        return state.stats()

    return app

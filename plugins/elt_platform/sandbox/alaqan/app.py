"""The Alaqan API as a sandbox: routes, ``X-Api-Key`` auth and Laravel-style bodies on the generic base.

Routes (``/api/astanahub/`` prefix as in production, so only the host differs):

* ``GET employees/byDate?date=YYYY-MM-DD`` and ``GET employees/byIin?start_date=&end_date=&iin=``,
  both behind the ``X-Api-Key`` header (401 ``{"message": "Unauthenticated."}`` otherwise) and answering
  422 with a Laravel-style ``{"message", "errors"}`` body for missing or bad parameters;
* the admin routes of every sandbox under ``/__sandbox/`` (faults, stats, health; see
  :mod:`elt_platform.sandbox.admin`). Stats name the routes ``byDate`` and ``byIin``.

Injected faults answer 429 ``{"message": "Too Many Attempts."}`` and 500 ``{"message": "Server Error"}``.
Nothing here logs; the access log (when a runner enables it) shows request lines, never headers.
"""

import hmac
import json
import re
from datetime import date
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from elt_platform.sandbox.alaqan.generator import AlaqanDataset
from elt_platform.sandbox.app import Answer, Sandbox, retry_after_header
from elt_platform.sandbox.faults import FaultConfig

API_PREFIX = "/api/astanahub"
API_KEY_HEADER = "X-Api-Key"
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TWELVE_DIGITS = re.compile(r"[0-9]{12}")


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


def _parse_dates(request: Request, *fields: str) -> list[date] | JSONResponse:
    """Each field's date, or the error of the first field that is missing or malformed."""
    days = []
    for field in fields:
        day = _parse_date(request, field)
        if isinstance(day, Response):
            return day
        days.append(day)
    return days


def _json_body(data: dict[str, Any]) -> bytes:
    # PHP's json_encode writes an empty map as []; the real backend likely does too, and the parser copes.
    return json.dumps({"data": data or []}, separators=(",", ":"), ensure_ascii=False).encode()


class AlaqanSandbox(Sandbox):
    """The Alaqan API: one accepted key, data from an :class:`AlaqanDataset`, no rate limit of its own."""

    name = "alaqan"
    api_path = API_PREFIX + "/"

    def __init__(self, dataset: AlaqanDataset, api_key: str, faults: FaultConfig | None = None) -> None:
        """Create the sandbox.

        Args:
            dataset: Deterministic data to serve.
            api_key: The key clients must send in ``X-Api-Key``.
            faults: Faults in force at start; None means none.

        Raises:
            ValueError: If ``api_key`` is empty.
        """
        if not api_key:
            raise ValueError("the sandbox needs a non-empty API key")
        super().__init__(faults)
        self.dataset = dataset
        self._api_key = api_key.encode()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(employees={len(self.dataset.profiles)}, faults={self.state.faults!r})"

    async def authenticate(self, request: Request) -> str | Response:
        presented = request.headers.get(API_KEY_HEADER)
        if presented is None or not hmac.compare_digest(presented.encode(), self._api_key):
            return JSONResponse({"message": "Unauthenticated."}, status_code=401)
        return "api-key"

    def too_many_requests(self, request: Request, retry_after: float | None) -> Response:
        return JSONResponse(
            {"message": "Too Many Attempts."}, status_code=429, headers=retry_after_header(retry_after)
        )

    def server_error(self, request: Request) -> Response:
        return JSONResponse({"message": "Server Error"}, status_code=500)

    def add_routes(self, app: FastAPI) -> None:
        @app.get(f"{API_PREFIX}/employees/byDate")
        async def by_date(request: Request) -> Response:
            async def answer() -> Answer:
                dates = _parse_dates(request, "date")
                if isinstance(dates, Response):
                    return dates
                (day,) = dates
                # A big day takes milliseconds of CPU: keep the event loop free for other clients.
                return await run_in_threadpool(lambda: _json_body(self.dataset.day(day)))

            return await self.serve(request, "byDate", answer)

        @app.get(f"{API_PREFIX}/employees/byIin")
        async def by_iin(request: Request) -> Response:
            async def answer() -> Answer:
                dates = _parse_dates(request, "start_date", "end_date")
                if isinstance(dates, Response):
                    return dates
                start, end = dates
                if end < start:
                    return _validation_error(
                        "end_date", "The end date field must be a date after or equal to start date."
                    )
                iin = request.query_params.get("iin")
                if not iin:
                    return _validation_error("iin", "The iin field is required.")
                if not _TWELVE_DIGITS.fullmatch(iin):
                    return _validation_error("iin", "The iin field must be 12 digits.")
                return await run_in_threadpool(lambda: _json_body(self.dataset.by_iin(iin, start, end)))

            return await self.serve(request, "byIin", answer)

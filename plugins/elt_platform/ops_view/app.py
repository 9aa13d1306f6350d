"""The platform page's FastAPI app: the HTML page, its JSON twin and the rejected-rows view.

Airflow mounts plugin apps without any authentication; here every route depends on Airflow's own
``requires_authenticated`` (the core API's dependency: a JWT bearer token, else the UI's ``_token``
cookie, checked by the configured auth manager), so the page answers 401/403 exactly as the REST API
does. The generated OpenAPI docs are switched off: they would be the only unauthenticated routes.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from elt_platform.ops_view import charts
from elt_platform.ops_view.data import (
    RECEPTION_STATUSES,
    DateRange,
    PlatformView,
    RangeError,
    gather,
    rejected_rows,
)

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _int(value: Any) -> str:
    return "–" if value is None else f"{value:,}".replace(",", " ")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _when(value: datetime | None) -> str:
    return "–" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


def _age(value: timedelta | None) -> str:
    if value is None:
        return "–"
    minutes = int(value.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes / 60:.1f} h" if minutes < 48 * 60 else f"{minutes / 1440:.1f} d"


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    env.filters.update(int=_int, pct=_pct, when=_when, age=_age)
    return env


def chart_svgs(view: PlatformView) -> dict[str, str]:
    """The four charts of the page, as SVG markup."""
    c = view.charts
    return {
        "attendance": charts.bars_with_line(
            [(f"{day:%m-%d}", people, hours) for day, people, hours in c.attendance],
            bar="people",
            line="hours",
            title="Alaqan: people on site and hours per day",
        ),
        "sales_funnel": charts.horizontal_bars(
            c.sales_funnel, measure="leads", title="amoCRM: leads that reached each stage"
        ),
        "reception_funnel": charts.stacked_bars(
            c.reception_funnel, series=RECEPTION_STATUSES, title="iDent: receptions per branch by status"
        ),
        "operations": charts.stacked_bars(
            [(f"{day:%Y-%m-%d} {dest}", counts) for day, dest, counts in c.operations],
            series=("sent", "failed", "dead", "review", "skipped"),
            title="Reverse ETL: operations per day",
        ),
    }


def view_json(view: PlatformView) -> dict[str, Any]:
    """The view as JSON, with the derived values the page shows (layer totals, rates, totals)."""
    data = jsonable_encoder(asdict(view))
    for source, raw in zip(view.sources, data["sources"], strict=True):
        raw["layer_rows"] = source.layer_rows()
        for rejected, counts in zip(source.rejected, raw["rejected"], strict=True):
            counts["total"] = rejected.total
    for dest, raw in zip(view.destinations, data["destinations"], strict=True):
        raw["hour"]["success"], raw["day"]["success"] = dest.hour.success, dest.day.success
    for account, raw in zip(view.accounts, data["accounts"], strict=True):
        raw["reset_command"] = account.reset_command
    return data


def _range(start: str | None, end: str | None) -> DateRange:
    try:
        return DateRange.parse(start, end)
    except RangeError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None


def create_app() -> FastAPI:
    """The app ``elt_platform_ops_plugin`` mounts at ``/elt-platform``."""
    from airflow.api_fastapi.core_api.security import requires_authenticated

    app = FastAPI(
        title="ELT platform",
        dependencies=[Depends(requires_authenticated())],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    templates = _environment()

    @app.get("/", response_class=HTMLResponse)
    def page(start: str | None = None, end: str | None = None) -> HTMLResponse:
        view = gather(_range(start, end))
        html = templates.get_template("page.html").render(view=view, svg=chart_svgs(view))
        return HTMLResponse(html)

    @app.get("/data.json")
    def data(start: str | None = None, end: str | None = None) -> JSONResponse:
        return JSONResponse(view_json(gather(_range(start, end))))

    @app.get("/rows", response_class=HTMLResponse)
    def rows(table: str = Query(...)) -> HTMLResponse:
        try:
            columns, cells = rejected_rows(table)
        except KeyError:
            raise HTTPException(status_code=404, detail=f"{table} is not a rejected-rows table") from None
        html = templates.get_template("rows.html").render(table=table, columns=columns, rows=cells)
        return HTMLResponse(html)

    return app

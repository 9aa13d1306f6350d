"""What the Airflow plugin registers: the app (built on its first request) and the navigation entry.

``plugins/elt_platform_ops_plugin.py`` imports this in every Airflow component that loads plugins
(scheduler, workers, dag-processor), so nothing heavy is imported here: the FastAPI app, Airflow's
security module and the data layer load only when the API server serves the page for the first time.
"""

from __future__ import annotations

from typing import Any

#: Where the API server mounts the page (not under Airflow's reserved prefixes).
URL_PREFIX = "/elt-platform"
#: The UI route of the embedded page: ``/plugin/elt-platform``.
URL_ROUTE = "elt-platform"


class LazyApp:
    """An ASGI app that builds :func:`elt_platform.ops_view.app.create_app` on first use."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if self._app is None:
            from elt_platform.ops_view.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


def fastapi_app() -> dict[str, Any]:
    """The ``fastapi_apps`` entry."""
    return {"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "ELT platform page"}


def external_view() -> dict[str, Any]:
    """The ``external_views`` entry: one item in the navigation, the page in an iframe."""
    return {
        "name": "Platform",
        # No leading slash: the UI resolves it against its base URL (works behind a path prefix).
        "href": f"{URL_PREFIX.lstrip('/')}/",
        "url_route": URL_ROUTE,
        "destination": "nav",
    }

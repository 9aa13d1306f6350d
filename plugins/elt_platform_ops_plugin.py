"""Airflow plugin: the platform page (sources, reverse ETL, external accounts, charts) in the UI's nav.

The page is a FastAPI app mounted at ``/elt-platform`` and shown in the UI as ``/plugin/elt-platform``;
what it shows and how it authenticates are in ``elt_platform/ops_view/``.
"""

from airflow.plugins_manager import AirflowPlugin

from elt_platform.ops_view.plugin import external_view, fastapi_app


class EltPlatformOpsPlugin(AirflowPlugin):
    name = "elt_platform_ops"
    fastapi_apps = [fastapi_app()]
    external_views = [external_view()]

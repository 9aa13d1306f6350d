"""Airflow: every transform DAG (``transform_<domain>``), one per ``Domain`` declared in the source registry.

Each builds its domain's silver and gold with dbt from the transform ledger's pending slices; it is
woken by its sources' bronze assets and by a sweep cron (see ``elt_platform.dag_factory``).
"""

from elt_platform.dag_factory import build_transform_dags

build_transform_dags()

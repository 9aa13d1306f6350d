"""Airflow: every extract DAG (``extract_<source>…``), one per ``Extract`` declared in the source registry.

Sources declare their DAGs in ``plugins/elt_platform/sources/<source>/pipeline.py``; this file only
asks the factory to build them, so adding a source adds its DAGs without touching ``dags/``.
"""

from elt_platform.dag_factory import build_extract_dags

build_extract_dags()

"""Airflow: every reverse-ETL DAG (``reverse_etl_<destination>``), one per ``Destination`` in the registry.

Destinations declare themselves in ``plugins/elt_platform/destinations/<crm>/pipeline.py``; each DAG
pushes its outbound table (dbt ``models/outbound/``) to the CRM: plan → approve → execute → report.
"""

from elt_platform.dag_factory import build_reverse_etl_dags

build_reverse_etl_dags()

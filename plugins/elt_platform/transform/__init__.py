"""Transformations run from Airflow: dbt (silver/gold) on the shared Spark session."""

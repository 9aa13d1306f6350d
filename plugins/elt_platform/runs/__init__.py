"""Task bodies of the registry-built DAGs, taking plain values (never the Airflow context)."""

"""Production-shaped services started natively on one machine (no Docker): the production-local profile.

``elt prod-local`` (``make run-prod-local``) starts PostgreSQL, an S3-compatible object store (S3Proxy),
Spark standalone (master, worker) with its Thrift server, and Airflow's components on 127.0.0.1, each
configured only by the variables of ``.env.example`` — the same ones ``docker-compose.yaml`` reads.
"""

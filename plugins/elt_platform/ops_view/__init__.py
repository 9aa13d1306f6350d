"""The platform page inside the Airflow UI: sources, reverse ETL, external accounts and charts.

``data.py`` gathers what the page shows from the state store and the lakehouse through the library
(plain dataclasses, no Airflow context); ``charts.py`` draws server-side SVG from plain series;
``app.py`` is the FastAPI app (every route behind Airflow's own authentication) that
``plugins/elt_platform_ops_plugin.py`` mounts and adds to the UI's navigation. See README.md.
"""

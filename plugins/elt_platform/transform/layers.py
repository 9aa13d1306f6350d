"""Build one lakehouse layer of one domain with dbt for a data interval.

Selection is by tags set in ``dbt/dbt_project.yml``: ``tag:<domain>,tag:<layer>`` (intersection),
plus the domain's source tests when building silver. ``dbt build`` runs models, their unit tests and
data tests in DAG order, so a failing test stops the layer. dbt unit tests pin SQL logic, not data:
they run in CI (``tests/integration``), not on every scheduled run.
"""

from __future__ import annotations

from datetime import date

from elt_platform.transform.dbt import DbtRunSummary, interval_vars, run_dbt


def build_layer(domain: str, layer: str, start: date | None, end: date | None) -> DbtRunSummary:
    """``dbt build`` the ``layer`` models of ``domain`` for ``[start, end)`` (None: everything).

    Raises:
        DbtRunError: a model or test failed.
    """
    select = [f"tag:{domain},tag:{layer}"]
    if layer == "silver":
        select.append(f"source:{domain}")
    return run_dbt(
        ["build", "--select", *select, "--exclude-resource-type", "unit_test"],
        dbt_vars=interval_vars(start, end),
    )

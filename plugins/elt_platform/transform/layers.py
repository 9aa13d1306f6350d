"""Build one lakehouse layer of one domain with dbt for a data interval.

Selection is by graph, from the registry (:meth:`Domain.silver_selectors` / ``gold_selectors``):
silver = every silver model upstream of the domain's marts plus its sources' own silver models and
source tests; gold = the domain's marts. A mart combining sources is built once, by its domain.
``dbt build`` runs models and data tests in DAG order, so a failing test stops the layer; dbt unit
tests pin SQL logic, not data: they run in CI (``tests/integration``), not on every scheduled run.
"""

from __future__ import annotations

from datetime import date

from elt_platform.registry import DbtSettings, Domain
from elt_platform.transform.dbt import DbtRunSummary, interval_vars, run_dbt

LAYERS = ("silver", "gold")


def domain_settings(domain: Domain) -> DbtSettings:
    """The domain's dbt vars and Spark SQL conf, resolved from platform settings."""
    if not domain.dbt_settings:
        return DbtSettings()
    from elt_platform.registry import call

    return call(domain.dbt_settings)


def build_layer(
    domain: Domain, layer: str, start: date | None, end: date | None, *, incremental: bool = False
) -> DbtRunSummary:
    """``dbt build`` the ``layer`` models of ``domain`` for ``[start, end)`` (None: everything).

    Args:
        domain / layer / start / end: what to build.
        incremental: build only the domain's fast path (``Domain.incremental``), its incremental models
            merging what changed since their last build. Otherwise a domain with a fast path is rebuilt
            with ``--full-refresh``, so its incremental models start over from all of bronze.

    Raises:
        ValueError: unknown layer, or ``incremental`` for a domain without a fast path.
        DbtRunError: a model or test failed.
    """
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}; expected one of {LAYERS}")
    fast = domain.incremental
    if incremental and fast is None:
        raise ValueError(f"domain {domain.name!r} has no incremental path")
    if incremental and fast is not None:
        select = list(fast.silver if layer == "silver" else fast.gold)
    else:
        select = domain.silver_selectors() if layer == "silver" else domain.gold_selectors()
    refresh = ["--full-refresh"] if fast is not None and not incremental else []
    settings = domain_settings(domain)
    return run_dbt(
        ["build", "--select", *select, *refresh, "--exclude-resource-type", "unit_test"],
        dbt_vars={**settings.vars, **interval_vars(start, end)},
        spark_conf=settings.spark_conf,
    )

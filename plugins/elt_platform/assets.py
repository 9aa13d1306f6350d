"""The only place Airflow Assets are made: one per lakehouse table, named by the registry.

Extract DAGs emit their source's trigger table (``bronze.alaqan_visits``, ``bronze.onec_packages``)
after the quality gate; the event's ``extra`` says what was loaded, but the transform ledger in the
state store — not the event — is what a transform builds from (events can coalesce or be missed).
Transform DAGs schedule on their sources' trigger assets and emit their silver/gold tables.
"""

from __future__ import annotations

from airflow.sdk import Asset

from elt_platform.registry import Domain, Source


def table_asset(identifier: str) -> Asset:
    """The asset of a lakehouse table ``<namespace>.<table>``."""
    namespace, table = identifier.split(".", 1)
    return Asset(name=identifier, uri=f"iceberg://lakehouse/{namespace}/{table}", group="lakehouse")


def trigger_asset(source: Source) -> Asset:
    """The bronze asset a source's extract emits once its gate passed."""
    return table_asset(source.trigger_table)


def silver_assets(domain: Domain) -> list[Asset]:
    return [table_asset(t) for t in domain.silver_tables]


def gold_assets(domain: Domain) -> list[Asset]:
    """The gold step's outlets: the domain's marts and its outbound feeds."""
    return [table_asset(t) for t in (*domain.gold_tables, *domain.outbound_tables)]

"""Declarative list of source pipelines the DAG factory builds from (config-driven fan-out).

Entries name their callables by dotted path so that parsing a DAG file imports nothing heavy:
the extract function is imported inside the task, on a worker.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow.sdk import Asset

from elt_platform import assets


@dataclass(frozen=True)
class ExtractPipeline:
    """How one source reaches bronze.

    Attributes:
        source: short name, also the DAG's ``extract_<source>`` suffix.
        extract: ``module:function`` taking ``(start, end, run_id)`` and returning a summary dict.
        bronze_suites: quality suites (``schemas/quality/<name>.yaml``) gating the load.
        outlets: bronze assets emitted once the gate passed.
        description: one line for the DAG's docs.
    """

    source: str
    extract: str
    bronze_suites: tuple[str, ...]
    outlets: tuple[Asset, ...]
    description: str


EXTRACT_PIPELINES: dict[str, ExtractPipeline] = {
    "alaqan": ExtractPipeline(
        source="alaqan",
        extract="elt_platform.sources.alaqan.extract:extract_interval",
        bronze_suites=("bronze_alaqan_visits",),
        outlets=(assets.BRONZE_ALAQAN_VISITS,),
        description="Alaqan access events (GET employees/byDate, one request a day) -> bronze.alaqan_visits",
    ),
}

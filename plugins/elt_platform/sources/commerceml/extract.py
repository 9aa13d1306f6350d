"""Entry points of the 1C extract DAGs: load the complete packages waiting in the exchange area.

``extract_onec`` calls :func:`load_pending` with ``kind="catalog"``, ``extract_onec_stocks`` with
``kind="stocks"``. Packages load one at a time, oldest first (deltas must apply in order); each
loaded package moves to ``archive/``. A failing package stops the run (the task fails, Airflow
retries it); once it has failed :data:`~elt_platform.sources.commerceml.settings.MAX_ATTEMPTS` times
it moves to ``failed/`` so that the next runs go on with later packages. Replay it with
``python -m elt_platform.cli load-1c failed/<name>`` once fixed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from elt_platform.sources.commerceml.exchange import ExchangeArea
from elt_platform.sources.commerceml.loader import PackageLoadError, load_package
from elt_platform.sources.commerceml.settings import MAX_ATTEMPTS, QUALITY_SUITES

log = logging.getLogger(__name__)


def load_pending(
    kind: str,
    *,
    run_id: str,
    path: str | None = None,
    area: ExchangeArea | None = None,
    max_packages: int | None = None,
    settle_seconds: float | None = None,
) -> dict[str, Any]:
    """Load the complete packages of ``kind`` waiting in ``incoming/`` (or one given ``path``).

    Args:
        kind: ``catalog`` or ``stocks`` (also the load mode).
        run_id: Airflow run id.
        path: Load this package instead of scanning ``incoming/`` (a manual run's param); it is
            archived only if it lies in ``incoming/``.
        area: Exchange area (default from the environment).
        max_packages: Stop after this many packages (the rest wait for the next run).
        settle_seconds: Override the completeness rule's quiet period.

    Returns:
        ``{"kind", "packages": [load summaries], "package_ids": [...]}`` — JSON for XCom.

    Raises:
        PackageLoadError: A package failed (packages loaded before it stay loaded and archived).
    """
    area = area or ExchangeArea.from_env()
    queue = [Path(path)] if path else area.pending(kind, settle_seconds=settle_seconds)
    if max_packages is not None:
        queue = queue[:max_packages]
    log.info("onec %s: %d package(s) to load: %s", kind, len(queue), [p.name for p in queue])
    results = []
    for package in queue:
        in_area = area.contains(package)
        try:
            result = load_package(package, run_id=run_id, mode=kind)
        except PackageLoadError as exc:
            if in_area and exc.attempts >= MAX_ATTEMPTS:
                area.quarantine(package, f"{exc} (after {exc.attempts} attempts)")
            raise
        summary = result.as_dict()
        if in_area:
            summary["archived_to"] = str(area.archive(package))
        results.append(summary)
    return {"kind": kind, "packages": results, "package_ids": [r["package_id"] for r in results]}


def gate_packages(loaded: dict[str, Any], *, run_id: str) -> dict[str, str]:
    """Run the mode's quality suites over the package slices a run loaded.

    Args:
        loaded: What :func:`load_pending` returned.
        run_id: Airflow run id (names the stored results).

    Returns:
        Suite → where its result was stored.

    Raises:
        QualityGateError: An expectation failed.
    """
    from elt_platform.quality.slice_gate import run_slice_gate

    ids = loaded["package_ids"]
    return {
        suite: run_slice_gate(suite, ids, run_id=run_id).result_uri
        for suite in QUALITY_SUITES[loaded["kind"]]
    }


__all__ = ["gate_packages", "load_pending"]

"""Entry points of the 1C extract DAGs: load the complete packages waiting in the exchange area.

``extract_onec`` calls :func:`load_pending` with ``kind="catalog"``, ``extract_onec_stocks`` with
``kind="stocks"``. Packages load one at a time, oldest first (deltas must apply in order); each
loaded package moves to ``archive/``. A failing package stops the run (the task fails, Airflow
retries it); once it has failed :data:`~elt_platform.sources.commerceml.settings.MAX_ATTEMPTS` times
it moves to ``failed/`` so that the next runs go on with later packages. Replay it with
``python -m elt_platform.cli load-1c failed/<name>`` once fixed.

The exchange area is a local folder or ``s3://bucket/prefix`` (``ELT_ONEC_EXCHANGE_URI``); on S3 each
package is downloaded to the staging area and loaded the same way, with the credentials of the
``onec_exchange`` Airflow connection — looked up here, in the only Airflow-facing function.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from elt_platform.sources.commerceml.exchange import ExchangeArea, exchange_uri
from elt_platform.sources.commerceml.exchange_s3 import (
    RemotePackage,
    S3Credentials,
    S3ExchangeArea,
    is_s3_uri,
)
from elt_platform.sources.commerceml.loader import PackageLoadError, load_package
from elt_platform.sources.commerceml.settings import EXCHANGE_CONN_ID, MAX_ATTEMPTS, QUALITY_SUITES

log = logging.getLogger(__name__)


def open_exchange(uri: str | None = None, *, connection: Any = None) -> ExchangeArea | S3ExchangeArea:
    """The exchange area at ``uri`` (default :func:`~.exchange.exchange_uri`).

    Args:
        uri: Local path, ``file://`` URI or ``s3://bucket/prefix``.
        connection: For S3, an Airflow ``aws`` connection (or any object with ``login``, ``password``,
            ``extra_dejson``); None = the lakehouse's S3 settings (``ELT_S3_ENDPOINT``, AWS chain).
    """
    uri = uri or exchange_uri()
    if not is_s3_uri(uri):
        return ExchangeArea.from_uri(uri)
    credentials = (
        S3Credentials.from_connection(connection) if connection is not None else S3Credentials.from_platform()
    )
    return S3ExchangeArea.from_uri(uri, credentials)


def _exchange_from_airflow() -> ExchangeArea | S3ExchangeArea:
    """The configured area; on S3 with the ``onec_exchange`` connection when it is defined."""
    uri = exchange_uri()
    if not is_s3_uri(uri):
        return open_exchange(uri)
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        connection = BaseHook.get_connection(EXCHANGE_CONN_ID)
    except AirflowNotFoundException:
        log.info(
            "onec: no %r connection, reaching %s with the lakehouse's S3 settings", EXCHANGE_CONN_ID, uri
        )
        connection = None
    return open_exchange(uri, connection=connection)


def load_pending(
    kind: str,
    *,
    run_id: str,
    path: str | None = None,
    area: ExchangeArea | S3ExchangeArea | None = None,
    max_packages: int | None = None,
    settle_seconds: float | None = None,
) -> dict[str, Any]:
    """Load the complete packages of ``kind`` waiting in ``incoming/`` (or one given ``path``).

    Args:
        kind: ``catalog`` or ``stocks`` (also the load mode).
        run_id: Airflow run id.
        path: Load this package instead of scanning ``incoming/`` (a manual run's param); it is
            archived only if it lies in ``incoming/``.
        area: Exchange area, local or S3 (default: from the environment and, on S3, the
            ``onec_exchange`` connection).
        max_packages: Stop after this many packages (the rest wait for the next run).
        settle_seconds: Override the completeness rule's quiet period.

    Returns:
        ``{"kind", "packages": [load summaries], "package_ids": [...]}`` — JSON for XCom.

    Raises:
        PackageLoadError: A package failed (packages loaded before it stay loaded and archived).
    """
    area = area or _exchange_from_airflow()
    queue: list[Any] = [Path(path)] if path else area.pending(kind, settle_seconds=settle_seconds)
    if max_packages is not None:
        queue = queue[:max_packages]
    log.info("onec %s: %d package(s) to load: %s", kind, len(queue), [p.name for p in queue])
    results = []
    for package in queue:
        in_area = area.contains(package)
        try:
            with area.checkout(package) as local:
                source = package.uri if isinstance(package, RemotePackage) else None
                result = load_package(local, run_id=run_id, mode=kind, source=source)
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


__all__ = ["gate_packages", "load_pending", "open_exchange"]

"""Entry points of the 1C extract DAGs: load the complete packages waiting in the exchange area.

``extract_onec`` calls :func:`load_pending` with ``kind="catalog"``, ``extract_onec_stocks`` with
``kind="stocks"``. Packages load one at a time, oldest first (deltas must apply in order); each
loaded package moves to ``archive/``. A failing package stops the run (the task fails, Airflow
retries it); once it has failed :data:`~elt_platform.sources.commerceml.settings.MAX_ATTEMPTS` times
it moves to ``failed/`` so that the next runs go on with later packages. Replay it with
``python -m elt_platform.cli load-1c failed/<name>`` once fixed.

The exchange area is a local folder, ``s3://bucket/prefix`` or ``sftp://host[:port]/path``
(``ELT_ONEC_EXCHANGE_URI``); on S3 or SFTP each package is downloaded to the staging area and loaded the
same way, with the credentials of the ``onec_exchange`` (S3) or ``onec_exchange_sftp`` (SFTP) Airflow
connection — looked up here, in the only Airflow-facing function.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from elt_platform.sources.commerceml.exchange import ExchangeArea, exchange_uri
from elt_platform.sources.commerceml.exchange_remote import RemoteExchangeArea, RemotePackage
from elt_platform.sources.commerceml.exchange_s3 import S3Credentials, S3ExchangeArea, is_s3_uri
from elt_platform.sources.commerceml.exchange_sftp import SFTPCredentials, SFTPExchangeArea, is_sftp_uri
from elt_platform.sources.commerceml.loader import PackageLoadError, load_package
from elt_platform.sources.commerceml.settings import (
    EXCHANGE_CONN_ID,
    EXCHANGE_SFTP_CONN_ID,
    MAX_ATTEMPTS,
    QUALITY_SUITES,
)

log = logging.getLogger(__name__)


def open_exchange(uri: str | None = None, *, connection: Any = None) -> ExchangeArea | RemoteExchangeArea:
    """The exchange area at ``uri`` (default :func:`~.exchange.exchange_uri`).

    Args:
        uri: Local path, ``file://`` URI, ``s3://bucket/prefix`` or ``sftp://host[:port]/path``.
        connection: For S3, an Airflow ``aws`` connection (or any object with ``login``, ``password``,
            ``extra_dejson``); None = the lakehouse's S3 settings (``ELT_S3_ENDPOINT``, AWS chain).
            For SFTP, an Airflow ``sftp`` connection (:meth:`.SFTPCredentials.from_connection`).
    """
    uri = uri or exchange_uri()
    if is_sftp_uri(uri):
        sftp = SFTPCredentials.from_connection(connection) if connection else SFTPCredentials()
        return SFTPExchangeArea.from_uri(uri, sftp)
    if not is_s3_uri(uri):
        return ExchangeArea.from_uri(uri)
    s3 = (
        S3Credentials.from_connection(connection) if connection is not None else S3Credentials.from_platform()
    )
    return S3ExchangeArea.from_uri(uri, s3)


def _exchange_from_airflow() -> ExchangeArea | RemoteExchangeArea:
    """The configured area; on S3 with the ``onec_exchange`` connection when it is defined, on SFTP
    with the ``onec_exchange_sftp`` connection (required)."""
    uri = exchange_uri()
    if not is_s3_uri(uri) and not is_sftp_uri(uri):
        return open_exchange(uri)
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    if is_sftp_uri(uri):
        return open_exchange(uri, connection=BaseHook.get_connection(EXCHANGE_SFTP_CONN_ID))

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
    area: ExchangeArea | RemoteExchangeArea | None = None,
    max_packages: int | None = None,
    settle_seconds: float | None = None,
) -> dict[str, Any]:
    """Load the complete packages of ``kind`` waiting in ``incoming/`` (or one given ``path``).

    Args:
        kind: ``catalog`` or ``stocks`` (also the load mode).
        run_id: Airflow run id.
        path: Load this package instead of scanning ``incoming/`` (a manual run's param); it is
            archived only if it lies in ``incoming/``.
        area: Exchange area, local, S3 or SFTP (default: from the environment and the matching
            Airflow connection; an area opened here is closed before returning).
        max_packages: Stop after this many packages (the rest wait for the next run).
        settle_seconds: Override the completeness rule's quiet period.

    Returns:
        ``{"kind", "packages": [load summaries], "package_ids": [...]}`` — JSON for XCom.

    Raises:
        PackageLoadError: A package failed (packages loaded before it stay loaded and archived).
    """
    opened = area is None
    area = area or _exchange_from_airflow()
    try:
        return _load_queue(
            area, kind, run_id=run_id, path=path, max_packages=max_packages, settle=settle_seconds
        )
    finally:
        if opened and isinstance(area, RemoteExchangeArea):
            area.close()


def _load_queue(
    area: ExchangeArea | RemoteExchangeArea,
    kind: str,
    *,
    run_id: str,
    path: str | None,
    max_packages: int | None,
    settle: float | None,
) -> dict[str, Any]:
    queue: list[Any] = [Path(path)] if path else area.pending(kind, settle_seconds=settle)
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
            # Nothing identifiable (no XML file at all) cannot get better by waiting: move it now.
            if in_area and (exc.package_id is None or exc.attempts >= MAX_ATTEMPTS):
                area.quarantine(
                    package, f"{exc} (after {exc.attempts} attempts)" if exc.attempts else str(exc)
                )
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

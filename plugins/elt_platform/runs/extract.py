"""Extract task bodies: load a source's slice into bronze, gate it, hand it to the transform ledger.

The ledger row of a slice is written by the same task that committed it (status ``loaded``) and
becomes ``pending`` only once the bronze quality gate passed: a transform never builds a slice that
failed its gate, and a slice that reached bronze is never forgotten whatever happens to asset events.
A ``changes_only`` extract (a micro-batch) that wrote nothing records no slice and says so
(:data:`NOTHING_NEW` in its summary): its DAG skips the gate, so no asset event is emitted.
"""

from __future__ import annotations

import logging
from datetime import date

from elt_platform.registry import Extract, Source, call, registry

log = logging.getLogger(__name__)

#: Summary key of a ``changes_only`` run that wrote no row.
NOTHING_NEW = "nothing_new"


def interval_key(start: date, end: date) -> str:
    """Ledger key of a half-open day interval: ``2025-03-03/2025-03-04``."""
    return f"{start.isoformat()}/{end.isoformat()}"


def _ledgers(source: Source):
    from elt_platform.state import TransformLedger, open_state_store

    store = open_state_store()
    return [TransformLedger(store, domain) for domain in source.domains]


def load_interval(source_name: str, dag_id: str, start: date, end: date, *, run_id: str) -> dict:
    """Load ``[start, end)`` of an interval source into bronze and record it as ``loaded``.

    Returns:
        The extract's summary plus ``start``, ``end`` (ISO), ``run_id`` — the task's XCom.
    """
    source = registry().sources[source_name]
    extract = _extract(source, dag_id)
    summary = call(extract.call, start, end, run_id=run_id, **dict(extract.options))
    done = {"start": start.isoformat(), "end": end.isoformat(), "run_id": run_id, **summary}
    if extract.changes_only and not any((summary.get("written") or {}).values()):
        from elt_platform.freshness import record_check
        from elt_platform.state import open_state_store

        record_check(open_state_store(), source.name, run_id)  # quiet, not stale
        log.info(
            "%s: nothing changed at the source since the last run; nothing handed to the transform", dag_id
        )
        return {**done, NOTHING_NEW: True}
    key = interval_key(start, end)
    for ledger in _ledgers(source):
        ledger.record(source.name, key, start=start, end=end, run_id=run_id, status="loaded")
    return done


def gate_interval(source_name: str, loaded: dict, *, run_id: str, dag_id: str | None = None) -> dict:
    """Run the bronze suites of the extract ``dag_id`` (default: all of the source's) over the loaded
    interval; on success mark it ``pending``.

    Raises:
        QualityGateError: an expectation failed (the interval stays ``loaded``, not transformed).
    """
    from elt_platform.quality.gate import run_gate

    source = registry().sources[source_name]
    start, end = date.fromisoformat(loaded["start"]), date.fromisoformat(loaded["end"])
    suites = source.bronze_suites
    if dag_id is not None and (own := _extract(source, dag_id).suites) is not None:
        suites = own
    results = {suite: run_gate(suite, start, end, run_id=run_id).result_uri for suite in suites}
    for ledger in _ledgers(source):
        ledger.mark_ready(source.name, [interval_key(start, end)], run_id)
    return results


def load_packages(source_name: str, dag_id: str, *, run_id: str, path: str | None) -> dict:
    """Load the waiting packages of a package source; each loaded package is recorded ``loaded``."""
    source = registry().sources[source_name]
    extract = _extract(source, dag_id)
    loaded = call(extract.call, run_id=run_id, path=path, **dict(extract.options))
    for ledger in _ledgers(source):
        for package_id in loaded["package_ids"]:
            ledger.record(source.name, package_id, run_id=run_id, status="loaded")
    return loaded


def gate_packages(source_name: str, dag_id: str, loaded: dict, *, run_id: str) -> dict:
    """Run the extract's gate over the loaded packages; on success mark them ``pending``."""
    source = registry().sources[source_name]
    extract = _extract(source, dag_id)
    results = call(extract.gate, loaded, run_id=run_id) if extract.gate else {}
    for ledger in _ledgers(source):
        ledger.mark_ready(source.name, list(loaded["package_ids"]), run_id)
    return results


def _extract(source: Source, dag_id: str) -> Extract:
    for extract in source.extracts:
        if extract.dag_id == dag_id:
            return extract
    raise KeyError(f"source {source.name!r} declares no extract DAG {dag_id!r}")

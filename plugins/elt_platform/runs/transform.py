"""Transform task bodies: take the domain's pending slices from the ledger, build silver and gold.

A transform run claims every pending (or earlier claimed, never completed) slice of its domain, so
intervals loaded while another run was busy, or whose asset events were coalesced, are built by the
next run — the ledger is the source of truth, the asset event only the wake-up. Slices are marked
done only after gold was built; a failed run leaves them claimable.

A ``state`` domain with a fast path (``Domain.incremental``) builds only its incremental models, merging
what changed since their last build — silver and gold in one dbt invocation by the silver task, the gold
task then only emitting its assets — unless its check asks for a full rebuild (then dbt runs with
``--full-refresh``, layer by layer); a manual run with an interval always rebuilds in full.
"""

from __future__ import annotations

import logging
from datetime import date

from elt_platform.intervals import merge_intervals
from elt_platform.registry import Domain, call, registry

log = logging.getLogger(__name__)


def _ledger(domain: Domain):
    from elt_platform.state import TransformLedger, open_state_store

    return TransformLedger(open_state_store(), domain.name)


def claim(domain_name: str, *, run_id: str, requested: tuple[date, date] | None = None) -> dict:
    """What this run builds: ``{"intervals": [[start, end], ...], "slices": n, "full": bool}``.

    Args:
        domain_name: the domain.
        run_id: the transform run (claims are recorded under it).
        requested: an explicit interval from a manual run's params, built in addition to the claim.

    Returns:
        Interval domains: the claimed intervals merged where they touch (plus ``requested``).
        State domains: ``full`` when anything is pending (they rebuild from all of bronze), and
        ``incremental`` when the domain's fast path may merge the changes instead (:func:`state_work`).
        ``slices`` = 0 and no intervals when there is nothing to do.
    """
    domain = registry().domains[domain_name]
    entries = _ledger(domain).claim(run_id)
    spans = [(e.start, e.end) for e in entries if e.start and e.end]
    if requested:
        spans.append(requested)
    if domain.rebuild == "state":
        work = {"intervals": [], "slices": len(entries), "full": False, "incremental": False}
        if entries or requested:
            work.update(state_work(domain_name, force_full=requested is not None))
    else:
        merged = merge_intervals(spans)
        work = {
            "intervals": [[s.isoformat(), e.isoformat()] for s, e in merged],
            "slices": len(entries),
            "full": False,
        }
    log.info(
        "%s: %d pending slice(s) claimed by %s%s → %s",
        domain.dag_id,
        len(entries),
        run_id,
        f" (+ requested {requested[0]}..{requested[1]})" if requested else "",
        _describe(work),
    )
    return work


def _describe(work: dict) -> str:
    if work.get("incremental"):
        return "incremental build of the fast path"
    if work["full"]:
        return "full rebuild" + (f" ({work['reason']})" if work.get("reason") else "")
    return str(work["intervals"] or "nothing to build")


def state_work(domain_name: str, *, force_full: bool = False) -> dict:
    """What a build of a ``state`` domain with pending work does: its fast path when it has one and its
    check allows it, else a full rebuild.

    Args:
        domain_name: the domain.
        force_full: rebuild in full whatever the check says (a manual run).

    Returns:
        ``{"intervals": [], "full": True, "incremental": bool, "reason": str | None}`` (``reason``: why
        a domain with a fast path rebuilds in full).
    """
    domain = registry().domains[domain_name]
    reason: str | None = None
    if domain.incremental is not None:
        reason = "requested" if force_full else call(domain.incremental.check)
    incremental = domain.incremental is not None and reason is None
    return {"intervals": [], "full": True, "incremental": incremental, "reason": reason}


def has_work(work: dict) -> bool:
    return bool(work["full"] or work["intervals"])


def _spans(work: dict) -> list[tuple[date | None, date | None]]:
    if work["full"]:
        return [(None, None)]
    return [(date.fromisoformat(s), date.fromisoformat(e)) for s, e in work["intervals"]]


def build(domain_name: str, layer: str, work: dict) -> dict[str, int]:
    """``dbt build`` one layer of the domain for each interval; node counts by status, summed.

    Raises:
        DbtRunError: a model or test failed.
    """
    from elt_platform.transform.layers import build_fast_path, build_layer

    domain = registry().domains[domain_name]
    totals: dict[str, int] = {}
    if work.get("incremental"):
        # The fast path is one dbt invocation (one Spark session) for both layers, run by the silver
        # task. Its work has no intervals, so the silver gate between the two has nothing to check.
        if layer == "gold":
            log.info("transform_%s: gold was built with silver (the fast path)", domain_name)
            return totals
        return dict(build_fast_path(domain).statuses)
    for start, end in _spans(work):
        summary = build_layer(domain, layer, start, end)
        for status, count in summary.statuses.items():
            totals[status] = totals.get(status, 0) + count
    return totals


def gate(domain_name: str, work: dict, *, run_id: str) -> list[str]:
    """Run the domain's silver suites over each interval; returns where results were stored."""
    from elt_platform.quality.gate import run_gate

    domain = registry().domains[domain_name]
    spans = [(s, e) for s, e in _spans(work) if s and e]
    return [
        run_gate(suite, start, end, run_id=run_id).result_uri
        for suite in domain.silver_suites
        for start, end in spans
    ]


def complete(domain_name: str, *, run_id: str, export: bool = True) -> int:
    """Mark the run's claimed slices done (gold holds them), then refresh the ``ops`` tables unless
    ``export`` is False (the fast path: the next full build or reverse-ETL report refreshes them).

    Returns:
        How many slices this run completed.
    """
    from elt_platform.ops import export_state

    done = _ledger(registry().domains[domain_name]).complete(run_id)
    log.info("transform_%s: %d slice(s) done (run %s)", domain_name, done, run_id)
    if export:
        export_state()
    return done

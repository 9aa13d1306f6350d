"""Open breaches: a breach alerts once, stays quiet while it lasts, and alerts again only after recovery."""

from __future__ import annotations

from elt_platform.state.breaches import list_breaches, mark_alerted, observe
from elt_platform.state.store import StateStore


def test_a_breach_alerts_once_then_again_only_after_recovery(store: StateStore) -> None:
    verdicts = [True, True, False, False, True, True]
    states, alerts = [], 0
    for breached in verdicts:
        check = observe(store, "freshness", "alaqan", breached=breached, detail="stale")
        states.append(check.state)
        if check.needs_alert:
            alerts += 1
            mark_alerted(store, "freshness", "alaqan")

    assert states == ["opened", "ongoing", "recovered", "ok", "opened", "ongoing"]
    assert alerts == 2


def test_an_alert_never_confirmed_is_sent_again(store: StateStore) -> None:
    first = observe(store, "freshness", "onec", breached=True)
    second = observe(store, "freshness", "onec", breached=True)  # the process died before mark_alerted

    assert (first.state, second.state, second.needs_alert) == ("opened", "unalerted", True)
    assert second.opened_at == first.opened_at


def test_breaches_are_kept_per_rule_and_subject(store: StateStore) -> None:
    observe(store, "freshness", "onec", breached=True, detail="3 h old")
    observe(store, "reverse_etl_error_rate", "bitrix24", breached=True)
    observe(store, "freshness", "alaqan", breached=False)

    assert [(b["rule"], b["subject"], b["detail"]) for b in list_breaches(store)] == [
        ("freshness", "onec", "3 h old"),
        ("reverse_etl_error_rate", "bitrix24", None),
    ]
    assert [b["subject"] for b in list_breaches(store, "freshness")] == ["onec"]

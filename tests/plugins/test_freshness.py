"""Source freshness: the thresholds follow the schedule, and a stale source alerts once per breach."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from elt_platform.freshness import check_freshness, classify, schedule_period, source_freshness
from elt_platform.registry import Extract, Source
from elt_platform.state import TransformLedger, open_state_store

NOW = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)


def _source(*schedules: str) -> Source:
    extracts = tuple(
        Extract(dag_id=f"extract_fake_{n}", kind="interval", call="m:f", schedule=cron, doc="")
        for n, cron in enumerate(schedules)
    )
    return Source(
        name="fake",
        title="Fake",
        owner="t",
        start_date=datetime(2024, 1, 1),
        extracts=extracts,
        bronze_tables=("bronze.fake_rows",),
        trigger_table="bronze.fake_rows",
        domains=("d",),
    )


@pytest.mark.parametrize(
    ("cron", "period"),
    [
        ("0 2 * * *", timedelta(days=1)),
        ("*/15 * * * *", timedelta(minutes=15)),
        ("* * * * *", timedelta(minutes=1)),
    ],
)
def test_the_period_is_the_gap_between_scheduled_runs(cron, period):
    assert schedule_period(cron, NOW) == period


# Daily: grace 12 h → green up to 36 h, amber up to 72 h. Every 15 min: grace 15 min → 30 / 60 min.
@pytest.mark.parametrize(
    ("age", "period", "status"),
    [
        (timedelta(hours=36), timedelta(days=1), "green"),
        (timedelta(hours=36, minutes=1), timedelta(days=1), "amber"),
        (timedelta(hours=72), timedelta(days=1), "amber"),
        (timedelta(hours=72, minutes=1), timedelta(days=1), "red"),
        (timedelta(minutes=30), timedelta(minutes=15), "green"),
        (timedelta(minutes=61), timedelta(minutes=15), "red"),
        (None, timedelta(days=1), "never"),
    ],
)
def test_status_against_the_schedule(age, period, status):
    assert classify(age, period) == status


@pytest.fixture
def store(tmp_path):
    store = open_state_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield store
    store.close()


def test_the_fastest_extract_sets_the_expectation(store):
    # A daily extract plus a micro-batch every minute: silence for an hour is stale.
    TransformLedger(store, "d").record("fake", "k", run_id="r", status="pending")
    (verdict,) = source_freshness(store, now=datetime.now(UTC) + timedelta(hours=1),
                                  sources=[_source("0 3 * * *", "* * * * *")])  # fmt: skip
    assert (verdict.period, verdict.status) == (timedelta(minutes=1), "red")


def test_a_slice_that_failed_its_gate_does_not_count(store):
    TransformLedger(store, "d").record("fake", "k", run_id="r", status="loaded")
    (verdict,) = source_freshness(store, sources=[_source("0 2 * * *")])
    assert (verdict.status, verdict.last) == ("never", None)


def test_a_stale_source_alerts_once_per_breach(store, monkeypatch):
    import elt_platform.freshness as freshness

    fake = _source("0 2 * * *")
    monkeypatch.setattr(freshness, "registry", lambda: type("R", (), {"sources": {"fake": fake}})())
    TransformLedger(store, "d").record("fake", "k", run_id="r", status="pending")
    loaded = datetime.now(UTC)
    alerts: list[str] = []
    # Hours after the load: fresh, stale, still stale, reloaded (fresh), stale again.
    for hours, reload in ((1, False), (80, False), (90, False), (91, True), (200, False)):
        if reload:
            TransformLedger(store, "d").record("fake", "k2", run_id="r2", status="pending")
            loaded = datetime.now(UTC)
            hours = 1
        check_freshness(alerts.append, store=store, now=loaded + timedelta(hours=hours))

    assert len(alerts) == 2
    assert all(a.startswith("source fake: last gated load") for a in alerts)


def test_a_micro_batch_that_found_nothing_keeps_a_quiet_source_fresh(store):
    """A changes-only extract that read the source and found no change records its check: the source
    is quiet (a clinic at night), not stale; a later gated slice is the last success again."""
    import time

    from elt_platform.freshness import NO_CHANGE, record_check

    TransformLedger(store, "d").record("fake", "k", run_id="r-load", status="pending")
    later = datetime.now(UTC) + timedelta(hours=1)
    (stale,) = source_freshness(store, now=later, sources=[_source("* * * * *")])
    assert stale.status == "red"

    time.sleep(0.01)  # the check comes after the slice
    record_check(store, "fake", "r-empty")
    (quiet,) = source_freshness(store, now=datetime.now(UTC) + timedelta(minutes=5),
                                sources=[_source("* * * * *")])  # fmt: skip
    assert (quiet.status, quiet.last.slice_key, quiet.last.run_id) == ("green", NO_CHANGE, "r-empty")

    time.sleep(0.01)
    TransformLedger(store, "d").record("fake", "k2", run_id="r-next", status="pending")
    (loaded,) = source_freshness(store, sources=[_source("* * * * *")])
    assert (loaded.last.slice_key, loaded.last.run_id) == ("k2", "r-next")
    # Another source's check is not this one's.
    record_check(store, "other", "r-other")
    assert source_freshness(store, sources=[_source("* * * * *")])[0].last.run_id == "r-next"

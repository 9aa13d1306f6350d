"""``build_extract_dag``: the shape of every extract DAG, and what its two tasks hand each other.

Task bodies are run as plain functions with a stand-in Airflow context, a stand-in extract callable
and a stand-in quality gate; the real ones have their own tests.
"""

from __future__ import annotations

import sys
import types
from collections import defaultdict
from datetime import date, datetime

import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import ParamValidationError

from elt_platform import dag_factory
from elt_platform.dag_factory import build_extract_dag
from elt_platform.intervals import interval_from_events
from elt_platform.pipelines import EXTRACT_PIPELINES, ExtractPipeline

START = datetime(2024, 1, 1)
FAKE_ASSETS = (
    Asset(name="bronze.fake_things", uri="iceberg://lakehouse/bronze/fake_things"),
    Asset(name="bronze.fake_things_quarantine", uri="iceberg://lakehouse/bronze/fake_things_quarantine"),
)


def _alaqan(**overrides):
    kwargs = {"source": "alaqan", "schedule": "0 2 * * *", "owner": "data-platform", "start_date": START}
    return build_extract_dag(**{**kwargs, **overrides})


@pytest.fixture
def fake_source(monkeypatch):
    """A second pipeline, ``fake``, whose extract callable records its calls."""
    calls = []

    def extract(start, end, *, run_id):
        calls.append((start, end, run_id))
        return {"days": (end - start).days, "events": 42}

    monkeypatch.setitem(sys.modules, "fake_source_extract", types.SimpleNamespace(extract=extract))
    monkeypatch.setitem(
        EXTRACT_PIPELINES,
        "fake",
        ExtractPipeline(
            source="fake",
            extract="fake_source_extract:extract",
            bronze_suites=("bronze_fake_things", "bronze_fake_things_quarantine"),
            outlets=FAKE_ASSETS,
            description="fake things",
        ),
    )
    return calls


@pytest.fixture
def context(monkeypatch):
    """The Airflow context the task bodies will see (a dict they read and write)."""
    ctx = {"run_id": "manual__2025-03-10T09:00:00+00:00", "params": {}, "outlet_events": defaultdict(dict)}
    monkeypatch.setattr(dag_factory, "get_current_context", lambda: ctx)
    return ctx


def test_tasks_and_their_order():
    dag = _alaqan()
    assert dag.dag_id == "extract_alaqan"
    assert set(dag.task_ids) == {"extract_to_bronze", "quality_gate_bronze"}
    assert dag.get_task("extract_to_bronze").upstream_task_ids == set()
    assert dag.get_task("quality_gate_bronze").upstream_task_ids == {"extract_to_bronze"}
    assert dag.get_task("quality_gate_bronze").downstream_task_ids == set()


def test_only_the_gate_emits_the_bronze_asset():
    dag = _alaqan()
    assert [(a.name, a.uri) for a in dag.get_task("quality_gate_bronze").outlets] == [
        ("bronze.alaqan_visits", "iceberg://lakehouse/bronze/alaqan_visits")
    ]
    assert dag.get_task("extract_to_bronze").outlets == []


def test_schedule_is_a_utc_cron_data_interval_timetable():
    timetable = _alaqan(schedule="30 4 * * 1-5").timetable
    assert type(timetable).__name__ == "CronDataIntervalTimetable"
    assert (timetable.expression, str(timetable.timezone)) == ("30 4 * * 1-5", "UTC")


def test_owner_retries_tags_and_catchup_are_passed_through():
    dag = _alaqan(owner="team-people", tags=("pii",), catchup=True)
    assert {t.owner for t in dag.tasks} == {"team-people"}
    assert min(t.retries for t in dag.tasks) >= 1
    assert set(dag.tags) == {"extract", "bronze", "alaqan", "pii"}
    assert dag.catchup is True
    assert dag.start_date.replace(tzinfo=None) == START


def test_interval_params_default_to_none():
    params = _alaqan().params
    assert set(params.keys()) == {"start_date", "end_date"}
    assert params["start_date"] is None and params["end_date"] is None


@pytest.mark.parametrize("value", ["2025-02-30", "yesterday", "01.03.2025"])
def test_interval_params_reject_non_dates(value):
    param = _alaqan().params.get_param("start_date")
    assert param.resolve("2025-03-01") == "2025-03-01"
    with pytest.raises(ParamValidationError):
        param.resolve(value)


def test_doc_falls_back_to_the_pipeline_description(fake_source):
    assert build_extract_dag(source="fake", schedule="@daily", owner="o", start_date=START).doc_md == (
        "fake things"
    )


def test_unknown_source_is_a_key_error():
    with pytest.raises(KeyError, match="nope"):
        build_extract_dag(source="nope", schedule="@daily", owner="o", start_date=START)


def test_extract_task_loads_the_resolved_interval(fake_source, context):
    context["params"] = {"start_date": "2025-03-01", "end_date": "2025-03-04"}
    dag = build_extract_dag(source="fake", schedule="@daily", owner="o", start_date=START)

    loaded = dag.get_task("extract_to_bronze").python_callable()

    assert fake_source == [(date(2025, 3, 1), date(2025, 3, 4), "manual__2025-03-10T09:00:00+00:00")]
    assert loaded == {
        "start": "2025-03-01",
        "end": "2025-03-04",
        "run_id": "manual__2025-03-10T09:00:00+00:00",
        "days": 3,
        "events": 42,
    }


def test_gate_task_runs_every_suite_then_announces_the_interval_on_every_asset(
    fake_source, context, monkeypatch
):
    gated = []

    def run_gate(suite, start, end, *, run_id):
        gated.append((suite, start, end, run_id))
        return types.SimpleNamespace(result_uri=f"file:///quality/{suite}.json")

    monkeypatch.setattr("elt_platform.quality.gate.run_gate", run_gate)
    context["outlet_events"] = defaultdict(types.SimpleNamespace)
    loaded = {"start": "2025-03-01", "end": "2025-03-04", "run_id": "r-7", "days": 3, "events": 42}
    dag = build_extract_dag(source="fake", schedule="@daily", owner="o", start_date=START)

    out = dag.get_task("quality_gate_bronze").python_callable(loaded)

    interval = (date(2025, 3, 1), date(2025, 3, 4))
    assert gated == [
        ("bronze_fake_things", *interval, "r-7"),
        ("bronze_fake_things_quarantine", *interval, "r-7"),
    ]
    assert out["quality_results"] == {
        "bronze_fake_things": "file:///quality/bronze_fake_things.json",
        "bronze_fake_things_quarantine": "file:///quality/bronze_fake_things_quarantine.json",
    }
    extras = [context["outlet_events"][asset].extra for asset in FAKE_ASSETS]
    assert extras == [{"start": "2025-03-01", "end": "2025-03-04", "run_id": "r-7", "events": 42}] * 2
    # The transform DAG reads the interval back from these extras.
    assert interval_from_events(extras) == interval


def test_a_failed_gate_announces_nothing(fake_source, context, monkeypatch):
    def run_gate(suite, start, end, *, run_id):
        raise RuntimeError(f"{suite} failed")

    monkeypatch.setattr("elt_platform.quality.gate.run_gate", run_gate)
    dag = build_extract_dag(source="fake", schedule="@daily", owner="o", start_date=START)
    loaded = {"start": "2025-03-01", "end": "2025-03-02", "run_id": "r-8"}

    with pytest.raises(RuntimeError, match="bronze_fake_things failed"):
        dag.get_task("quality_gate_bronze").python_callable(loaded)
    assert context["outlet_events"] == {}

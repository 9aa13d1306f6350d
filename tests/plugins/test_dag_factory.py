"""The registry drives every DAG: declarations → extract/transform DAGs, assets, table lists, ledger.

The fake-source tests prove the kernel's promise: a new source is its package under ``sources/``
(with ``pipeline.py``), its bronze schemas and dbt models — the DAG files, assets, CLI table lists
and the transform ledger pick it up with nothing else changed. The fake package is written to a
temporary directory that joins ``elt_platform.sources``'s package path; its DAGs are then parsed
from the real ``dags/`` folder and run with Airflow's own ``dag.test()``.
"""

from __future__ import annotations

import sys
import textwrap
from datetime import UTC, date, datetime, timedelta

import pytest

import elt_platform.sources
from elt_platform.registry import (
    Domain,
    Extract,
    RegistryError,
    Source,
    build_registry,
    registry,
)

START = datetime(2024, 1, 1)

FAKE_PIPELINE = '''
"""A fake source: one interval extract into bronze.fakesrc_things, one domain."""
from datetime import datetime

from elt_platform.registry import Domain, Extract, Source

SOURCE = Source(
    name="fakesrc",
    title="Fake",
    owner="team-fake",
    start_date=datetime(2024, 1, 1),
    extracts=(
        Extract(
            dag_id="extract_fakesrc",
            kind="interval",
            call="elt_platform.sources.fakesrc.extract:extract",
            schedule="0 3 * * *",
            doc="fake things",
        ),
        Extract(
            dag_id="extract_fakesrc_changes",
            kind="interval",
            call="elt_platform.sources.fakesrc.extract:changes",
            schedule="* * * * *",
            doc="fake micro-batch",
            changes_only=True,
        ),
    ),
    bronze_tables=("bronze.fakesrc_things",),
    trigger_table="bronze.fakesrc_things",
    domains=("fakedomain",),
)
DOMAINS = (
    Domain(
        name="fakedomain",
        sources=("fakesrc",),
        rebuild="interval",
        silver_tables=("silver.fakesrc_things",),
        gold_tables=("gold.fake_mart",),
        owner="team-fake",
        start_date=datetime(2024, 1, 1),
        doc="fake marts",
    ),
)
'''
FAKE_EXTRACT = """
CALLS = []


def extract(start, end, *, run_id):
    CALLS.append((start, end, run_id))
    return {"days": (end - start).days, "events": 7 * (end - start).days}


WRITTEN = [0, 3]  # rows each micro-batch writes, in turn


def changes(start, end, *, run_id):
    return {"written": {"bronze.fakesrc_things": WRITTEN.pop(0)}}
"""


def _source(name="s", **overrides) -> Source:
    values = {
        "name": name,
        "title": name,
        "owner": "o",
        "start_date": START,
        "extracts": (Extract(f"extract_{name}", "interval", "m:f", "@daily", "d"),),
        "bronze_tables": (f"bronze.{name}_x",),
        "trigger_table": f"bronze.{name}_x",
        "domains": ("d",),
    }
    return Source(**{**values, **overrides})


def _domain(name="d", sources=("s",)) -> Domain:
    return Domain(name, sources, "interval", (), (), "o", START, "doc")


def _module(source=None, domains=()):
    return type("Declarations", (), {"SOURCE": source, "DOMAINS": domains})


def test_an_extract_gates_with_its_own_suites_else_all_of_its_sources(monkeypatch):
    """iDent's minute micro-batch gates receptions only; its daily extract gates all 18 tables."""
    from elt_platform.quality import gate
    from elt_platform.runs import extract as runs_extract
    from elt_platform.state import TransformLedger

    ran: list[str] = []
    monkeypatch.setattr(
        gate, "run_gate", lambda suite, *a, **k: ran.append(suite) or type("R", (), {"result_uri": suite})()
    )
    monkeypatch.setattr(TransformLedger, "mark_ready", lambda *a, **k: None)
    loaded = {"start": "2025-03-09", "end": "2025-03-10"}
    suites = registry().sources["ident"].bronze_suites

    runs_extract.gate_interval("ident", loaded, run_id="r", dag_id="extract_ident_receptions")
    assert ran == ["bronze_ident_receptions"]
    ran.clear()
    runs_extract.gate_interval("ident", loaded, run_id="r", dag_id="extract_ident")
    assert ran == list(suites) and len(ran) == 18


def test_registry_holds_the_shipped_sources():
    reg = registry()
    assert set(reg.sources) >= {"alaqan", "onec"}
    assert {e.dag_id for _, e in reg.extracts()} >= {"extract_alaqan", "extract_onec", "extract_onec_stocks"}
    assert reg.domains["attendance"].sources == ("alaqan",)
    assert reg.domains["catalog"].rebuild == "state"
    # iDent's daily and minute extracts share its watermarks: one pool of one slot serialises them.
    assert set(reg.pools()) == {"ident"}
    # The CLI's table lists come from here: every 1C bronze table, silver and gold included.
    assert len([t for t in reg.tables("onec") if t.startswith("bronze.")]) == 15
    assert "gold.alaqan_monthly_summary" in reg.tables("alaqan")
    assert "gold.alaqan_monthly_summary" not in reg.tables("onec")


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        ([_module(_source(), (_domain(),)), _module(_source(), ())], "source 's' declared twice"),
        ([_module(_source(), (_domain(sources=("s", "nope")),))], "reads unknown sources"),
        ([_module(_source(domains=("other",)), (_domain(),))], "feeds undeclared domains"),
        ([_module(_source(bronze_tables=("bronze.t_x",)), (_domain(),))], "bronze tables must be"),
        (
            [
                _module(
                    _source(
                        bronze_suites=("s_x",),
                        extracts=(Extract("extract_s", "interval", "m:f", "@daily", "d", suites=("s_y",)),),
                    ),
                    (_domain(),),
                )
            ],
            "gates with suites \\['s_y'\\] its source does not declare",
        ),
        (
            [
                _module(_source("a"), (_domain(sources=("a", "b")),)),
                _module(_source("b", extracts=(Extract("extract_a", "interval", "m:f", "@daily", "d"),)), ()),
            ],
            "DAG ids declared twice",
        ),
    ],
)
def test_contradicting_declarations_are_refused(modules, message):
    with pytest.raises(RegistryError, match=message):
        build_registry(modules)


def test_domain_selects_its_marts_and_their_upstream_by_graph():
    domain = Domain("crm", ("amo", "ident"), "interval", (), (), "o", START, "doc")
    assert domain.silver_selectors() == [
        "+path:models/marts/crm,tag:silver",
        "tag:amo,tag:silver",
        "tag:ident,tag:silver",
        "source:amo",
        "source:ident",
    ]
    assert domain.gold_selectors() == ["path:models/marts/crm"]


@pytest.fixture
def fake_source(tmp_path, monkeypatch, lakehouse_env):
    """``elt_platform.sources.fakesrc``: a package and a registry entry, nothing else."""
    package = tmp_path / "extra_sources" / "fakesrc"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""Fake source."""\n')
    (package / "pipeline.py").write_text(textwrap.dedent(FAKE_PIPELINE))
    (package / "extract.py").write_text(textwrap.dedent(FAKE_EXTRACT))
    monkeypatch.setattr(
        elt_platform.sources, "__path__", [*elt_platform.sources.__path__, str(package.parent)]
    )
    registry.cache_clear()
    yield
    registry.cache_clear()
    for name in [m for m in sys.modules if m.startswith("elt_platform.sources.fakesrc")]:
        del sys.modules[name]


def test_a_new_source_gets_its_dags_assets_and_tables(fake_source):
    from elt_platform.local_run import load_dag

    extract = load_dag("extract_fakesrc")
    transform = load_dag("transform_fakedomain")
    assert set(extract.tags) == {"extract", "bronze", "fakesrc"}
    assert {t.owner for t in extract.tasks} == {"team-fake"}
    assert [a.name for a in extract.get_task("quality_gate_bronze").outlets] == ["bronze.fakesrc_things"]
    assert [a.name for a in transform.get_task("dbt_build_gold").outlets] == ["gold.fake_mart"]
    assert "bronze.fakesrc_things" in repr(transform.timetable.asset_condition)
    assert registry().tables("fakesrc") == [
        "bronze.fakesrc_things",
        "silver.fakesrc_things",
        "gold.fake_mart",
    ]


def test_a_new_source_runs_through_the_ledger_end_to_end(fake_source, monkeypatch):
    """extract_fakesrc twice (two intervals) → both pending → one transform run builds both, merged."""
    from elt_platform.local_run import run_dag
    from elt_platform.state import TransformLedger, open_state_store
    from elt_platform.transform import layers

    built = []

    def fake_build_layer(domain, layer, start, end):
        built.append((domain.name, layer, start, end))
        return type("Summary", (), {"statuses": {"success": 1}})()

    monkeypatch.setattr(layers, "build_layer", fake_build_layer)

    run_dag("extract_fakesrc", {"start_date": "2025-03-03", "end_date": "2025-03-05"})
    run_dag("extract_fakesrc", {"start_date": "2025-03-05", "end_date": "2025-03-06"})
    run_dag("extract_fakesrc", {"start_date": "2025-03-10", "end_date": "2025-03-11"})
    from elt_platform.sources.fakesrc.extract import CALLS

    assert [(s, e) for s, e, _ in CALLS] == [
        (date(2025, 3, 3), date(2025, 3, 5)),
        (date(2025, 3, 5), date(2025, 3, 6)),
        (date(2025, 3, 10), date(2025, 3, 11)),
    ]
    ledger = TransformLedger(open_state_store(), "fakedomain")
    assert sorted(e.slice_key for e in ledger.pending()) == [
        "2025-03-03/2025-03-05",
        "2025-03-05/2025-03-06",
        "2025-03-10/2025-03-11",
    ]

    report = run_dag("transform_fakedomain")

    assert report.ok
    merged = [(date(2025, 3, 3), date(2025, 3, 6)), (date(2025, 3, 10), date(2025, 3, 11))]
    assert built == [("fakedomain", layer, s, e) for layer in ("silver", "gold") for s, e in merged]
    assert ledger.pending() == []
    # Nothing pending: the next run skips its builds instead of rebuilding anything.
    built.clear()
    again = run_dag("transform_fakedomain")
    assert again.ok and built == []
    assert {t.task_id: t.state for t in again.tasks}["claim_pending"] == "skipped"


def test_a_micro_batch_that_wrote_nothing_wakes_nothing_downstream(fake_source):
    """A changes-only extract with no row written: no ledger slice, gate skipped (so no asset event);
    the next one with rows is handed on as usual."""
    from elt_platform.local_run import run_dag
    from elt_platform.state import TransformLedger, open_state_store

    ledger = TransformLedger(open_state_store(), "fakedomain")
    conf = {"start_date": "2025-03-10", "end_date": "2025-03-11"}

    empty = run_dag("extract_fakesrc_changes", conf)
    states = {t.task_id: t.state for t in empty.tasks}
    assert states == {"extract_to_bronze": "success", "quality_gate_bronze": "skipped"}
    assert ledger.pending() == []
    # Quiet, not stale: the run that found nothing is the source's last success for freshness.
    from elt_platform.freshness import NO_CHANGE, last_successes

    assert last_successes(open_state_store())["fakesrc"].slice_key == NO_CHANGE

    some = run_dag("extract_fakesrc_changes", conf)
    assert {t.task_id: t.state for t in some.tasks}["quality_gate_bronze"] == "success"
    assert [e.slice_key for e in ledger.pending()] == ["2025-03-10/2025-03-11"]


def test_a_failed_transform_leaves_its_intervals_pending(fake_source, monkeypatch):
    from elt_platform.local_run import run_dag
    from elt_platform.state import TransformLedger, open_state_store
    from elt_platform.transform import layers

    def broken(domain, layer, start, end):
        if layer == "gold":
            raise RuntimeError("gold model failed")
        return type("Summary", (), {"statuses": {"success": 1}})()

    monkeypatch.setattr(layers, "build_layer", broken)
    run_dag("extract_fakesrc", {"start_date": "2025-03-03", "end_date": "2025-03-04"})

    failed = run_dag("transform_fakedomain", check=False)

    assert failed.state == "failed"
    ledger = TransformLedger(open_state_store(), "fakedomain")
    assert [e.slice_key for e in ledger.pending()] == ["2025-03-03/2025-03-04"]


def test_an_inverted_interval_fails_at_once_without_retry(fake_source):
    from elt_platform.local_run import load_dag, run_dag

    assert load_dag("extract_fakesrc").get_task("extract_to_bronze").retries == 2
    report = run_dag(
        "extract_fakesrc", {"start_date": "2025-03-05", "end_date": "2025-03-01"}, retries=True, check=False
    )

    # With its 2 retries kept, a plain exception would leave the task up_for_retry (5 minutes):
    # AirflowFailException fails it at once.
    assert report.state == "failed"
    assert {t.task_id: t.state for t in report.tasks}["extract_to_bronze"] == "failed"


def test_the_fast_path_is_one_dbt_invocation_by_the_silver_task(monkeypatch):
    """Incremental work: silver builds the fast path's silver and gold models at once, gold builds
    nothing more (its task only emits the assets); full work: each layer in its own invocation."""
    from elt_platform.runs import transform as runs_transform

    invocations: list[list[str]] = []

    def fake_run_dbt(args, **_):
        invocations.append(list(args))
        return type("Summary", (), {"statuses": {"success": 5}})()

    monkeypatch.setattr("elt_platform.transform.layers.run_dbt", fake_run_dbt)
    fast = registry().domains["clinic"].incremental
    assert fast is not None
    work = {"intervals": [], "slices": 1, "full": True, "incremental": True, "reason": None}

    assert runs_transform.build("clinic", "silver", work) == {"success": 5}
    assert runs_transform.build("clinic", "gold", work) == {}
    assert len(invocations) == 1
    selected = invocations[0][
        invocations[0].index("--select") + 1 : invocations[0].index("--exclude-resource-type")
    ]
    assert selected == [*fast.silver, *fast.gold] and "--full-refresh" not in invocations[0]
    # The fast path's models only; the full builds run the data tests.
    excluded = invocations[0][invocations[0].index("--exclude-resource-type") + 1 :]
    assert excluded == ["unit_test", "test"]

    invocations.clear()
    full = {**work, "incremental": False}
    runs_transform.build("clinic", "silver", full)
    runs_transform.build("clinic", "gold", full)
    assert len(invocations) == 2 and all("--full-refresh" in args for args in invocations)
    assert all(args[args.index("--exclude-resource-type") + 1 :] == ["unit_test"] for args in invocations)


def test_a_micro_batch_polled_every_30_seconds_runs_on_a_trigger_timetable():
    """iDent's micro-batch: a period, not a cron; each run is a point in time (it loads the day before,
    as a cron trigger's run does: tests/plugins/test_intervals.py); the daily extract keeps its cron
    data intervals."""
    from airflow.sdk import CronDataIntervalTimetable, DeltaTriggerTimetable

    from elt_platform.intervals import resolve_interval
    from elt_platform.local_run import load_dag

    micro = load_dag("extract_ident_receptions").timetable
    assert isinstance(micro, DeltaTriggerTimetable)
    assert (micro.delta, micro.interval) == (timedelta(seconds=30), timedelta(0))
    run = datetime(2025, 3, 10, 9, 0, 30, tzinfo=UTC)
    assert resolve_interval(None, run, run, today=date(2025, 3, 10)) == (date(2025, 3, 9), date(2025, 3, 10))
    assert isinstance(load_dag("extract_ident").timetable, CronDataIntervalTimetable)

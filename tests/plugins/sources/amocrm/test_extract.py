"""load_interval into a temporary lakehouse: one transaction, reruns, quarantine, field changes."""

import json
from datetime import date, timedelta
from pathlib import Path

import pyarrow.compute as pc
import pytest
from tests.plugins.sources.amocrm.conftest import CUSTOM_FIELD, EVENT, USER, FakeApi, epoch, recorded

from elt_platform.http.errors import ServerError
from elt_platform.landing import read_landed
from elt_platform.sources.amocrm.extract import TABLES, commit_groups, day_filter, load_interval

START, END = date(2024, 3, 1), date(2024, 3, 3)
DAY1, DAY2, DAY3 = START, START + timedelta(days=1), START + timedelta(days=2)
LEADS_FIELDS = [
    {"id": 501, "name": "БИН", "type": "text", "code": None, "sort": 1, "is_deletable": True, "enums": None},
    {
        "id": 502,
        "name": "Источник",
        "type": "select",
        "code": None,
        "sort": 2,
        "is_deletable": True,
        "enums": [],
    },
]


def _versions(records: list[dict], day: date, start_id: int = 0) -> list[dict]:
    """Recorded records moved onto ``day`` (ids offset so versions of several days stay apart)."""
    return [{**r, "id": r["id"] + start_id, "updated_at": epoch(day, 9 + n)} for n, r in enumerate(records)]


def _api() -> FakeApi:
    leads = recorded("leads.list.page2.json")["_embedded"]["leads"]
    api = FakeApi(
        records={
            "leads/pipelines": recorded("pipelines.list.json")["_embedded"]["pipelines"],
            "users": [USER],
            "leads/custom_fields": LEADS_FIELDS,
            "contacts/custom_fields": [CUSTOM_FIELD],
        }
    )
    day1_leads = _versions(leads, DAY1) + [_versions([recorded("lead.get.with_embedded.json")], DAY1)[0]]
    api.add("leads", DAY1, *day1_leads, day1_leads[0], {"id": "x-1", "updated_at": epoch(DAY1)})
    api.add("leads", DAY2, *_versions(leads, DAY2, start_id=1), {**day1_leads[1], "updated_at": epoch(DAY1)})
    api.add("companies", DAY1, *_versions(recorded("companies.list.json")["_embedded"]["companies"], DAY1))
    api.add("contacts", DAY2, *_versions([recorded("contact.get.json")], DAY2))
    api.add("tasks", DAY2, *_versions(recorded("tasks.list.json")["_embedded"]["tasks"], DAY2))
    api.add("events", DAY1, {**EVENT, "created_at": epoch(DAY1)})
    return api


def _rows(catalog, table: str, *columns: str) -> list[tuple]:
    data = catalog.load_table(f"bronze.amocrm_{table}").scan().to_arrow()
    return sorted(zip(*(data.column(c).to_pylist() for c in columns), strict=True))


def _counts(catalog) -> dict[str, int]:
    return {name: len(catalog.load_table(f"bronze.amocrm_{name}").scan().to_arrow()) for name in TABLES}


def test_day_filter_selects_one_utc_day_in_cursor_order() -> None:
    assert day_filter("leads", DAY1) == {
        "filter[updated_at][from]": 1709251200,
        "filter[updated_at][to]": 1709337599,
        "order[updated_at]": "asc",
        "with": "contacts,companies",
    }
    assert day_filter("events", DAY1) == {
        "filter[created_at][from]": 1709251200,
        "filter[created_at][to]": 1709337599,
    }


def test_interval_lands_every_page_and_fills_every_table(catalog) -> None:
    api = _api()

    summary = load_interval(api, START, END, run_id="run-1", catalog=catalog)

    assert summary.rows == {
        "pipelines": 1,
        "users": 1,
        "custom_fields": 3,
        "companies": 2,
        "contacts": 1,
        "leads": 5,
        "tasks": 2,
        "events": 1,
        "quarantine": 2,
    }
    assert _counts(catalog) == summary.rows
    assert summary.quarantine_reasons == {"bad_id": 1, "outside_interval": 1}
    assert summary.quarantined_by_entity == {"leads": 2} and summary.quarantined == 2
    assert summary.duplicates == {"leads": 1}
    # Snapshots: 1 page each (companies/custom_fields 204); per-day lists: a 204 for each empty day.
    assert summary.pages == {
        "pipelines": 1,
        "users": 1,
        "custom_fields": 3,
        "companies": 2,
        "contacts": 2,
        "leads": 2,
        "tasks": 2,
        "events": 2,
    }
    assert (summary.requests, summary.no_content) == (15, 5)
    assert _rows(catalog, "leads", "updated_date", "id")[:3] == [
        (DAY1, 14460),
        (DAY1, 19619),
        (DAY1, 3912171),
    ]
    assert _rows(catalog, "custom_fields", "entity_type", "id") == [
        ("contacts", 3),
        ("leads", 501),
        ("leads", 502),
    ]
    assert {day for (day,) in _rows(catalog, "pipelines", "snapshot_date")} == {START}
    assert _rows(catalog, "quarantine", "slice_date", "reason")[0][1].startswith("bad_id")


def test_rows_carry_lineage_and_the_landed_page_folder(catalog) -> None:
    load_interval(_api(), START, END, run_id="run-1", catalog=catalog)

    leads = (
        catalog.load_table("bronze.amocrm_leads").scan(row_filter="updated_date = '2024-03-01'").to_arrow()
    )
    uris = set(leads.column("_source_uri").to_pylist())
    (uri,) = uris
    assert uri.endswith("/amocrm/leads/updated_date=2024-03-01")
    assert set(leads.column("_run_id").to_pylist()) == {"run-1"}
    assert set(leads.column("_batch_id").to_pylist()) == {"2024-03-01/2024-03-03"}
    assert pc.all(pc.equal(leads.column("loaded_at"), leads.column("_loaded_at"))).as_py()
    (page,) = Path(uri.removeprefix("file://"), "page=00001").glob("*.json.gz")
    assert b'"_embedded"' in read_landed(page.as_uri())


def test_rerun_replaces_its_slices(catalog) -> None:
    load_interval(_api(), START, END, run_id="run-1", catalog=catalog)
    first = _counts(catalog)

    load_interval(_api(), START, END, run_id="run-2", catalog=catalog)

    assert _counts(catalog) == first
    assert {run for (run,) in _rows(catalog, "leads", "_run_id")} == {"run-2"}


def test_rerun_empties_days_the_source_has_emptied(catalog) -> None:
    load_interval(_api(), START, END, run_id="run-1", catalog=catalog)
    api = _api()
    api.days.pop(("tasks", DAY2))

    summary = load_interval(api, START, END, run_id="run-2", catalog=catalog)

    assert summary.rows["tasks"] == 0 and _counts(catalog)["tasks"] == 0


def test_a_failing_commit_leaves_every_table_as_it_was(catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    import elt_platform.bronze.transaction as transaction

    load_interval(_api(), START, END, run_id="run-1", catalog=catalog)
    before = {name: _rows(catalog, name, "_run_id") for name in TABLES}
    real = transaction.replace_slice

    def failing(table, data, **kwargs):
        if table.name()[-1] == "amocrm_tasks":
            raise OSError("object store unavailable")
        return real(table, data, **kwargs)

    monkeypatch.setattr(transaction, "replace_slice", failing)
    with pytest.raises(OSError, match="object store unavailable"):
        load_interval(_api(), START, END, run_id="run-2", catalog=catalog)

    assert {name: _rows(catalog, name, "_run_id") for name in TABLES} == before


def test_an_api_failure_commits_nothing(catalog) -> None:
    api = _api()
    api.fail["events"] = ServerError("events page 1 unavailable after 7 attempt(s)", status=503)

    with pytest.raises(ServerError):
        load_interval(api, START, END, run_id="run-1", catalog=catalog)

    assert set(_counts(catalog).values()) == {0}


def test_custom_field_changes_are_reported_against_the_previous_snapshot(
    catalog, caplog: pytest.LogCaptureFixture
) -> None:
    first = load_interval(_api(), DAY1, DAY2, run_id="run-1", catalog=catalog)
    api = _api()
    api.records["leads/custom_fields"] = [
        {**LEADS_FIELDS[0], "name": "БИН компании"},
        {"id": 503, "name": "Сфера", "type": "text"},
    ]

    second = load_interval(api, DAY2, END, run_id="run-2", catalog=catalog)
    rerun = load_interval(api, DAY2, END, run_id="run-3", catalog=catalog)

    assert first.previous_custom_fields_snapshot is None
    assert first.custom_field_changes["leads"] == {"new": [], "renamed": [], "removed": []}
    assert second.previous_custom_fields_snapshot == "2024-03-01"
    assert second.custom_field_changes["leads"] == {
        "new": [{"id": 503, "name": "Сфера"}],
        "renamed": [{"id": 501, "from": "БИН", "to": "БИН компании"}],
        "removed": [{"id": 502, "name": "Источник"}],
    }
    assert second.custom_field_changes["contacts"] == {"new": [], "renamed": [], "removed": []}
    assert (
        rerun.custom_field_changes == second.custom_field_changes
    )  # compared with the day before, not itself
    assert "renamed" in caplog.text and "БИН компании" in caplog.text


def test_summary_is_json_for_xcom(catalog) -> None:
    summary = load_interval(_api(), START, END, run_id="run-1", catalog=catalog).as_dict()

    assert json.loads(json.dumps(summary)) == summary
    assert not {"start", "end", "run_id"} & set(summary)  # the runner adds those


def test_pages_become_arrow_one_page_at_a_time(catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    import elt_platform.sources.amocrm.extract as extract

    lead = recorded("leads.list.page2.json")["_embedded"]["leads"][0]
    api = FakeApi()
    api.add("leads", DAY1, *({**lead, "id": n, "updated_at": epoch(DAY1)} for n in range(1, 601)))
    batches: list[int] = []

    def spy(records, spec, constants=None, **kwargs):
        batches.append(len(records))
        return records_to_arrow(records, spec, constants, **kwargs)

    records_to_arrow = extract.records_to_arrow
    monkeypatch.setattr(extract, "records_to_arrow", spy)
    summary = load_interval(api, DAY1, DAY2, run_id="run-1", catalog=catalog)

    assert summary.rows["leads"] == 600 and summary.pages["leads"] == 3
    assert sorted(batches) == [100, 250, 250]  # dicts never outlive their page


def test_an_empty_interval_is_refused(catalog) -> None:
    with pytest.raises(ValueError, match="empty"):
        load_interval(FakeApi(), START, START, run_id="run-1", catalog=catalog)


def test_the_bronze_gate_passes_on_a_loaded_interval(catalog) -> None:
    from elt_platform.quality.gate import run_gate

    load_interval(_api(), START, END, run_id="run-1", catalog=catalog)

    result = run_gate("bronze_amocrm_leads", START, END, run_id="run-1")

    assert result.success and result.rows == 5 and not result.failed


def test_the_registry_entry_names_the_tables_this_loader_writes() -> None:
    from elt_platform.sources.amocrm import pipeline
    from elt_platform.sources.amocrm.settings import ENTITIES

    assert pipeline.ENTITIES == ENTITIES
    assert pipeline.SOURCE.bronze_tables == tuple(f"bronze.amocrm_{name}" for name in TABLES)


@pytest.mark.parametrize(
    ("sizes", "limit", "groups"),
    [
        ({}, 10, [[DAY1, DAY2, DAY3]]),
        ({DAY1: 4, DAY2: 4, DAY3: 4}, 10, [[DAY1, DAY2], [DAY3]]),
        ({DAY1: 11, DAY3: 2}, 10, [[DAY1], [DAY2, DAY3]]),
        ({DAY1: 2, DAY2: 30, DAY3: 2}, 10, [[DAY1], [DAY2], [DAY3]]),
        ({DAY1: 10, DAY2: 0, DAY3: 1}, 10, [[DAY1, DAY2], [DAY3]]),
    ],
)
def test_commit_groups_bound_the_bytes_of_one_commit(sizes, limit, groups) -> None:
    assert commit_groups([DAY1, DAY2, DAY3], sizes, limit) == groups


def _snapshots(catalog, table: str) -> int:
    return len(catalog.load_table(f"bronze.amocrm_{table}").snapshots())


def test_a_long_interval_is_committed_in_groups_of_days(catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    from elt_platform.sources.amocrm import extract

    whole = load_interval(_api(), START, END, run_id="run-1", catalog=catalog)

    def snapshots_of_a_rerun(run_id: str) -> int:
        before = _snapshots(catalog, "leads")
        assert load_interval(_api(), START, END, run_id=run_id, catalog=catalog).rows == whole.rows
        return _snapshots(catalog, "leads") - before

    in_one_commit = snapshots_of_a_rerun("run-2")
    monkeypatch.setattr(extract, "COMMIT_BYTES", 1)  # every day a commit of its own

    assert snapshots_of_a_rerun("run-3") == 2 * in_one_commit  # leads has rows on both days
    assert _counts(catalog) == whole.rows
    assert {run for (run,) in _rows(catalog, "leads", "_run_id")} == {"run-3"}


def test_a_failing_group_rolls_back_the_groups_before_it(catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    import elt_platform.bronze.transaction as transaction
    from elt_platform.sources.amocrm import extract

    load_interval(_api(), START, END, run_id="run-1", catalog=catalog)
    before = {name: _rows(catalog, name, "_run_id", "id") for name in ("leads", "tasks")}
    monkeypatch.setattr(extract, "COMMIT_BYTES", 1)
    real = transaction.replace_slice

    def failing(table, data, **kwargs):
        if table.name()[-1] == "amocrm_leads" and kwargs["values"] == [DAY2]:
            raise OSError("object store unavailable")
        return real(table, data, **kwargs)

    monkeypatch.setattr(transaction, "replace_slice", failing)
    with pytest.raises(OSError, match="object store unavailable"):
        load_interval(_api(), START, END, run_id="run-2", catalog=catalog)

    assert {name: _rows(catalog, name, "_run_id", "id") for name in ("leads", "tasks")} == before


def test_freed_memory_goes_back_after_every_commit(catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    from elt_platform.sources.amocrm import extract

    calls = []
    monkeypatch.setattr(extract, "release_freed_memory", lambda: calls.append(1))
    monkeypatch.setattr(extract, "COMMIT_BYTES", 1)

    load_interval(_api(), START, END, run_id="run-1", catalog=catalog)

    # One commit per snapshot table; with a 1-byte budget, one per day for each day-sliced table.
    snapshots = ("pipelines", "users", "custom_fields")
    assert len(calls) == len(snapshots) + 2 * (len(TABLES) - len(snapshots))

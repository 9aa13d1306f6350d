"""Finding and undoing a run's commits through the lineage the writer stamps into snapshots."""

from __future__ import annotations

from datetime import date

import pytest

from elt_platform.iceberg.maintenance import list_snapshots, rollback_run
from elt_platform.iceberg.writer import CommitInfo, replace_dates

TABLE = "bronze.alaqan_visits"
D1, D2 = date(2025, 3, 3), date(2025, 3, 4)
IIN_A, IIN_B = "910505350319", "850101450127"


@pytest.fixture
def three_runs(visits_table, make_visits):
    """run-1 loads two days (3 rows), run-2 reloads day 1 with 4 rows, run-3 reloads day 2 with 1 row."""
    loads = [
        (
            "run-1",
            [D1, D2],
            [
                (D1, IIN_A, "entry", "09:00:00"),
                (D1, IIN_A, "exit", "18:00:00"),
                (D2, IIN_B, "entry", "08:00:00"),
            ],
        ),
        ("run-2", [D1], [(D1, IIN_B, "entry", f"0{h}:00:00") for h in range(6, 10)]),
        ("run-3", [D2], [(D2, IIN_A, "exit", "20:00:00")]),
    ]
    counts = {}
    for run_id, dates, events in loads:
        replace_dates(
            visits_table,
            make_visits(events, run_id=run_id),
            column="visit_date",
            dates=dates,
            commit=CommitInfo(run_id, "alaqan", dates[0].isoformat(), dates[-1].isoformat()),
        )
        counts[run_id] = visits_table.scan().to_arrow().num_rows
    return counts


def _row_count() -> int:
    from elt_platform.iceberg.catalog import load_catalog

    return load_catalog().load_table(TABLE).scan().to_arrow().num_rows


def test_list_snapshots_shows_each_runs_commits_oldest_first(three_runs):
    snapshots = list_snapshots(TABLE)
    run_ids = [s["run_id"] for s in snapshots]
    # A replace is one logical commit, but it may take a delete and an overwrite snapshot.
    assert [r for i, r in enumerate(run_ids) if i == 0 or run_ids[i - 1] != r] == ["run-1", "run-2", "run-3"]
    assert [s["current"] for s in snapshots] == [False] * (len(snapshots) - 1) + [True]
    assert snapshots[0]["parent_id"] is None
    assert all(s["parent_id"] == p["snapshot_id"] for p, s in zip(snapshots, snapshots[1:], strict=False))
    assert snapshots[0]["interval"] == ["2025-03-03", "2025-03-04"]


def test_rollback_run_restores_the_row_count_before_the_run(three_runs):
    assert three_runs == {"run-1": 3, "run-2": 5, "run-3": 5}  # 3 - 2 + 4, then 5 - 1 + 1
    rollback_run(TABLE, "run-2")
    assert _row_count() == three_runs["run-1"]


def test_rollback_run_returns_the_snapshot_it_made_current(three_runs):
    last_of_run_2 = [s for s in list_snapshots(TABLE) if s["run_id"] == "run-2"][-1]["snapshot_id"]
    assert rollback_run(TABLE, "run-3") == last_of_run_2
    assert [s["snapshot_id"] for s in list_snapshots(TABLE) if s["current"]] == [last_of_run_2]


@pytest.mark.parametrize(
    ("run_id", "message"),
    [("never-ran", "no snapshot was written by run 'never-ran'"), ("run-1", "made the first commit")],
)
def test_rollback_run_refuses_runs_it_cannot_undo(three_runs, run_id, message):
    with pytest.raises(LookupError, match=message):
        rollback_run(TABLE, run_id)
    assert _row_count() == three_runs["run-3"]

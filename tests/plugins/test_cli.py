"""The platform CLI's lakehouse commands (``counts``, ``snapshots``, ``rollback``) on a temporary lakehouse.

``run`` and ``sql`` start Spark and the sandbox; the end-to-end tests cover them.
"""

from __future__ import annotations

import json
from datetime import date

import pytest
from tests.plugins.sources.alaqan.tables import ALAQAN_TABLES

from elt_platform.cli import _window, main, table_counts
from elt_platform.iceberg.writer import CommitInfo, replace_dates

TABLE = "bronze.alaqan_visits"
D1, D2 = date(2025, 3, 3), date(2025, 3, 4)


def _load(table, make_visits, run_id, events):
    days = sorted({e[0] for e in events})
    replace_dates(
        table,
        make_visits(events, run_id=run_id),
        column="visit_date",
        dates=days,
        commit=CommitInfo(run_id, "t"),
    )


@pytest.fixture
def two_runs(visits_table, make_visits):
    _load(visits_table, make_visits, "run-1", [(D1, "910505350319", "entry", "09:00:00")])
    _load(
        visits_table,
        make_visits,
        "run-2",
        [(D2, "910505350319", "entry", "09:00:00"), (D2, "910505350319", "exit", "18:00:00")],
    )


def test_counts_of_an_empty_lakehouse_are_unknown(lakehouse_env):
    counts = table_counts()
    assert set(ALAQAN_TABLES) <= set(counts)
    assert len([t for t in counts if t.startswith("bronze.onec_")]) == 15
    assert set(counts.values()) == {None}


def test_counts_come_from_the_current_snapshot(two_runs):
    assert table_counts((TABLE, "bronze.alaqan_visits_quarantine")) == {
        TABLE: 3,
        "bronze.alaqan_visits_quarantine": None,
    }


def test_a_created_but_empty_table_counts_zero(visits_table):
    assert table_counts((TABLE,)) == {TABLE: 0}


def test_counts_command_prints_every_table_of_a_source(two_runs, capsys):
    assert main(["counts", "--source", "alaqan"]) == 0
    lines = dict(line.split() for line in capsys.readouterr().out.splitlines())
    assert lines == {name: ("3" if name == TABLE else "-") for name in ALAQAN_TABLES}


@pytest.mark.parametrize(
    ("argv", "window"),
    [
        (["--start", "2025-03-03", "--end", "2025-03-09"], (D1, date(2025, 3, 10))),
        (["--start", "2025-03-03", "--end", "2025-03-03"], (D1, D2)),
        (["--days", "7", "--end", "2025-03-09"], (D1, date(2025, 3, 10))),
    ],
)
def test_run_window_takes_inclusive_dates(argv, window):
    from elt_platform.cli import build_parser

    assert _window(build_parser().parse_args(["run", *argv])) == window


def test_run_window_refuses_an_end_before_its_start():
    from elt_platform.cli import build_parser

    with pytest.raises(ValueError, match="before --start"):
        _window(build_parser().parse_args(["run", "--start", "2025-03-05", "--end", "2025-03-01"]))


def test_snapshots_command_prints_one_json_line_per_snapshot(two_runs, capsys):
    assert main(["snapshots", TABLE]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["run_id"] for r in rows] == ["run-1", "run-2"]
    assert [r["current"] for r in rows] == [False, True]


def test_rollback_command_undoes_a_run(two_runs, capsys):
    assert main(["rollback", TABLE, "--run-id", "run-2"]) == 0
    assert "before run run-2" in capsys.readouterr().out
    assert table_counts((TABLE,)) == {TABLE: 1}


@pytest.mark.parametrize(
    "argv", [[], ["rollback", TABLE], ["nope"]], ids=["no-command", "no-run-id", "unknown"]
)
def test_bad_usage_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2

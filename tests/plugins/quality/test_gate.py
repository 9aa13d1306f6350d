"""The bronze Great Expectations gate over an Iceberg slice: passes good rows, names failures, leaks no IIN.

Rows are written straight to ``bronze.alaqan_visits`` with the writer, bypassing the parser that would
normally quarantine them, so the gate is the last line of defence being tested.
"""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from elt_platform.iceberg.writer import CommitInfo, replace_dates
from elt_platform.quality.gate import SUITES_DIR, QualityGateError, run_gate

SUITE = "bronze_alaqan_visits"
DAY = date(2025, 3, 3)
NEXT = DAY + timedelta(days=1)
GOOD_IINS = ("910505350319", "850101450127")
GOOD = [
    (DAY, GOOD_IINS[0], "entry", "09:00:15"),
    (DAY, GOOD_IINS[0], "exit", "18:02:00"),
    (DAY, GOOD_IINS[1], "entry", "08:45:00"),
]


def _load(table, make_visits, events, day=DAY):
    replace_dates(
        table, make_visits(events), column="visit_date", dates=[day], commit=CommitInfo("gate-test", "alaqan")
    )


def _declared_expectations() -> int:
    return len(yaml.safe_load(Path(SUITES_DIR, f"{SUITE}.yaml").read_text(encoding="utf-8"))["expectations"])


def test_gate_passes_good_rows_and_stores_the_result(visits_table, make_visits):
    _load(visits_table, make_visits, GOOD)
    _load(visits_table, make_visits, [(NEXT, "000000000000", "enter", "99:99:99")], day=NEXT)

    result = run_gate(SUITE, DAY, NEXT, run_id="gate-test")

    assert result.success
    assert result.failed == []
    assert result.rows == len(GOOD)  # the bad row of the next day is outside the slice
    assert result.evaluated == _declared_expectations() + 1  # + the gate's own date-range expectation
    stored = json.loads(Path(result.result_uri.removeprefix("file://")).read_text(encoding="utf-8"))
    assert stored["success"] is True


BAD_IIN = "12345678901X"


@pytest.mark.parametrize(
    ("bad_event", "failed"),
    [
        pytest.param(
            (DAY, "770707300123", "enter", "09:10:00"),
            "expect_column_values_to_be_in_set(event): 1 unexpected of 4",
            id="unknown-event",
        ),
        pytest.param(
            (DAY, BAD_IIN, "entry", "09:10:00"),
            "expect_column_values_to_match_regex(iin): 1 unexpected of 4",
            id="malformed-iin",
        ),
        pytest.param(
            (DAY, "770707300123", "exit", "24:00:00"),
            "expect_column_values_to_match_regex(event_time): 1 unexpected of 4",
            id="impossible-time",
        ),
        pytest.param(
            (DAY, None, "exit", "17:00:00"),
            "expect_column_values_to_not_be_null(iin): 1 unexpected of 4",
            id="missing-iin",
        ),
    ],
)
def test_bad_row_fails_the_gate_naming_the_expectation_but_not_the_iin(
    visits_table, make_visits, caplog, bad_event, failed
):
    _load(visits_table, make_visits, [*GOOD, bad_event])

    with caplog.at_level(logging.DEBUG, logger="elt_platform"), pytest.raises(QualityGateError) as caught:
        run_gate(SUITE, DAY, NEXT, run_id="gate-test")

    message = str(caught.value)
    assert failed in message
    assert message.count("unexpected of") == 1, message
    for iin in {*GOOD_IINS, bad_event[1]} - {None}:
        assert iin not in message
        assert iin not in caplog.text


def _validate_in_child(home: str, run: int) -> bool:
    """One gate in a fresh process (what two parallel Airflow task processes do)."""
    import os

    import pandas as pd

    os.environ["ELT_HOME"] = home
    from elt_platform.quality.gate import validate_frame

    frame = pd.DataFrame({"n": [run, run + 1]})
    expectations = [{"expect_column_values_to_not_be_null": {"column": "n"}}]
    return validate_frame(
        "parallel_suite",
        frame,
        table="t",
        expectations=expectations,
        scope=f"run {run}",
        result_name=f"r{run}",
        run_id=f"r{run}",
    ).success


def test_parallel_gates_in_separate_processes_all_pass(tmp_path):
    """A backfill runs gates of one suite at once; GX's file context must not make one of them fail."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=3, mp_context=multiprocessing.get_context("spawn")) as pool:
        outcomes = list(pool.map(_validate_in_child, [str(tmp_path)] * 6, range(6)))

    assert outcomes == [True] * 6
    assert sorted(p.name for p in (tmp_path / "quality" / "parallel_suite").iterdir()) == [
        f"r{run}" for run in range(6)
    ]

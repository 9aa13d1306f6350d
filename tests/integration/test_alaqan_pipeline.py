"""End to end: the real Airflow DAGs (``dag.test()``) → Iceberg bronze → dbt silver/gold, against the sandbox.

Expected values are computed here, directly from the sandbox generator's events, with the rules
written out independently of the parser and the dbt SQL: which records are malformed and why, which IINs
are valid, deduplication, local time vs UTC instant, and the hours rule. One module-scoped run (plus one
rerun) keeps Spark's start-up cost to a single session.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest
from tests.plugins.sources.alaqan.tables import ALAQAN_TABLES

pytestmark = [pytest.mark.integration, pytest.mark.spark]

START, END = date(2025, 3, 3), date(2025, 3, 10)  # Monday .. next Monday (exclusive): 7 days
EMPLOYEES, SEED = 60, 11
HASH_KEY = "e2e-test-key"
# Alaqan's wall clock: Asia/Almaty, UTC+5 since 2024-03-01 (the registry's default zone, written out here).
ZONE = ZoneInfo("Asia/Almaty")
_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d")


def _iin_problem(iin: str) -> str | None:
    """Kazakhstan IIN rule, restated: century digit 1..6, birth date YYMMDD, two-pass mod-11 check.

    Returns None for a valid IIN, else the silver.alaqan_rejected reason.
    """
    digits = [int(c) for c in iin]
    century = {1: 1800, 2: 1800, 3: 1900, 4: 1900, 5: 2000, 6: 2000}.get(digits[6])
    if century is None:
        return "invalid_iin:century"
    try:
        date(century + int(iin[:2]), int(iin[2:4]), int(iin[4:6]))
    except ValueError:
        return "invalid_iin:birth_date"
    check = sum(d * w for d, w in zip(digits[:11], range(1, 12), strict=True)) % 11
    if check == 10:
        check = sum(d * w for d, w in zip(digits[:11], [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2], strict=True)) % 11
    return None if check != 10 and check == digits[11] else "invalid_iin:checksum"


def _bronze_problem(key: str, record: object) -> str | None:
    """Why the extractor refuses a record (first failing check), as a silver.alaqan_rejected reason."""
    if len(key) != 12 or not key.isascii() or not key.isdigit():
        return "invalid_iin:format"
    if not isinstance(record, dict) or set(record) != {"event", "time"}:
        return "malformed_record"
    if record["event"] not in ("entry", "exit"):
        return "unknown_event"
    if not isinstance(record["time"], str) or not _TIME.fullmatch(record["time"]):
        return "invalid_time"
    return None


def _hours(events: list[tuple[datetime, str]]) -> tuple[int, bool]:
    """The hours rule as a walk over the day's events sorted by (time, event): seconds and the flag.

    An entry opens an interval unless one is open already (then the first entry stays the opening one
    and the day is flagged); an exit closes the open interval, or is flagged when none is open; an
    interval still open at the end of the day is flagged and adds nothing.
    """
    seconds, unpaired, opened = 0, False, None
    for moment, event in events:
        if event == "entry":
            if opened is not None:
                unpaired = True
            else:
                opened = moment
        elif opened is not None:
            seconds += int((moment - opened).total_seconds())
            opened = None
        else:
            unpaired = True
    return seconds, unpaired or opened is not None


def _utc(local: datetime) -> datetime:
    return local.replace(tzinfo=ZONE).astimezone(UTC)


def expected_layers(dataset, start: date = START, end: date = END, hash_key: str = HASH_KEY) -> dict:
    """Every layer's expected content for the days ``[start, end)`` of ``dataset``, by the rules above.

    Also the production-profile test's model (tests/integration/test_prod_profile.py).
    """
    bronze, rejected = [], Counter()
    day = start
    while day < end:
        for key, records in dataset.day(day).items():
            for record in records:
                problem = _bronze_problem(key, record)
                if problem is None:
                    bronze.append((day, key, record["event"], record["time"]))
                else:
                    rejected["bronze", problem] += 1
        day += timedelta(days=1)
    for row in bronze:
        problem = _iin_problem(row[1])
        if problem is not None:
            rejected["silver", problem] += 1
    silver = sorted({row for row in bronze if _iin_problem(row[1]) is None})
    per_day = defaultdict(list)
    for visit_date, iin, event, clock in silver:
        per_day[(visit_date, iin)].append((datetime.combine(visit_date, time.fromisoformat(clock)), event))
    daily, double_entries = {}, 0
    for (visit_date, iin), events in per_day.items():
        events.sort()
        kinds = [e for _, e in events]
        double_entries += any(a == b == "entry" for a, b in zip(kinds, kinds[1:], strict=False))
        seconds, unpaired = _hours(events)
        hours = (Decimal(seconds) / Decimal(3600)).quantize(Decimal("0.01"), ROUND_HALF_UP)
        masked = hashlib.sha256(f"{hash_key}:{iin}".encode()).hexdigest()
        entries = [t for t, e in events if e == "entry"]
        exits = [t for t, e in events if e == "exit"]
        first_entry, last_exit = min(entries, default=None), max(exits, default=None)
        daily[(visit_date, masked)] = (
            hours,
            len(entries),
            len(exits),
            unpaired,
            first_entry,
            last_exit,
            first_entry and _utc(first_entry),
            last_exit and _utc(last_exit),
        )
    monthly = defaultdict(lambda: [0, Decimal("0")])
    for (visit_date, masked), (hours, *_rest) in daily.items():
        bucket = monthly[(visit_date.year, visit_date.month, masked)]
        bucket[0] += 1
        bucket[1] += hours
    return {
        "bronze": len(bronze),
        "bronze_quarantine": sum(n for (layer, _), n in rejected.items() if layer == "bronze"),
        "silver": len(silver),
        "silver_quarantine": sum(n for (layer, _), n in rejected.items() if layer == "silver"),
        "rejected": sum(rejected.values()),
        "rejected_by_reason": dict(rejected),
        "double_entry_days": double_entries,
        "daily": daily,
        "monthly": {k: (days, total) for k, (days, total) in monthly.items()},
    }


def _scan(table: str):
    from elt_platform.iceberg.catalog import load_catalog

    return load_catalog().load_table(table).scan().to_arrow()


def _counts() -> dict[str, int]:
    return {table: _scan(table).num_rows for table in ALAQAN_TABLES}


@pytest.fixture(scope="module")
def pipeline():
    from elt_platform.local_run import run_dag
    from elt_platform.sandbox.alaqan.generator import AlaqanDataset
    from elt_platform.sandbox.alaqan.server import SandboxServer

    # The test session's ELT_HOME (tests/conftest.py): one lakehouse, because one SparkSession per
    # process mounts one catalog; every integration module writes its own tables in it.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ELT_IIN_HASH_KEY", HASH_KEY)
        # A malformed-record rate well above the default, so that 7 days surely contain each kind.
        dataset = AlaqanDataset(seed=SEED, employees=EMPLOYEES, malformed_rate=0.05)
        with SandboxServer(dataset) as server:
            connection = {
                "conn_type": "http",
                "host": server.base_url,
                "password": server.api_key,
                "extra": {"requests_per_second": 50},
            }
            mp.setenv("AIRFLOW_CONN_ALAQAN_DEFAULT", json.dumps(connection))
            # A storm the client must ride out: three 429s (Retry-After: 1) and two 500s up front.
            server.set_faults(next_429=3, next_500=2, retry_after=1)
            conf = {"start_date": START.isoformat(), "end_date": END.isoformat()}
            run_dag("extract_alaqan", conf)
            run_dag("transform_attendance", conf)
            first = _counts()
            stats = server.stats()
            run_dag("extract_alaqan", conf)
            run_dag("transform_attendance", conf)
            second = _counts()
            yield {"dataset": dataset, "first": first, "second": second, "stats": stats}


@pytest.fixture(scope="module")
def expected(pipeline):
    return expected_layers(pipeline["dataset"])


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("bronze.alaqan_visits", "bronze"),
        ("bronze.alaqan_visits_quarantine", "bronze_quarantine"),
        ("silver.alaqan_visits", "silver"),
        ("silver.alaqan_visits_quarantine", "silver_quarantine"),
        ("silver.alaqan_rejected", "rejected"),
    ],
)
def test_layer_row_counts_match_generated_events(pipeline, expected, table, key):
    assert expected[key] > 0
    assert pipeline["first"][table] == expected[key]


def test_daily_attendance_matches_independent_hours_rule(pipeline, expected):
    gold = _scan("gold.alaqan_daily_attendance").to_pylist()
    actual = {
        (row["visit_date"], row["iin"]): (
            row["hours_on_site"],
            row["total_entries"],
            row["total_exits"],
            row["has_unpaired_events"],
            row["first_entry"],
            row["last_exit"],
            row["first_entry_utc"],
            row["last_exit_utc"],
        )
        for row in gold
    }
    assert len(gold) == len(actual) == len(expected["daily"])
    assert actual == expected["daily"]
    assert any(v[3] for v in actual.values()), "the sandbox generates missing exits: some day must be flagged"
    # A malformed exit between two entries leaves a double entry: the rule's first-entry case is exercised.
    assert expected["double_entry_days"] > 0


def test_local_times_are_stored_without_zone_and_instants_in_utc(pipeline):
    from pyiceberg.types import TimestampType, TimestamptzType

    from elt_platform.iceberg.catalog import load_catalog

    catalog = load_catalog()
    types = {
        (table, column): type(catalog.load_table(table).schema().find_field(column).field_type)
        for table, columns in {
            "silver.alaqan_visits": ("event_datetime", "event_at_utc", "loaded_at"),
            "gold.alaqan_daily_attendance": ("first_entry", "last_exit", "first_entry_utc", "last_exit_utc"),
        }.items()
        for column in columns
    }
    assert types == {
        ("silver.alaqan_visits", "event_datetime"): TimestampType,
        ("silver.alaqan_visits", "event_at_utc"): TimestamptzType,
        ("silver.alaqan_visits", "loaded_at"): TimestamptzType,
        ("gold.alaqan_daily_attendance", "first_entry"): TimestampType,
        ("gold.alaqan_daily_attendance", "last_exit"): TimestampType,
        ("gold.alaqan_daily_attendance", "first_entry_utc"): TimestamptzType,
        ("gold.alaqan_daily_attendance", "last_exit_utc"): TimestamptzType,
    }
    rows = _scan("silver.alaqan_visits").to_pylist()
    assert rows
    for row in rows:
        local = datetime.combine(row["visit_date"], time.fromisoformat(row["event_time"]))
        assert row["event_datetime"] == local and row["event_datetime"].tzinfo is None
        assert row["event_at_utc"] == _utc(local) == local.replace(tzinfo=UTC) - timedelta(hours=5)


def test_rejected_records_per_reason_match_the_generator(pipeline, expected):
    rows = _scan("silver.alaqan_rejected").to_pylist()
    assert Counter((r["layer"], r["reason"]) for r in rows) == expected["rejected_by_reason"]
    # The sandbox injects each kind (5% malformed over 7 days): both layers and four reasons show up.
    assert {reason for _, reason in expected["rejected_by_reason"]} >= {
        "invalid_iin:format",
        "invalid_iin:checksum",
        "unknown_event",
        "invalid_time",
    }
    assert all(r["run_id"] and r["original_reason"] and r["source_uri"] for r in rows)
    bronze_codes = {r["original_reason"].split(":")[0] for r in rows if r["layer"] == "bronze"}
    assert bronze_codes == {"bad_iin_key", "unknown_event", "bad_time"}


def test_monthly_summary_matches(pipeline, expected):
    rows = _scan("gold.alaqan_monthly_summary").to_pylist()
    actual = {(r["year"], r["month"], r["iin"]): (r["total_days_visited"], r["total_hours"]) for r in rows}
    assert actual == expected["monthly"]
    for row in rows:
        average = (row["total_hours"] / row["total_days_visited"]).quantize(Decimal("0.01"), ROUND_HALF_UP)
        assert row["avg_hours_per_day"] == average


def test_rerun_of_the_same_window_changes_no_count(pipeline):
    assert pipeline["second"] == pipeline["first"]


def test_fault_storm_was_served_and_survived(pipeline):
    by_status = pipeline["stats"]
    text = json.dumps(by_status)
    assert "429" in text and "500" in text, by_status
    assert pipeline["first"]["bronze.alaqan_visits"] > 0


def test_quarantined_records_carry_their_reason(pipeline):
    bronze = _scan("bronze.alaqan_visits_quarantine").to_pylist()
    codes = {row["reason"].split(":")[0] for row in bronze}
    assert codes <= {"bad_iin_key", "unknown_event", "bad_time"} and codes, codes
    silver = _scan("silver.alaqan_visits_quarantine").to_pylist()
    assert {row["reason"] for row in silver} == {"bad_check_digit"}


def test_snapshots_carry_the_run_id(pipeline):
    from elt_platform.iceberg.maintenance import list_snapshots

    snapshots = list_snapshots("bronze.alaqan_visits")
    assert snapshots and all(s["run_id"] for s in snapshots)
    assert {tuple(s["interval"]) for s in snapshots} == {(START.isoformat(), END.isoformat())}


def test_dbt_unit_tests_pass(pipeline):
    from elt_platform.transform.dbt import run_dbt

    summary = run_dbt(["test", "--select", "tag:alaqan", "tag:attendance", "--resource-type", "unit_test"])
    assert summary.statuses == {"pass": 7}, summary


def test_maintenance_expires_snapshots_and_keeps_rows(pipeline):
    """Runs last: expiring history must not change what the tables hold."""
    from elt_platform.iceberg.maintenance import list_snapshots
    from spark_jobs.maintain_tables import run

    before = _counts()
    assert len(list_snapshots("bronze.alaqan_visits")) > 1
    run(["bronze"], older_than_days=0, retain_last=1, compact=True)
    assert len(list_snapshots("bronze.alaqan_visits")) == 1
    assert _counts() == before


def test_a_sql_mistake_prints_the_engines_one_line_error(pipeline, capsys):
    from elt_platform.cli import main as cli

    assert cli(["sql", "-e", "select no_such_column from gold.alaqan_monthly_summary"]) == 1
    err = capsys.readouterr().err
    # Under pytest, Airflow's logging handler also echoes pyspark's own error log line; the command's
    # answer is the one ✘ line, and no traceback.
    answers = [line for line in err.splitlines() if line.startswith("✘")]
    assert len(answers) == 1 and "no_such_column" in answers[0]
    assert "Traceback" not in err


def test_sql_answers_from_gold(pipeline, capsys):
    from elt_platform.cli import main as cli

    assert cli(["sql", "-e", "select count(*) as n from gold.alaqan_monthly_summary"]) == 0
    table_rows = [line.strip("| ") for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    assert table_rows == ["n", str(_scan("gold.alaqan_monthly_summary").num_rows)]

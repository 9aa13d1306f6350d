"""The slice loop on a fake source: fetch → land → parse → replace, commits, failures, reruns.

The fake source answers day D with JSON ``{"events": [...], "bad": [...]}`` built by :func:`body`;
expected rows are written out from that rule, not from the loop's output.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest

from elt_platform.bronze.slices import SliceError, days, fetch_in_order, load_slices
from elt_platform.iceberg.writer import CommitInfo
from elt_platform.landing import read_landed

D1 = date(2025, 3, 3)
EVENTS = """columns:
  - {name: day, type: date, required: true}
  - {name: k, type: string}
  - {name: v, type: long}
  - {name: seen_on, type: date}
partition_by: [day]
slice_column: day
natural_key: [day, k]
"""
REJECTED = """columns:
  - {name: day, type: date, required: true}
  - {name: raw, type: string}
  - {name: reason, type: string}
  - {name: seen_on, type: date}
partition_by: [day]
slice_column: day
"""


def body(day: date, events: int = 2, bad: int = 1) -> bytes:
    """The fake source's body for ``day``: events ``<day>#0..`` valued 0.., ``bad`` records valued ``"x"``."""
    return json.dumps(
        {
            "events": [{"k": f"{day}#{i}", "v": i} for i in range(events)],
            "bad": [{"k": f"{day}!{i}", "v": "x"} for i in range(bad)],
        }
    ).encode()


@dataclass
class Parsed:
    rows: list[dict] = field(default_factory=list)
    quarantined: list[dict] = field(default_factory=list)


def parse(day: date, raw: bytes) -> Parsed:
    doc = json.loads(raw)
    return Parsed(
        rows=[{"k": e["k"], "v": e["v"]} for e in doc["events"]],
        quarantined=[{"raw": json.dumps(b), "reason": f"bad_value: {b['v']!r}"} for b in doc["bad"]],
    )


def landing_key(day: date) -> str:
    return f"days/day={day.isoformat()}"


@pytest.fixture
def specs(make_spec):
    return make_spec("events", EVENTS), make_spec("events_rejected", REJECTED)


@pytest.fixture
def load(catalog, specs):
    table, quarantine = specs

    def run(slices, fetch=body, *, run_id="run-1", per_commit=2, parse=parse, **kwargs):
        return load_slices(
            slices,
            fetch=fetch,
            parse=parse,
            landing_key=landing_key,
            table=table,
            quarantine=quarantine,
            commit=CommitInfo(
                run_id, "fake", slices[0].isoformat(), (slices[-1] + timedelta(days=1)).isoformat()
            ),
            catalog=catalog,
            slices_per_commit=per_commit,
            constants=lambda loaded_at: {"seen_on": loaded_at.date()},
            **kwargs,
        )

    return run


def _scan(catalog, name: str, *columns: str) -> list[tuple]:
    frame = catalog.load_table(name).scan(selected_fields=columns).to_arrow()
    return sorted(zip(*(frame.column(c).to_pylist() for c in columns), strict=True))


def _landed_uri(lakehouse_env, day: date, raw: bytes) -> str:
    digest = hashlib.sha256(raw).hexdigest()[:16]
    return f"{lakehouse_env.landing_uri}/fake/{landing_key(day)}/{digest}.json.gz"


def test_days_are_the_half_open_interval():
    assert days(D1, D1 + timedelta(days=3)) == [D1, date(2025, 3, 4), date(2025, 3, 5)]
    assert days(D1, D1) == []
    with pytest.raises(ValueError, match="before its start"):
        days(D1, D1 - timedelta(days=1))


def test_rows_and_quarantine_replace_each_slice_with_lineage(catalog, lakehouse_env, load):
    slices = days(D1, D1 + timedelta(days=3))
    started = datetime.now(UTC)

    summary = load(slices)

    assert (summary.slices, summary.rows, summary.quarantined) == (3, 6, 3)
    assert summary.commits == 4  # 2 chunks (2 + 1 days) x 2 tables
    assert summary.quarantine_reasons == {"bad_value": 3}
    assert summary.batch_id == "2025-03-03/2025-03-06"
    assert _scan(catalog, "bronze.test_events", "day", "k", "v") == [
        (d, f"{d}#{i}", i) for d in slices for i in range(2)
    ]
    assert _scan(catalog, "bronze.test_events_rejected", "day", "reason") == [
        (d, "bad_value: 'x'") for d in slices
    ]
    lineage = _scan(catalog, "bronze.test_events", "day", "_run_id", "_batch_id", "_source_uri")
    assert sorted(set(lineage)) == [
        (d, "run-1", "2025-03-03/2025-03-06", _landed_uri(lakehouse_env, d, body(d))) for d in slices
    ]
    stamped = _scan(catalog, "bronze.test_events", "seen_on", "_loaded_at")
    assert all(seen == at.date() and started <= at <= datetime.now(UTC) for seen, at in stamped)


def test_a_rerun_replaces_its_slices_instead_of_adding_rows(catalog, load):
    slices = days(D1, D1 + timedelta(days=2))
    load(slices)

    second = load(slices, lambda d: body(d, events=1 if d == D1 else 3, bad=0), run_id="run-2")

    assert (second.rows, second.quarantined) == (4, 0)
    assert _scan(catalog, "bronze.test_events", "k", "_run_id") == [
        (f"{D1}#0", "run-2"),
        *((f"{slices[1]}#{i}", "run-2") for i in range(3)),
    ]
    assert _scan(catalog, "bronze.test_events_rejected", "raw") == []  # emptied, not kept


def test_a_failing_fetch_keeps_earlier_chunks_and_names_its_slice(catalog, load):
    slices = days(D1, D1 + timedelta(days=5))
    broken = slices[3]

    def fetch(day: date) -> bytes:
        if day == broken:
            raise ConnectionError("upstream reset")
        return body(day)

    with pytest.raises(SliceError, match=r"fake slice 2025-03-06: ConnectionError: upstream reset") as caught:
        load(slices, fetch)

    assert (caught.value.slice, caught.value.committed) == (broken, 2)
    assert isinstance(caught.value.__cause__, ConnectionError)
    # Days 1-2 were committed; day 3 was parsed but its chunk (days 3-4) never committed.
    assert sorted({d for (d,) in _scan(catalog, "bronze.test_events", "day")}) == slices[:2]


def test_a_body_that_fails_parsing_is_landed_first(catalog, lakehouse_env, load):
    slices = days(D1, D1 + timedelta(days=2))
    truncated = b'{"events": [{"k": '

    with pytest.raises(SliceError, match="fake slice 2025-03-04: JSONDecodeError") as caught:
        load(slices, lambda d: truncated if d == slices[1] else body(d), per_commit=1)

    assert read_landed(_landed_uri(lakehouse_env, slices[1], truncated)) == truncated
    assert caught.value.committed == 1


def test_quarantined_records_without_a_quarantine_table_fail_the_slice(catalog, specs):
    table, _ = specs
    with pytest.raises(SliceError, match="1 quarantined record"):
        load_slices(
            [D1],
            fetch=body,
            parse=parse,
            landing_key=landing_key,
            table=table,
            commit=CommitInfo("run-1", "fake"),
            catalog=catalog,
        )


def test_fetch_in_order_yields_in_order_with_bounded_lookahead():
    in_flight, peak, lock = 0, 0, threading.Lock()

    def fetch(n: int) -> int:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.001 * ((7 * n) % 5))  # later items often finish first
        with lock:
            in_flight -= 1
        return n * n

    results = [(n, future.result()) for n, future in fetch_in_order(fetch, range(20), workers=3, ahead=4)]

    assert results == [(n, n * n) for n in range(20)]
    assert peak <= 3


def test_alaqan_load_days_goes_through_the_loop(catalog, lakehouse_env):
    from elt_platform.sources.alaqan.extract import load_days

    def by_date(day: date) -> bytes:
        return json.dumps(
            {
                "data": {
                    "910505350319": [
                        {"event": "entry", "time": "09:00:15"},
                        {"event": "lunch", "time": "12:00:00"},
                    ]
                }
            }
        ).encode()

    summary = load_days(
        by_date, D1, D1 + timedelta(days=2), run_id="run-a", catalog=catalog, days_per_commit=1
    )

    assert summary.as_dict() == {
        "days": 2,
        "events": 2,
        "quarantined": 2,
        "commits": 4,
        "quarantine_reasons": {"unknown_event": 2},
        "batch_id": "2025-03-03/2025-03-05",
    }
    rows = catalog.load_table("bronze.alaqan_visits").scan().to_arrow().to_pylist()
    uri = _landed_uri(lakehouse_env, D1, by_date(D1)).replace("/fake/days/day=", "/alaqan/byDate/visit_date=")
    first = min(rows, key=lambda r: r["visit_date"])
    assert (first["iin"], first["event"], first["_run_id"], first["_source_uri"]) == (
        "910505350319",
        "entry",
        "run-a",
        uri,
    )
    assert all(r["loaded_at"] == r["_loaded_at"] and r["load_date"] == r["_loaded_at"].date() for r in rows)

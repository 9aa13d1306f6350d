"""The Alaqan sandbox: deterministic generator, HTTP app behaviour, faults, server lifecycle and CLI."""

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import requests

from elt_platform.sandbox.alaqan.generator import AlaqanDataset
from elt_platform.sandbox.alaqan.server import SandboxServer
from elt_platform.sandbox.faults import FaultConfig
from elt_platform.sources.alaqan.iin import iin_problem
from elt_platform.sources.alaqan.parsing import parse_by_date, reason_code

KEY = "sandbox-test-key-5e1f"
MONDAY = date(2024, 3, 4)
SATURDAY = date(2024, 3, 9)
MONTH = [date(2024, 4, 1) + timedelta(days=i) for i in range(30)]
PLUGINS = Path(__file__).resolve().parents[3] / "plugins"


def _seconds(hh_mm_ss: str) -> int:
    hours, minutes, seconds = (int(part) for part in hh_mm_ss.split(":"))
    return hours * 3600 + minutes * 60 + seconds


@pytest.fixture(scope="module")
def dataset() -> AlaqanDataset:
    return AlaqanDataset(seed=42, employees=200)


@pytest.fixture(scope="module")
def month(dataset: AlaqanDataset) -> dict[date, dict[str, list[dict[str, str]]]]:
    return {d: dataset.day(d) for d in MONTH}


@pytest.fixture(scope="module")
def server(dataset: AlaqanDataset) -> Iterator[SandboxServer]:
    with SandboxServer(dataset, api_key=KEY) as running:
        yield running


@pytest.fixture
def http(server: SandboxServer) -> Iterator[requests.Session]:
    server.set_faults(None)
    server.reset_stats()
    with requests.Session() as session:
        session.headers["X-Api-Key"] = KEY
        yield session


# --- generator ---------------------------------------------------------------------------------------


def test_same_seed_and_day_give_identical_payloads() -> None:
    assert AlaqanDataset(seed=3, employees=80).day(MONDAY) == AlaqanDataset(seed=3, employees=80).day(MONDAY)


def test_a_day_does_not_depend_on_other_days_requested() -> None:
    warmed = AlaqanDataset(seed=3, employees=80)
    for d in MONTH:
        warmed.day(d)

    assert warmed.day(MONDAY) == AlaqanDataset(seed=3, employees=80).day(MONDAY)


@pytest.mark.parametrize(
    ("left", "right"),
    [((42, MONDAY), (42, MONDAY + timedelta(days=1))), ((42, MONDAY), (43, MONDAY))],
    ids=["different-days", "different-seeds"],
)
def test_payloads_differ(left: tuple[int, date], right: tuple[int, date]) -> None:
    assert AlaqanDataset(seed=left[0]).day(left[1]) != AlaqanDataset(seed=right[0]).day(right[1])


def test_roster_is_unique_valid_and_prefix_stable(dataset: AlaqanDataset) -> None:
    roster = dataset.employees

    assert len(roster) == len(set(roster)) == 200
    assert [iin for iin in roster if iin_problem(iin) is not None] == []
    assert AlaqanDataset(seed=42, employees=50).employees == roster[:50]


def test_attendance_follows_the_week(month: dict[date, dict[str, list]]) -> None:
    weekday = [len(v) / 200 for d, v in month.items() if d.weekday() < 5]
    weekend = [len(v) / 200 for d, v in month.items() if d.weekday() >= 5]

    assert 0.7 <= sum(weekday) / len(weekday) <= 0.9
    assert sum(weekend) / len(weekend) <= 0.15


def test_times_are_office_like(dataset: AlaqanDataset, month: dict[date, dict[str, list]]) -> None:
    roster = set(dataset.employees)
    first_entries, last_exits = [], []
    for data in month.values():
        for iin, records in data.items():
            if iin not in roster or any(
                r["event"] not in ("entry", "exit") or r["time"] >= "24" for r in records
            ):
                continue  # malformed lists are checked elsewhere
            entries = [_seconds(r["time"]) for r in records if r["event"] == "entry"]
            exits = [_seconds(r["time"]) for r in records if r["event"] == "exit"]
            first_entries.append(min(entries))
            last_exits += [max(exits)] if exits else []

    assert 8 * 3600 <= min(first_entries) and max(first_entries) <= 10.5 * 3600
    assert sum(17 * 3600 <= t <= 20 * 3600 for t in last_exits) / len(last_exits) >= 0.85
    assert max(last_exits) > 20 * 3600  # some late nights


def test_quirks_are_present(month: dict[date, dict[str, list]]) -> None:
    lists = [records for data in month.values() for records in data.values()]
    pairs = [[(r["event"], r["time"]) for r in records] for records in lists]

    unsorted = sum(p != sorted(p, key=lambda e: e[1]) for p in pairs)
    duplicated = sum(len(set(p)) < len(p) for p in pairs)
    missing_exit = sum(sum(e == "entry" for e, _ in p) > sum(e == "exit" for e, _ in p) for p in pairs)

    assert unsorted > len(lists) * 0.2
    assert 0 < duplicated < len(lists) * 0.05
    assert 0 < missing_exit < len(lists) * 0.1


def test_malformed_records_appear_at_a_low_rate(month: dict[date, dict[str, list]]) -> None:
    parsed = [parse_by_date(d, json.dumps({"data": data}).encode()) for d, data in month.items()]
    rows = sum(len(p.rows) for p in parsed)
    quarantined = Counter(reason_code(q["reason"]) for p in parsed for q in p.quarantined)
    bad_check = {row["iin"] for p in parsed for row in p.rows if iin_problem(row["iin"]) is not None}

    assert set(quarantined) == {"unknown_event", "bad_time", "bad_iin_key"}
    assert 0 < sum(quarantined.values()) < rows * 0.01
    assert bad_check and {iin_problem(iin) for iin in bad_check} == {"bad_check_digit"}


def test_by_iin_collects_days_newest_first(dataset: AlaqanDataset) -> None:
    iin = dataset.employees[5]
    start, end = MONTH[0], MONTH[13]

    result = dataset.by_iin(iin, start, end)

    expected_days = [d for d in reversed(MONTH[:14]) if iin in dataset.day(d)]
    assert list(result) == [d.isoformat() for d in expected_days]
    assert all(result[d.isoformat()] == dataset.day(d)[iin] for d in expected_days)
    assert dataset.by_iin(iin, end, start) == {}


def test_five_thousand_employees_generate_fast() -> None:
    big = AlaqanDataset(employees=5000)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        events = sum(len(v) for v in big.day(MONDAY).values())
        best = min(best, time.perf_counter() - started)

    assert events > 8000
    assert best < 0.1


def test_empty_roster_gives_an_empty_day() -> None:
    assert AlaqanDataset(employees=0).day(MONDAY) == {}


# --- HTTP app ----------------------------------------------------------------------------------------


def test_by_date_serves_the_dataset(server: SandboxServer, http: requests.Session, dataset) -> None:
    response = http.get(server.base_url + "employees/byDate", params={"date": MONDAY.isoformat()})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"data": dataset.day(MONDAY)}


def test_by_iin_serves_the_dataset(server: SandboxServer, http: requests.Session, dataset) -> None:
    iin = dataset.employees[0]
    params = {"start_date": "2024-04-01", "end_date": "2024-04-10", "iin": iin}

    response = http.get(server.base_url + "employees/byIin", params=params)

    assert response.json() == {"data": dataset.by_iin(iin, date(2024, 4, 1), date(2024, 4, 10))}


@pytest.mark.parametrize(
    "headers", [{}, {"X-Api-Key": "nope"}, {"X-Api-Key": ""}], ids=["missing", "wrong", "empty"]
)
def test_bad_key_gets_401(server: SandboxServer, headers: dict[str, str]) -> None:
    response = requests.get(
        server.base_url + "employees/byDate", params={"date": "2024-03-04"}, headers=headers
    )

    assert (response.status_code, response.json()) == (401, {"message": "Unauthenticated."})


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("employees/byDate", {}, "date"),
        ("employees/byDate", {"date": "2024-13-01"}, "date"),
        ("employees/byDate", {"date": "20240304"}, "date"),
        ("employees/byDate", {"date": "yesterday"}, "date"),
        ("employees/byIin", {"end_date": "2024-03-04", "iin": "650727300949"}, "start_date"),
        (
            "employees/byIin",
            {"start_date": "2024-03-05", "end_date": "2024-03-04", "iin": "650727300949"},
            "end_date",
        ),
        ("employees/byIin", {"start_date": "2024-03-04", "end_date": "2024-03-04"}, "iin"),
        ("employees/byIin", {"start_date": "2024-03-04", "end_date": "2024-03-04", "iin": "6507"}, "iin"),
    ],
)
def test_bad_parameters_get_422(
    server: SandboxServer, http: requests.Session, path: str, params: dict[str, str], field: str
) -> None:
    response = http.get(server.base_url + path, params=params)

    assert response.status_code == 422
    body = response.json()
    assert list(body["errors"]) == [field] and body["message"] == body["errors"][field][0]


def test_empty_day_is_encoded_php_style() -> None:
    with SandboxServer(AlaqanDataset(employees=0), api_key=KEY) as empty:
        response = requests.get(
            empty.base_url + "employees/byDate", params={"date": "2024-03-04"}, headers={"X-Api-Key": KEY}
        )

    assert response.content == b'{"data":[]}'


def test_admin_endpoint_switches_faults_and_stats_count_them(
    server: SandboxServer, http: requests.Session
) -> None:
    url = server.base_url + "employees/byDate"
    posted = requests.post(server.root_url + "/__sandbox/faults", json={"next_429": 2, "retry_after": 3})
    assert posted.status_code == 200 and posted.json()["next_429"] == 2

    statuses = [http.get(url, params={"date": "2024-03-04"}) for _ in range(3)]

    assert [r.status_code for r in statuses] == [429, 429, 200]
    assert statuses[0].headers["Retry-After"] == "3"
    stats = requests.get(server.root_url + "/__sandbox/stats").json()
    assert stats == {
        "requests": 3,
        "by_status": {"429": 2, "200": 1},
        "by_route": {"byDate": 3},
        "faults": {"429": 2},
    }
    assert requests.get(server.root_url + "/__sandbox/faults").json()["next_429"] == 0
    assert requests.delete(server.root_url + "/__sandbox/stats").json()["requests"] == 0


@pytest.mark.parametrize(
    "body", [{"next_429": -1}, {"rate_500": 1.5}, {"bogus": 1}, {"retry_after": "soon"}, [1, 2]]
)
def test_admin_endpoint_rejects_bad_configs(server: SandboxServer, body: object) -> None:
    response = requests.post(server.root_url + "/__sandbox/faults", json=body)

    assert response.status_code == 422
    assert "message" in response.json()


def test_probabilistic_faults_repeat_for_the_same_seed(server: SandboxServer, http: requests.Session) -> None:
    url = server.base_url + "employees/byDate"

    def run() -> list[int]:
        server.set_faults(rate_500=0.3, rate_429=0.2, retry_after=0, seed=11)
        return [http.get(url, params={"date": "2024-03-09"}).status_code for _ in range(25)]

    first, second = run(), run()

    assert first == second
    assert {200, 429, 500} <= set(first)


def test_truncated_body_is_cut_json_with_status_200(
    server: SandboxServer, http: requests.Session, dataset
) -> None:
    full = json.dumps({"data": dataset.day(MONDAY)}, separators=(",", ":")).encode()
    server.set_faults(next_truncated=1)

    response = http.get(server.base_url + "employees/byDate", params={"date": "2024-03-04"})

    assert response.status_code == 200
    assert response.content == full[: len(full) // 2]
    with pytest.raises(ValueError):
        json.loads(response.content)


def test_slow_fault_delays_the_answer(server: SandboxServer, http: requests.Session) -> None:
    server.set_faults(next_slow=1, slow_seconds=0.4)
    started = time.monotonic()

    response = http.get(server.base_url + "employees/byDate", params={"date": "2024-03-09"})

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.4


def test_fault_config_from_dict_defaults() -> None:
    assert FaultConfig.from_dict({}) == FaultConfig()
    assert FaultConfig.from_dict({"next_500": 2}).next_500 == 2


# --- server lifecycle, logging, CLI ------------------------------------------------------------------


def test_server_starts_fast_and_releases_its_port() -> None:
    started = time.monotonic()
    with SandboxServer(AlaqanDataset(employees=10), api_key=KEY) as running:
        elapsed = time.monotonic() - started
        port = running.port
        assert running.base_url == f"http://127.0.0.1:{port}/api/astanahub/"
        assert requests.get(running.root_url + "/__sandbox/stats").status_code == 200

    assert elapsed < 2.0
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_api_key_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with SandboxServer(AlaqanDataset(employees=10), api_key=KEY, access_log=True) as running:
        for key in (KEY, "another-secret-key-91"):
            requests.get(
                running.base_url + "employees/byDate",
                params={"date": "2024-03-04"},
                headers={"X-Api-Key": key},
            )

    assert "employees/byDate?date=2024-03-04" in caplog.text  # the access log did run
    assert KEY not in caplog.text and "another-secret-key-91" not in caplog.text
    assert KEY not in repr(running) and KEY not in repr(running.state)


def test_cli_serves_until_terminated() -> None:
    env = {**os.environ, "PYTHONPATH": str(PLUGINS), "ALAQAN_SANDBOX_API_KEY": "cli-env-key-33"}
    command = [sys.executable, "-m", "elt_platform.sandbox.alaqan", "--port", "0", "--employees", "20"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first_line = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/api/astanahub/)", first_line)
        assert match, first_line
        base_url = match.group(1)
        ok = requests.get(
            base_url + "employees/byDate",
            params={"date": "2024-03-04"},
            headers={"X-Api-Key": "cli-env-key-33"},
        )
        assert ok.json() == {"data": AlaqanDataset(seed=42, employees=20).day(MONDAY)}
        root = base_url.removesuffix("/api/astanahub/")
        assert requests.post(root + "/__sandbox/faults", json={"next_500": 1}).status_code == 200
        assert (
            requests.get(
                base_url + "employees/byDate",
                params={"date": "2024-03-04"},
                headers={"X-Api-Key": "cli-env-key-33"},
            ).status_code
            == 500
        )
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)

    # uvicorn shuts down gracefully, then re-raises the signal it caught, so the exit status says SIGTERM.
    assert process.returncode in (0, -signal.SIGTERM)
    assert "Finished server process" in output
    assert "cli-env-key-33" not in first_line + output

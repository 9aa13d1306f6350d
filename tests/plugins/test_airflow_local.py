"""The embedded Airflow supervisor: bindings, command lines, stopping process trees, backfill requests."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from datetime import UTC, date, datetime
from pathlib import Path

import psutil
import pytest

from elt_platform import airflow_local
from elt_platform.airflow_local import (
    AirflowStack,
    BackfillError,
    Profile,
    backfill_window,
    embedded_parallelism,
    ensure_admin_password,
    last_complete_day,
    stop_processes,
)
from elt_platform.config import REPO_ROOT

#: Noon UTC: every daily extract (02:00, 02:30, 03:00 UTC) has run for the 9th.
NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def profile(tmp_path: Path) -> Profile:
    return Profile.from_env({"AIRFLOW_HOME": str(tmp_path / "airflow")})


# -- bindings and command lines ----------------------------------------------------------------------


def test_api_server_binds_localhost_by_default(profile: Profile):
    env = profile.env({})
    assert (profile.host, profile.port) == ("127.0.0.1", 8080)
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8080/execution/"
    api = profile.commands()["api-server"]
    assert api[api.index("--host") + 1] == "127.0.0.1" and api[api.index("--port") + 1] == "8080"


def test_host_and_port_come_from_the_environment(tmp_path: Path):
    profile = Profile.from_env(
        {"AIRFLOW_HOME": str(tmp_path), "ELT_AIRFLOW_HOST": "::1", "ELT_AIRFLOW_PORT": "18080"}
    )
    assert profile.env({})["AIRFLOW__API__BASE_URL"] == "http://[::1]:18080"
    assert Profile.from_env({"AIRFLOW_HOME": str(tmp_path)}, port=9090).port == 9090


@pytest.mark.parametrize("port", ["http", "0", "70000"])
def test_a_bad_port_is_refused(tmp_path: Path, port: str):
    with pytest.raises(ValueError, match="ELT_AIRFLOW_PORT"):
        Profile.from_env({"AIRFLOW_HOME": str(tmp_path), "ELT_AIRFLOW_PORT": port})


@pytest.mark.parametrize(("cores", "slots"), [(1, 2), (2, 4), (4, 8), (32, 8)])
def test_parallelism_fits_the_machine(cores: int, slots: int):
    assert embedded_parallelism(cores) == slots


def test_parallelism_and_bindings_override_the_environment(profile: Profile):
    env = Profile(profile.airflow_home, parallelism=3).env(
        {"AIRFLOW__CORE__PARALLELISM": "32", "AIRFLOW__API__HOST": "0.0.0.0"}
    )
    assert (env["AIRFLOW__CORE__PARALLELISM"], env["AIRFLOW__API__HOST"]) == ("3", "127.0.0.1")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"


def test_no_component_serves_logs_on_all_interfaces(profile: Profile):
    commands = profile.commands()
    assert list(commands) == ["api-server", "scheduler", "dag-processor", "triggerer"]
    assert "--skip-serve-logs" in commands["scheduler"] and "--skip-serve-logs" in commands["triggerer"]
    assert not any("standalone" in argv for argv in commands.values())


def test_command_lines_parse_with_airflows_own_cli(profile: Profile):
    from airflow.cli.cli_parser import get_parser

    parser = get_parser()
    for argv in profile.commands().values():
        parser.parse_args(argv[1:])  # an unknown flag exits with status 2


def test_make_airflow_and_backfill_call_the_elt_commands():
    makefile = (REPO_ROOT / "Makefile").read_text()
    recipes = {
        target: makefile.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0] for target in ("airflow", "backfill")
    }
    assert "$(VENV)/bin/elt airflow" in recipes["airflow"] and "standalone" not in recipes["airflow"]
    assert "$(VENV)/bin/elt backfill" in recipes["backfill"] and "unpause" not in recipes["backfill"]


# -- the admin password --------------------------------------------------------------------------------


def test_admin_password_is_generated_into_a_private_file(tmp_path: Path, capsys):
    path = ensure_admin_password(tmp_path / "passwords.json")
    password = json.loads(path.read_text())["admin"]
    assert len(password) >= 12
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert password not in capsys.readouterr().out
    ensure_admin_password(path, "admin:admin,viewer:viewer")
    assert json.loads(path.read_text())["admin"] == password  # kept; viewer added
    assert set(json.loads(path.read_text())) == {"admin", "viewer"}


# -- stopping process trees ----------------------------------------------------------------------------

#: A process that ignores SIGTERM and starts a child in a process group of its own (as Airflow's task
#: supervisor does) that ignores SIGTERM too; prints the child's pid.
STUBBORN = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"],
        process_group=0,
    )
    print(child.pid, flush=True)
    time.sleep(300)
    """
)
OBEDIENT = (
    "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']);"
)
OBEDIENT += "print(1, flush=True); time.sleep(300)"


def _spawn(code: str) -> tuple[subprocess.Popen, int | None]:
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    first = int(process.stdout.readline())
    return process, first


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_tree_that_ignores_sigterm_is_killed_after_the_timeout():
    process, grandchild = _spawn(STUBBORN)
    assert os.getpgid(grandchild) != os.getpgid(process.pid)  # its own group, like task processes
    began = time.monotonic()
    killed = stop_processes([process.pid], timeout=1.0)
    assert sorted(killed) == sorted([process.pid, grandchild])
    assert _gone(process.pid) and _gone(grandchild)
    process.wait(timeout=5)
    process.stdout.close()
    assert time.monotonic() - began < 10


def test_a_tree_that_obeys_sigterm_is_not_killed():
    process, _ = _spawn(OBEDIENT)
    children = psutil.Process(process.pid).children(recursive=True)
    assert stop_processes([process.pid], timeout=10) == []
    process.wait(timeout=5)
    process.stdout.close()
    assert _gone(process.pid) and children and all(_gone(child.pid) for child in children)


def test_leaving_the_stack_stops_every_component(profile: Profile, monkeypatch: pytest.MonkeyPatch):
    stubborn = [sys.executable, "-c", STUBBORN]
    monkeypatch.setattr(Profile, "commands", lambda self: {"scheduler": stubborn, "dag-processor": stubborn})
    monkeypatch.setattr(airflow_local, "STOP_TIMEOUT_S", 1.0)
    profile = Profile(profile.airflow_home, components=("scheduler", "dag-processor"))
    with pytest.raises(KeyboardInterrupt), AirflowStack(profile, env=dict(os.environ)) as stack:
        time.sleep(1)  # let each start its child
        tree = [
            p.pid for name in stack.processes for p in psutil.Process(stack.processes[name].pid).children()
        ]
        raise KeyboardInterrupt
    assert len(tree) == 2
    assert all(p.poll() is not None for p in stack.processes.values())
    assert all(_gone(pid) for pid in tree)
    assert {p.name for p in stack.profile.log_dir.iterdir()} == {
        "scheduler.log",
        "dag-processor.log",
        "pools.log",
    }


# -- backfill requests ---------------------------------------------------------------------------------


def test_days_are_inclusive_and_cover_each_logical_date():
    window = backfill_window("extract_alaqan", "2025-03-03", "2025-03-06", max_active_runs=2, now=NOW)
    assert window.days == 4
    assert window.from_date == datetime(2025, 3, 3, tzinfo=UTC)
    assert window.to_date == datetime(2025, 3, 6, 23, 59, 59, tzinfo=UTC)
    assert window.transforms == ("transform_attendance",) and window.domains == ("attendance",)


@pytest.mark.parametrize(
    ("dag_id", "first", "last", "runs", "message"),
    [
        ("extract_nope", "2025-03-03", "2025-03-04", 2, "not a backfillable DAG"),
        ("extract_onec", "2025-03-03", "2025-03-04", 2, "not a backfillable DAG"),
        ("extract_alaqan", "2025-3-3x", "2025-03-04", 2, "dates must be YYYY-MM-DD"),
        ("extract_alaqan", "2025-03-06", "2025-03-03", 2, "is before FROM"),
        (
            "extract_alaqan",
            "2025-03-08",
            "2025-03-10",
            2,
            "not complete yet .* last complete day is 2025-03-09",
        ),
        ("extract_alaqan", "2025-03-03", "2025-03-04", 0, "at least 1"),
    ],
)
def test_bad_requests_fail_with_one_line(dag_id, first, last, runs, message):
    with pytest.raises(BackfillError, match=message) as error:
        backfill_window(dag_id, first, last, max_active_runs=runs, now=NOW)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("dag_id", "now", "expected"),
    [
        # extract_alaqan runs at 02:00 UTC for the 24 hours before: the 9th is complete at 02:00 on the 10th.
        ("extract_alaqan", datetime(2025, 3, 10, 1, 59, tzinfo=UTC), date(2025, 3, 8)),
        ("extract_alaqan", datetime(2025, 3, 10, 2, 0, 1, tzinfo=UTC), date(2025, 3, 9)),
        ("extract_amocrm", datetime(2025, 3, 10, 2, 29, tzinfo=UTC), date(2025, 3, 8)),
        ("extract_amocrm", datetime(2025, 3, 10, 2, 31, tzinfo=UTC), date(2025, 3, 9)),
        # The micro-batch's runs are points in time: the 9th is over at midnight.
        ("extract_ident_receptions", datetime(2025, 3, 10, 0, 1, tzinfo=UTC), date(2025, 3, 9)),
        # Every source: extract_ident (03:00) is the last to run.
        (None, datetime(2025, 3, 10, 2, 45, tzinfo=UTC), date(2025, 3, 8)),
        (None, datetime(2025, 3, 10, 3, 0, 1, tzinfo=UTC), date(2025, 3, 9)),
    ],
)
def test_a_day_is_complete_once_its_daily_run_has_come(dag_id, now, expected):
    assert last_complete_day(dag_id, now=now) == expected


def test_a_backfill_of_a_day_whose_run_has_not_come_fails_in_one_line():
    """At 01:13 UTC Airflow creates no run for yesterday of a DAG scheduled at 02:00: say so up front."""
    early = datetime(2025, 3, 10, 1, 13, tzinfo=UTC)
    with pytest.raises(BackfillError, match="TO 2025-03-09 is not complete yet") as error:
        backfill_window("extract_alaqan", "2025-03-09", "2025-03-09", max_active_runs=1, now=early)
    assert "last complete day is 2025-03-08" in str(error.value) and "\n" not in str(error.value)
    assert (
        backfill_window("extract_alaqan", "2025-03-08", "2025-03-08", max_active_runs=1, now=early).days == 1
    )


def test_backfill_command_reports_bad_input_in_one_line(capsys):
    code = airflow_local.main(["backfill", "extract_alaqan", "--from", "2025-03-06", "--to", "2025-03-03"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == ["✘ TO 2025-03-03 is before FROM 2025-03-06"]

"""The production compose stack is valid and keeps its secrets out of git.

``docker compose config`` checks the file against the Compose specification (run
``docker/install-compose.sh`` to get the plugin); the other tests read the YAML and ``.env.example``
directly, so they run everywhere. Nothing here starts a container.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"
LIBRARY_DIRS = ("plugins", "spark_jobs", "dags", "dbt")

# `${NAME}`, `${NAME:-default}`, `${NAME:?message}`; `$${NAME}` is an escaped, container-side reference.
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")
WHOLE_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?[-?][^}]*)?\}")
REQUIRED_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]+\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|_KEY$|_KEY_ID$|TOKEN", re.IGNORECASE)
URL_PASSWORD = re.compile(r"://[^:/@\s]+:([^@\s]+)@")
ENV_LOOKUP = re.compile(
    r"""(?:environ|env|getenv)\s*(?:\.get|\.setdefault)?\s*[\[(]\s*["']([A-Z][A-Z0-9_]+)["']"""
    r"""|env_var\(\s*["']([A-Z][A-Z0-9_]+)["']"""
    r"""|\$\{env:([A-Z][A-Z0-9_]+)\}"""
)
ENV_LINE = re.compile(r"^(#\s*)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def _compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _services() -> dict[str, dict]:
    return _compose()["services"]


def _env_lines() -> list[tuple[bool, str, str]]:
    """(active, name, value) for each ``NAME=value`` line of .env.example, commented ones inactive."""
    out = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = ENV_LINE.match(line.strip())
        if match:
            value = match.group(3)
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            out.append((match.group(1) is None, match.group(2), value))
    return out


def _env_example() -> dict[str, str]:
    return {name: value for active, name, value in _env_lines() if active}


def _strings(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        yield node


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def _compose_command() -> list[str] | None:
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        probe = subprocess.run([*command, "version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0 and "version v1." not in probe.stdout.lower():
            return command
    return None


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("no Docker Compose v2 on this machine: run docker/install-compose.sh")
    # The services' `env_file: .env` must exist; a scratch project directory holds .env.example as .env,
    # so a developer's real .env is neither needed nor read.
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env")
    # Compose lets the calling shell's variables win over --env-file: validate the file alone, not
    # whatever this test process happens to have exported (e.g. an empty ELT_IIN_HASH_KEY).
    documented = set(_env_example())
    clean_env = {k: v for k, v in os.environ.items() if k not in documented}
    result = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), "--project-directory", str(tmp_path)]
        + ["--env-file", str(ENV_EXAMPLE), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=clean_env,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", sorted(_services()))
def test_service_is_health_checked_or_a_one_shot_job(name: str) -> None:
    services = _services()
    service = services[name]
    awaited_to_finish = any(
        (other.get("depends_on") or {}).get(name, {}).get("condition") == "service_completed_successfully"
        for other in services.values()
        if isinstance(other.get("depends_on"), dict)
    )
    if awaited_to_finish:
        assert service.get("restart", "no") == "no", f"one-shot {name} must not restart"
    else:
        assert "test" in (service.get("healthcheck") or {}), f"{name} has no healthcheck"


@pytest.mark.parametrize("name", sorted(_services()))
def test_dependencies_wait_for_health_or_completion(name: str) -> None:
    depends_on = _services()[name].get("depends_on") or {}
    assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions, not a bare list"
    conditions = {dep: spec.get("condition") for dep, spec in depends_on.items()}
    assert set(conditions.values()) <= {"service_healthy", "service_completed_successfully"}, conditions


def test_every_service_reads_dot_env() -> None:
    assert {name for name, svc in _services().items() if svc.get("env_file") != ".env"} == set()


def test_secrets_are_references_never_literals() -> None:
    offenders = []
    for name, service in _services().items():
        for key, value in _environment(service).items():
            if SECRET_NAME.search(key) and not REQUIRED_REFERENCE.fullmatch(value):
                offenders.append(f"{name}.{key}={value!r} (use ${{{key}:?…}})")
            # Stand each reference in for a token first: `${X:?a message}` may hold spaces and colons.
            for password in URL_PASSWORD.findall(WHOLE_REFERENCE.sub("REF", value)):
                if password != "REF":
                    offenders.append(f"{name}.{key}: literal password in a URL")
    assert offenders == []


def test_every_interpolated_variable_is_in_env_example() -> None:
    referenced = {match for text in _strings(_compose()) for match in INTERPOLATION.findall(text)}
    assert referenced, "no ${VAR} found: did the parsing break?"
    assert sorted(referenced - set(_env_example())) == []


def test_every_variable_the_library_reads_is_documented() -> None:
    documented = {name for _, name, _ in _env_lines()} | set(
        re.findall(r"\b[A-Z][A-Z0-9_]{3,}\b", ENV_EXAMPLE.read_text())
    )
    read = set()
    for folder in LIBRARY_DIRS:
        for path in (REPO / folder).rglob("*"):
            if path.suffix in {".py", ".yml", ".yaml", ".sql"} and path.is_file():
                for groups in ENV_LOOKUP.findall(path.read_text(errors="replace")):
                    read.update(name for name in groups if name)
    assert read, "no environment lookups found: did the pattern break?"
    assert sorted(read - documented) == []


@pytest.mark.parametrize("name", sorted(n for n in _env_example() if n.startswith("AIRFLOW_CONN_")))
def test_connection_is_json_after_filling_placeholders(name: str) -> None:
    filled = re.sub(r"<[^<>]+>", "0", _env_example()[name])
    connection = json.loads(filled)
    assert isinstance(connection, dict)
    assert connection.get("conn_type"), f"{name} has no conn_type"


def test_bucket_matches_the_lakehouse_uris() -> None:
    env = _env_example()
    for key in ("ELT_ICEBERG_WAREHOUSE", "ELT_LANDING_URI", "ELT_QUALITY_URI"):
        assert env[key].startswith(f"s3://{env['ELT_S3_BUCKET']}/"), key


def test_secret_placeholders_are_not_real_values() -> None:
    env = _env_example()
    for name, value in env.items():
        if SECRET_NAME.search(name) and not name.startswith("AIRFLOW_CONN_"):
            assert re.fullmatch(r"<[^<>]+>", value), f"{name} must be a <placeholder> in .env.example"

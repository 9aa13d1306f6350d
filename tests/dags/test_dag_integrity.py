"""DAG-integrity gate (STYLE example 9): ``dags/`` parses cleanly, cheaply and declares what operators need.

``dags/`` is loaded in a DagBag with no ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*`` defined, as a fresh DAG
processor would; every check is parametrized over the ``.py`` files under ``dags/``, one test id per
file. The parse-time budget and the list of modules parsing pulls in are measured in a fresh
interpreter, where nothing is imported yet.

Explicitness is checked where the value can come from elsewhere: ``catchup`` must not change when
``[scheduler] catchup_by_default`` does (so the factory or the file set it); ``schedule`` must be a
keyword of the call that builds the DAG (Airflow 3's default, ``None``, is indistinguishable from an
explicit manual-only DAG otherwise).

The forbidden-code check reads each file with ``ast``: banned libraries may not be imported anywhere
(as ``dags/ruff.toml`` enforces too), and environment, Variable and connection lookups may not run at
parse time — that is anywhere except inside a ``@task`` body (the body of a ``@dag`` function, decorator
arguments and default values all run when the file is parsed).
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS_DIR = REPO / "dags"
DAG_FILES = sorted(DAGS_DIR.rglob("*.py"))
by_file = pytest.mark.parametrize(
    "dag_file", DAG_FILES, ids=[p.relative_to(DAGS_DIR).as_posix() for p in DAG_FILES]
)
#: Files that build every DAG of one kind from the source registry (the rest define one DAG each,
#: whose id is the file stem).
REGISTRY_FILES = {
    DAGS_DIR / "extract" / "extract_dags.py": "extract",
    DAGS_DIR / "transform" / "transform_dags.py": "transform",
    DAGS_DIR / "reverse_etl" / "reverse_etl_dags.py": "reverse_etl",
}


def _registry_dag_ids(kind: str) -> list[str]:
    from elt_platform.registry import registry

    if kind == "extract":
        return sorted(e.dag_id for _, e in registry().extracts())
    if kind == "reverse_etl":
        return sorted(d.dag_id for d in registry().destinations.values())
    return sorted(d.dag_id for d in registry().domains.values())


def _expected_dag_ids() -> list[str]:
    ids = [p.stem for p in DAG_FILES if p not in REGISTRY_FILES]
    for kind in REGISTRY_FILES.values():
        ids += _registry_dag_ids(kind)
    return sorted(ids)


DAG_IDS = _expected_dag_ids()
by_dag = pytest.mark.parametrize("dag_id", DAG_IDS)

#: Seconds to fill a DagBag from ``dags/`` in a fresh interpreter, after Airflow itself is imported
#: (the DAG processor has paid for that already). Measured ~0.3 s for six DAGs on the 2-core dev VM.
PARSE_BUDGET_S = 2.0
BANNED_MODULES = ("requests", "pyodbc", "pandas", "lxml", "pyiceberg", "pyspark")
#: Nothing that only a task needs may be imported while parsing (checked in a fresh interpreter).
HEAVY_AT_PARSE = (*BANNED_MODULES, "great_expectations", "pyarrow", "dbt", "sqlalchemy_utils")
HEAVY_ELT_PACKAGES = (
    "elt_platform.sources",
    "elt_platform.iceberg",
    "elt_platform.quality",
    "elt_platform.state",
    "elt_platform.http",
    "elt_platform.bronze",
    "elt_platform.sandbox",
)
#: Under the heavy packages, parsing may import only the registry's declarations and package inits.
DECLARATION = re.compile(r"elt_platform\.(sources|destinations)(\.\w+(\.pipeline)?)?")


PARSE_PROBE = textwrap.dedent(
    """
    import json, sys, time
    try:
        from airflow.dag_processing.dagbag import DagBag
        kwargs = {}
    except ImportError:
        from airflow.models.dagbag import DagBag
        kwargs = {"include_examples": False}
    before = set(sys.modules)
    began = time.perf_counter()
    bag = DagBag(dag_folder=sys.argv[1], **kwargs)
    seconds = time.perf_counter() - began
    print(json.dumps({
        "seconds": seconds,
        "modules": sorted(set(sys.modules) - before),
        "dags": sorted(bag.dag_ids),
        "errors": sorted(bag.import_errors),
    }))
    """
)


def _without_credentials(mp: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_")):
            mp.delenv(name)


def _dagbag(folder: Path):
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.1: airflow.models, and examples are opt-out
        from airflow.models.dagbag import DagBag

        return DagBag(dag_folder=str(folder), include_examples=False)
    return DagBag(dag_folder=str(folder))


def _parse(catchup_by_default: bool):
    with pytest.MonkeyPatch.context() as mp:
        _without_credentials(mp)
        mp.setenv("AIRFLOW__SCHEDULER__CATCHUP_BY_DEFAULT", str(catchup_by_default))
        return _dagbag(DAGS_DIR)


@pytest.fixture(scope="module")
def cold_parse_started():
    """Start parsing ``dags/`` in a fresh interpreter; it runs while this process imports Airflow."""
    with pytest.MonkeyPatch.context() as mp:
        _without_credentials(mp)
        probe = subprocess.Popen(
            [sys.executable, "-c", PARSE_PROBE, str(DAGS_DIR)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=os.environ.copy(),
        )
    yield probe
    if probe.poll() is None:
        probe.kill()
        probe.communicate()


@pytest.fixture(scope="module")
def cold_parse(cold_parse_started):
    """What the fresh interpreter measured: parse seconds, modules it imported, DAG ids, errors."""
    out, err = cold_parse_started.communicate(timeout=180)
    assert cold_parse_started.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def dagbag(cold_parse_started):
    return _parse(catchup_by_default=False)


@pytest.fixture(scope="module")
def dagbag_catchup_by_default():
    return _parse(catchup_by_default=True)


def _for_file(mapping: dict, dag_file: Path) -> dict:
    return {k: v for k, v in mapping.items() if Path(k).resolve() == dag_file.resolve()}


def _dag(bag, dag_id: str):
    assert dag_id in bag.dags, f"{dag_id} not built; import errors: {bag.import_errors}"
    return bag.dags[dag_id]


@by_file
def test_imports_without_errors(dagbag, dag_file):
    errors = _for_file(dagbag.import_errors, dag_file)
    assert not errors, "\n".join(errors.values())


@by_file
def test_parses_without_warnings(dagbag, dag_file):
    assert not _for_file(dagbag.captured_warnings, dag_file)


@by_file
def test_file_builds_exactly_its_dags(dagbag, dag_file):
    built = sorted(d.dag_id for d in dagbag.dags.values() if Path(d.fileloc).resolve() == dag_file.resolve())
    if dag_file in REGISTRY_FILES:
        assert built == _registry_dag_ids(REGISTRY_FILES[dag_file])
    else:
        assert built == [dag_file.stem]


@by_dag
def test_has_tags(dagbag, dag_id):
    assert _dag(dagbag, dag_id).tags


@by_dag
def test_every_task_has_a_real_owner(dagbag, dag_id):
    from airflow.sdk.configuration import conf

    default_owner = conf.get("operators", "default_owner")
    owners = {t.task_id: t.owner for t in _dag(dagbag, dag_id).tasks}
    assert owners
    assert {t: o for t, o in owners.items() if not o or o == default_owner} == {}


@by_dag
def test_every_task_retries(dagbag, dag_id):
    retries = {t.task_id: t.retries for t in _dag(dagbag, dag_id).tasks}
    assert retries
    assert {t: r for t, r in retries.items() if r < 1} == {}


@by_dag
def test_catchup_does_not_depend_on_the_config_default(dagbag, dagbag_catchup_by_default, dag_id):
    assert _dag(dagbag, dag_id).catchup == _dag(dagbag_catchup_by_default, dag_id).catchup


SCHEDULE_SOURCES = [p for p in DAG_FILES if p not in REGISTRY_FILES] + [
    REPO / "plugins" / "elt_platform" / "dag_factory.py"
]


@pytest.mark.parametrize("dag_file", SCHEDULE_SOURCES, ids=[p.name for p in SCHEDULE_SOURCES])
def test_schedule_is_explicit(dag_file):
    """Single-DAG files and the factory (for registry-built DAGs) name ``schedule`` in every call."""
    tree = ast.parse(dag_file.read_text(encoding="utf-8"))
    calls = [
        {k.arg for k in node.keywords if k.arg}
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", ""))
        in ("dag", "DAG")
    ]
    assert calls, "no @dag(...) or DAG(...) call found"
    assert all("schedule" in keywords for keywords in calls)


def _is_task_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    while isinstance(target, ast.Attribute):  # @task.virtualenv(...), @task.bash
        if isinstance(target.value, ast.Name) and target.value.id == "task":
            return True
        target = target.value
    return isinstance(target, ast.Name) and target.id == "task"


class _ForbiddenCode(ast.NodeVisitor):
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.task_depth = 0

    def _flag(self, node: ast.AST, what: str) -> None:
        self.problems.append(f"line {node.lineno}: {what}")

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:  # evaluated at parse time
            self.visit(decorator)
        self.visit(node.args)  # default values are evaluated at parse time
        deferred = any(_is_task_decorator(d) for d in node.decorator_list)
        self.task_depth += deferred
        for statement in node.body:
            self.visit(statement)
        self.task_depth -= deferred

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] in BANNED_MODULES:
                self._flag(node, f"imports {alias.name}")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if module.split(".")[0] in BANNED_MODULES:
            self._flag(node, f"imports from {module}")
        if module == "os" and {a.name for a in node.names} & {"environ", "getenv"}:
            self._flag(node, "imports os.environ/os.getenv")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if (
            not self.task_depth
            and isinstance(node.value, ast.Name)
            and (node.value.id, node.attr) in {("os", "environ"), ("os", "getenv")}
        ):
            self._flag(node, f"reads os.{node.attr} at parse time")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if not self.task_depth and isinstance(func, ast.Attribute):
            owner = func.value.id if isinstance(func.value, ast.Name) else ""
            if func.attr in ("get_connection", "get_connection_from_secrets") or (
                func.attr == "get" and owner in ("Variable", "Connection")
            ):
                self._flag(node, f"calls {owner or '…'}.{func.attr} at parse time")
        self.generic_visit(node)


def forbidden_code(source: str) -> list[str]:
    """Problems in a DAG file's source, one ``"line N: …"`` string each."""
    visitor = _ForbiddenCode()
    visitor.visit(ast.parse(source))
    return visitor.problems


@by_file
def test_no_forbidden_code(dag_file):
    assert forbidden_code(dag_file.read_text(encoding="utf-8")) == []


TASK_READS_CONFIG = """
@task
def t():
    import os
    return os.environ["X"], Variable.get("y"), BaseHook.get_connection("c")
"""


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("import pandas as pd", "line 1: imports pandas"),
        ("from pyiceberg.catalog import load_catalog", "line 1: imports from pyiceberg.catalog"),
        ("import requests.adapters", "line 1: imports requests.adapters"),
        ("from lxml import etree", "line 1: imports from lxml"),
        ("import pyspark.sql", "line 1: imports pyspark.sql"),
        ("import pyodbc", "line 1: imports pyodbc"),
        ("import os\nHOST = os.environ['HOST']", "line 2: reads os.environ at parse time"),
        ("import os\nHOST = os.getenv('HOST')", "line 2: reads os.getenv at parse time"),
        ("from os import environ", "line 1: imports os.environ/os.getenv"),
        ("X = Variable.get('x')", "line 1: calls Variable.get at parse time"),
        ("C = BaseHook.get_connection('c')", "line 1: calls BaseHook.get_connection at parse time"),
        ("@dag(schedule=None)\ndef d():\n    c = Connection.get('c')", "line 3: calls Connection.get"),
        ("@dag(schedule=Variable.get('cron'))\ndef d(): ...", "line 1: calls Variable.get at parse time"),
        ("@task\ndef t(x=os.environ['X']): ...", "line 2: reads os.environ at parse time"),
        ("@task\ndef t():\n    import pandas", "line 3: imports pandas"),
    ],
)
def test_forbidden_code_checker_flags(source, problem):
    problems = forbidden_code(source)
    assert len(problems) == 1 and problems[0].startswith(problem), problems


@pytest.mark.parametrize(
    "source",
    [
        TASK_READS_CONFIG,
        TASK_READS_CONFIG.replace("@task", "@task.virtualenv(requirements=[])"),
        "from elt_platform.dag_factory import build_extract_dags\nbuild_extract_dags()",
        "import os.path\nHERE = os.path.dirname('x')",
        "BashOperator(task_id='t', bash_command='echo {{ var.value.x }} {{ conn.c.host }}')",
    ],
)
def test_forbidden_code_checker_allows(source):
    assert forbidden_code(source) == []


@pytest.mark.parametrize(
    "snippet",
    [
        *(f"import {module}" for module in BANNED_MODULES),
        "from pyiceberg.catalog import load_catalog",
        "import os\nHOST = os.environ['HOST']",
        "from os import getenv",
    ],
)
def test_ruff_bans_the_same_imports_in_dags(snippet):
    probe = DAGS_DIR / "extract" / "_probe.py"  # never written: ruff resolves dags/ruff.toml from the name
    found = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "json"]
        + ["--stdin-filename", str(probe), "-"],
        input=snippet + "\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    banned = [v["message"] for v in json.loads(found.stdout) if v["code"] == "TID251"]
    assert len(banned) == 1, found.stdout + found.stderr
    assert "plugins/elt_platform" in banned[0]


def test_parse_finds_every_declared_dag(cold_parse):
    assert cold_parse["errors"] == []
    assert cold_parse["dags"] == DAG_IDS


def test_parse_stays_within_the_time_budget(cold_parse):
    assert cold_parse["seconds"] < PARSE_BUDGET_S


def test_parse_imports_nothing_only_tasks_need(cold_parse):
    heavy = [
        m
        for m in cold_parse["modules"]
        if m.split(".")[0] in HEAVY_AT_PARSE
        or (m.startswith(HEAVY_ELT_PACKAGES) and not DECLARATION.fullmatch(m))
    ]
    assert heavy == []

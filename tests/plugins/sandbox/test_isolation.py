"""Sandboxes stay out of the runtime import path: only ``elt_platform.sandbox`` itself and the local-run
entry points (``cli.py``, ``local_run.py``, ``airflow_local.py``, ``services/run.py`` — ``elt prod-local``)
may import it. Read with ``ast``.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[3] / "plugins" / "elt_platform"
SANDBOX = "elt_platform.sandbox"
#: Modules allowed to import the sandboxes, relative to the package.
ALLOWED = {Path("cli.py"), Path("local_run.py"), Path("airflow_local.py"), Path("services/run.py")}
_IMPORTERS = {"import_module", "__import__"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_sandbox(name: str) -> bool:
    return name == SANDBOX or name.startswith(SANDBOX + ".")


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def sandbox_imports(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """Return what ``source`` (the text of ``module``) imports from the sandboxes, as dotted names."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _is_sandbox(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            origin = _absolute(node, module, is_package)
            found += [
                f"{origin}.{alias.name}" for alias in node.names if _is_sandbox(f"{origin}.{alias.name}")
            ]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            found += [
                arg.value
                for arg in node.args[:1]
                if name in _IMPORTERS and isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                if _is_sandbox(arg.value)
            ]
    return found


def test_runtime_modules_do_not_import_the_sandboxes() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    offenders = {
        str(path.relative_to(PACKAGE)): imports
        for path in modules
        if path.relative_to(PACKAGE).parts[0] != "sandbox" and path.relative_to(PACKAGE) not in ALLOWED
        if (
            imports := sandbox_imports(
                path.read_text(encoding="utf-8"), _module_name(path), is_package=path.name == "__init__.py"
            )
        )
    }

    assert len(modules) > 20  # the walk found the package
    assert offenders == {}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("import elt_platform.sandbox.server", ["elt_platform.sandbox.server"], id="import"),
        pytest.param("from elt_platform.sandbox.app import Sandbox", [f"{SANDBOX}.app.Sandbox"], id="from"),
        pytest.param("from elt_platform import sandbox", [SANDBOX], id="from-package"),
        pytest.param("from ..sandbox import faults", [f"{SANDBOX}.faults"], id="relative"),
        pytest.param(
            "def f():\n    importlib.import_module('elt_platform.sandbox.alaqan')",
            [f"{SANDBOX}.alaqan"],
            id="import_module",
        ),
        pytest.param("import elt_platform.sandboxes\nfrom elt_platform import sources", [], id="near-names"),
        pytest.param('"""Serve it with elt_platform.sandbox.alaqan."""', [], id="docstring"),
    ],
)
def test_the_check_sees_every_import_form(source: str, expected: list[str]) -> None:
    assert sandbox_imports(source, "elt_platform.sources.demo") == expected

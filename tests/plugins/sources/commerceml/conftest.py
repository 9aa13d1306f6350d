"""Shared paths for the CommerceML tests: the real exports live outside the repo, in ``../shared/fixtures``.

Every directory under ``commerceml/`` is one exchange package from one real 1C install; tests that
take a ``fixture_set`` argument run once per directory, discovered at collection time.
"""

from pathlib import Path

import pytest


def _repo_root() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file() and (parent / "plugins").is_dir():
            return parent
    raise RuntimeError(f"no repository root above {__file__}")


COMMERCEML_FIXTURES = (_repo_root() / ".." / "shared" / "fixtures" / "commerceml").resolve()


def fixture_sets() -> list[Path]:
    """Every fixture package directory (empty when the shared fixtures are not checked out)."""
    if not COMMERCEML_FIXTURES.is_dir():
        return []
    return sorted(p for p in COMMERCEML_FIXTURES.iterdir() if p.is_dir())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fixture_set" in metafunc.fixturenames:
        sets = fixture_sets()
        metafunc.parametrize("fixture_set", sets, ids=[p.name for p in sets])


@pytest.fixture(scope="session")
def cml() -> Path:
    """Root of the shared CommerceML fixtures."""
    if not COMMERCEML_FIXTURES.is_dir():
        pytest.fail(f"shared CommerceML fixtures not found at {COMMERCEML_FIXTURES}")
    return COMMERCEML_FIXTURES

"""Test-session isolation and the shared lakehouse fixtures.

Every session runs against a throw-away ``ELT_HOME``: no test can read or write the developer's
``.local/`` lakehouse, and ``ELT_*`` location variables from a sourced ``.env`` (a production REST
catalog, an S3 landing bucket) are dropped so that every location derives from that temporary home.
``AIRFLOW_HOME`` is left as the Makefile exported it, because ``make`` migrates that metadata database
(the end-to-end tests run ``dag.test()`` against it); only when nothing set it does it move under the
temporary home, so Airflow never falls back to ``~/airflow``.

Markers (``spark``, ``integration``) and warning filters are declared in ``pyproject.toml``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

#: Variables that would point the lakehouse somewhere other than ``ELT_HOME`` (see ``config.py``).
#: ``bench/harness.py`` keeps the same list for the benchmarks (tests do not import benchmarks).
LOCATION_VARIABLES = (
    "ELT_ICEBERG_CATALOG_TYPE",
    "ELT_ICEBERG_CATALOG_URI",
    "ELT_ICEBERG_WAREHOUSE",
    "ELT_LANDING_URI",
    "ELT_QUALITY_URI",
    "ELT_S3_ENDPOINT",
    "ELT_ONEC_EXCHANGE_URI",
    "ELT_STATE_DB_URL",
)
VISITS_SPEC = "bronze/alaqan/visits.yaml"

_SESSION_HOME = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    # Runs before collection, hence before any test module imports Airflow (which reads AIRFLOW_HOME
    # once, at import) or elt_platform.
    home = Path(tempfile.mkdtemp(prefix="elt-test-home-"))
    config.stash[_SESSION_HOME] = home
    os.environ["ELT_HOME"] = str(home)
    os.environ.setdefault("AIRFLOW_HOME", str(home / "airflow"))
    os.environ["GX_ANALYTICS_ENABLED"] = "False"
    os.environ["DO_NOT_TRACK"] = "1"
    for name in LOCATION_VARIABLES:
        os.environ.pop(name, None)


def pytest_unconfigure(config: pytest.Config) -> None:
    home = config.stash.get(_SESSION_HOME, None)
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(autouse=True)
def _root_logging_handlers_do_not_outlive_a_test():
    """Remove root handlers a test installed (e.g. ``elt`` CLI's ``logging.basicConfig`` bound to that
    test's captured stderr): later tests would log into a closed stream and print logging tracebacks."""
    import logging

    root = logging.getLogger()
    before = list(root.handlers)
    yield
    for handler in [h for h in root.handlers if h not in before]:
        root.removeHandler(handler)


@pytest.fixture
def lakehouse_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An empty embedded lakehouse for one test, selected through the environment.

    Code that calls ``PlatformConfig.from_env()`` / ``load_catalog()`` itself (maintenance, landing,
    the quality gate) sees this lakehouse; the variables are restored after the test.

    Returns:
        The ``PlatformConfig`` of the temporary lakehouse.
    """
    from elt_platform.config import PlatformConfig

    monkeypatch.setenv("ELT_HOME", str(tmp_path / "lakehouse"))
    for name in LOCATION_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    config = PlatformConfig.from_env()
    config.ensure_local_dirs()
    return config


@pytest.fixture
def catalog(lakehouse_env):
    """The pyiceberg ``SqlCatalog`` of :func:`lakehouse_env`."""
    from elt_platform.iceberg.catalog import load_catalog

    return load_catalog(lakehouse_env)


@pytest.fixture
def visits_table(catalog):
    """``bronze.alaqan_visits`` created from its declaration, empty."""
    from elt_platform.iceberg.tables import load_spec
    from elt_platform.iceberg.writer import ensure_table

    return ensure_table(catalog, load_spec(VISITS_SPEC))


@pytest.fixture
def make_visits() -> Callable[..., object]:
    """Build bronze ``alaqan_visits`` rows as an Arrow table in the declared schema.

    Call with ``(visit_date, iin, event, event_time)`` tuples; the other columns get plausible
    constants (``run_id`` is stamped in ``_run_id``).
    """
    from elt_platform.iceberg.tables import load_spec

    schema = load_spec(VISITS_SPEC).arrow_schema()

    def build(events: Iterable[tuple[date, str, str | None, str]], run_id: str = "test-run"):
        import pyarrow as pa

        loaded_at = datetime(2025, 3, 10, 6, 0, tzinfo=UTC)
        rows = [
            {
                "load_date": loaded_at.date(),
                "visit_date": day,
                "iin": iin,
                "event": event,
                "event_time": clock,
                "raw_json": f'{{"iin":"{iin}","event":"{event}","time":"{clock}"}}',
                "loaded_at": loaded_at,
                "_run_id": run_id,
                "_landing_uri": f"file:///landing/alaqan/byDate/visit_date={day}/0123456789abcdef.json.gz",
            }
            for day, iin, event, clock in events
        ]
        return pa.Table.from_pylist(rows, schema=schema)

    return build

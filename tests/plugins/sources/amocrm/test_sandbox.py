"""load_interval against the amoCRM sandbox (``plugins/elt_platform/sandbox/amocrm/``), both auth modes.

Expected values come from the sandbox dataset's own ground truth (what a full list shows now, filtered by
``updated_at``), not from the code under test. The last test starts the sandbox the way ``elt run`` does,
through the registry's launcher, and skips until that launcher exists.
"""

import json
import os
from datetime import UTC, date, datetime, time, timedelta

import pytest
from tests.plugins.sources.amocrm.conftest import Conn

from elt_platform.http.errors import BannedError
from elt_platform.sources.amocrm.auth import exchange_authorization_code
from elt_platform.sources.amocrm.client import AmoCrmClient
from elt_platform.sources.amocrm.extract import TABLES, load_interval

sandbox_server = pytest.importorskip(
    "elt_platform.sandbox.amocrm.server", reason="the amoCRM sandbox server is not there yet"
)
from elt_platform.sandbox.amocrm import account  # noqa: E402 - after the skip above
from elt_platform.sandbox.amocrm.generator import AmoCrmDataset  # noqa: E402

START, END = date(2024, 6, 3), date(2024, 6, 5)  # inside the dataset's history (2024-01-01 .. 2024-07-01)
ONE_DAY = timedelta(days=1)
TOKEN = "sandbox-lt-3f9c2a71"


def _window() -> tuple[int, int]:
    since = int(datetime.combine(START, time.min, tzinfo=UTC).timestamp())
    return since, int(datetime.combine(END, time.min, tzinfo=UTC).timestamp()) - 1


def _expected(dataset: AmoCrmDataset) -> dict[str, int]:
    since, until = _window()
    counts = {
        entity: sum(since <= r["updated_at"] <= until for r in dataset.records(entity))
        for entity in ("companies", "contacts", "leads", "tasks")
    }
    counts["events"] = len(dataset.events(since, until))
    counts["pipelines"] = len(dataset.pipelines)
    counts["users"] = len(dataset.users)
    counts["custom_fields"] = sum(
        len(account.custom_fields_body(e, "")) for e in ("leads", "contacts", "companies")
    )
    counts["quarantine"] = 0
    return counts


@pytest.fixture(scope="module")
def dataset() -> AmoCrmDataset:
    return AmoCrmDataset(seed=7, leads=900)


def test_long_lived_token_load_matches_the_dataset_and_reruns_replace(dataset, catalog) -> None:
    with sandbox_server.AmoCrmSandboxServer(dataset, long_lived_token=TOKEN) as server:
        conn = Conn(host=server.base_url, password=TOKEN)
        with AmoCrmClient.from_connection(conn) as client:
            first = load_interval(client, START, END, run_id="sandbox-1", catalog=catalog)
        with AmoCrmClient.from_connection(conn) as client:
            second = load_interval(client, START, END, run_id="sandbox-2", catalog=catalog)

    expected = _expected(dataset)
    assert first.rows == expected and second.rows == expected
    assert first.rows["leads"] > 0 and first.rows["events"] > 0
    counts = {n: len(catalog.load_table(f"bronze.amocrm_{n}").scan().to_arrow()) for n in TABLES}
    assert counts == expected
    leads = catalog.load_table("bronze.amocrm_leads").scan().to_arrow()
    assert set(leads.column("_run_id").to_pylist()) == {"sandbox-2"}
    assert first.requests >= sum(first.pages.values())  # 429s retried count as requests


def test_oauth_from_authorization_code_to_loaded_interval_then_a_ban(dataset, catalog, state_store) -> None:
    with sandbox_server.AmoCrmSandboxServer(dataset, redirect_uri="https://x.kz/cb") as server:
        conn = Conn(
            host=server.base_url,
            login=server.client_id,
            password=sandbox_server.DEFAULT_CLIENT_SECRET,
            extra_dejson={"redirect_uri": "https://x.kz/cb"},
        )
        exchange_authorization_code(
            conn, server.issue_authorization_code("https://x.kz/cb"), store=state_store
        )
        with AmoCrmClient.from_connection(conn, store=state_store) as client:
            summary = load_interval(
                client, START, START + timedelta(days=1), run_id="oauth-1", catalog=catalog
            )
        server.ban()
        with AmoCrmClient.from_connection(conn, store=state_store) as client, pytest.raises(BannedError):
            load_interval(client, START, END, run_id="oauth-2", catalog=catalog)

    assert summary.rows["pipelines"] == len(dataset.pipelines) and summary.quarantined == 0
    assert {
        n: len(catalog.load_table(f"bronze.amocrm_{n}").scan().to_arrow()) for n in TABLES
    } == summary.rows


def test_the_registry_launcher_serves_the_extract(lakehouse_env, catalog) -> None:
    from elt_platform.sandbox import launch
    from elt_platform.state.store import open_state_store

    if not hasattr(launch, "amocrm"):
        pytest.skip(
            "the launcher elt_platform.sandbox.launch:amocrm (named in sources/amocrm/pipeline.py) "
            "does not exist yet"
        )
    with launch.amocrm(launch.SandboxOptions()):
        fields = json.loads(os.environ["AIRFLOW_CONN_AMOCRM_DEFAULT"])
        conn = Conn(
            host=fields.get("host"),
            login=fields.get("login"),
            password=fields.get("password"),
            extra_dejson=fields.get("extra") or {},
            port=fields.get("port"),
            schema=fields.get("schema"),
        )
        with AmoCrmClient.from_connection(conn, store=open_state_store()) as client:
            # The launcher's history is the year up to today: load the two days before yesterday.
            today = datetime.now(UTC).date()
            start, end = today - timedelta(days=3), today - ONE_DAY
            summary = load_interval(client, start, end, run_id="launcher-1", catalog=catalog)

    assert summary.quarantined == 0, summary.quarantine_reasons
    assert all(summary.rows[name] > 0 for name in ("pipelines", "users", "custom_fields", "leads"))

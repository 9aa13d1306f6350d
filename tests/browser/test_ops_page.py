"""In a real browser: the Platform page inside Airflow's UI shows exactly the seeded numbers.

Airflow's API server (with this repository's plugins) runs on a throw-away ``AIRFLOW_HOME``/``ELT_HOME``
on the embedded profile; the lakehouse and the state store hold the rows of
:mod:`tests.plugins.ops_view.seed`. Headless Chromium (Debian ``chromium`` + ``chromium-driver``,
``tests/browser/install.sh``) signs in through Airflow's login form, opens the page from the
navigation's ``/plugin/elt-platform`` route, uses the date-range control, and reads the numbers off
the page; they must equal those computed from the seed's constants (:mod:`tests.plugins.ops_view.
expected`). The same server proves the page's routes answer 401/403 without a valid token. A
screenshot is saved under the test's directory (README's ``docs/img/ops_page.png`` shows the page on
the data of ``make run``, not on this seed).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import LOCATION_VARIABLES
from tests.plugins.ops_view import expected, seed

pytestmark = [pytest.mark.browser]

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
PERSONAL = ("870101300123", "701 123 45 67", "87011234567", "ivan.petrov", "admin@example.com")
WAIT_S = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, base_url: str, password: str, metadata: Path, out: Path):
        self.base_url, self.password, self.metadata, self.out = base_url, password, metadata, out

    def status(self, path: str, token: str | None = None) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            with urllib.request.urlopen(urllib.request.Request(self.base_url + path, headers=headers)) as r:
                return r.status
        except urllib.error.HTTPError as error:
            return error.code

    def token(self) -> str:
        body = json.dumps({"username": "admin", "password": self.password}).encode()
        request = urllib.request.Request(
            f"{self.base_url}/auth/token", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request) as response:
            return json.load(response)["access_token"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from elt_platform.airflow_local import AirflowStack, Profile, migrate
    from elt_platform.config import PlatformConfig
    from elt_platform.iceberg.catalog import load_catalog
    from elt_platform.state import open_state_store
    from elt_platform.state.store import utcnow

    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Chromium is not installed: run tests/browser/install.sh (as root)")
    home = tmp_path_factory.mktemp("ops_page")
    env = {
        k: v for k, v in os.environ.items() if k not in LOCATION_VARIABLES and not k.startswith("AIRFLOW_")
    }
    env.update(ELT_HOME=str(home / "elt"), ELT_ENV_FILE=str(home / "no.env"), ELT_PII_MASKING="hash")
    config = PlatformConfig.from_env(env)
    catalog = load_catalog(config)
    store = open_state_store(f"sqlite:///{config.home / 'state.db'}")
    seed.seed_lake(catalog)
    seed.seed_state(store, catalog, utcnow())
    store.close()

    profile = Profile(home / "airflow", port=_free_port(), parallelism=1, components=("api-server",))
    env = profile.env(env)
    migrate(env, home / "migrate.log")
    with AirflowStack(profile, env) as stack:
        stack.wait_ready()
        password = json.loads(profile.passwords_file.read_text())["admin"]
        yield Server(profile.base_url, password, profile.airflow_home / "airflow.db", home)


@pytest.mark.parametrize("path", ["/elt-platform/", "/elt-platform/data.json", "/elt-platform/rows?table=x"])
def test_every_route_needs_an_airflow_login(server: Server, path: str):
    assert server.status(path) == 401
    assert server.status(path, token="not-a-jwt") == 403
    assert server.status("/elt-platform/data.json", token=server.token()) == 200


@pytest.fixture(scope="module")
def browser(server: Server):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,2400"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def _cell(page, css: str) -> str:
    from selenium.webdriver.common.by import By

    return page.find_element(By.CSS_SELECTOR, css).text.strip()


def _bars(page, figure: str) -> list[tuple[str, str, float]]:
    from selenium.webdriver.common.by import By

    return [
        (b.get_attribute("data-series"), b.get_attribute("data-label"), float(b.get_attribute("data-value")))
        for b in page.find_elements(By.CSS_SELECTOR, f"#{figure} rect.bar")
    ]


def _show_range(page, first, last) -> None:
    """Use the page's date-range control."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    old = page.find_element(By.TAG_NAME, "h1")
    page.execute_script(
        "document.querySelector('input[name=start]').value = arguments[0];"
        "document.querySelector('input[name=end]').value = arguments[1];",
        first.isoformat(),
        last.isoformat(),
    )
    page.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(page, WAIT_S).until(expected_conditions.staleness_of(old))


def test_the_page_in_airflow_shows_the_lake_and_state_numbers(server: Server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_S)
    browser.get(f"{server.base_url}/plugin/elt-platform")
    # Not signed in: Airflow's own login form, then back to the page.
    wait.until(expected_conditions.presence_of_element_located((By.NAME, "username"))).send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(server.password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    frame = wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "iframe")))
    assert frame.get_attribute("src") == f"{server.base_url}/elt-platform/"
    browser.switch_to.frame(frame)
    wait.until(expected_conditions.presence_of_element_located((By.ID, "sources")))
    _show_range(browser, *seed.RANGE)

    freshness = {
        name: _cell(browser, f"tr[data-source={name}] [data-field=freshness]") for name in expected.FRESHNESS
    }
    assert freshness == expected.FRESHNESS
    alaqan = "tr[data-source=alaqan]"
    assert _cell(browser, f"{alaqan} [data-field=bronze]") == str(seed.VISITS)
    assert _cell(browser, f"{alaqan} [data-field=gold]") == str(len(seed.ATTENDANCE))
    quarantine = f"{alaqan} [data-table='bronze.alaqan_visits_quarantine']"
    assert _cell(browser, f"{quarantine} [data-field=total]") == str(len(seed.ALAQAN_REASONS))
    shown = {
        code: _cell(browser, f"{quarantine} [data-reason={code}]")
        for code in expected.reasons(seed.ALAQAN_REASONS)
    }
    assert shown == {code: f"{code} {n}" for code, n in expected.reasons(seed.ALAQAN_REASONS).items()}

    dest = f"tr[data-destination={seed.DESTINATION}]"
    counts = {
        k: _cell(browser, f"{dest} [data-field={k}]")
        for k in ("created", "updated", "protected", "review", "failed")
    }
    assert counts == {k: str(seed.COUNTS[k]) for k in ("created", "updated", "protected", "review")} | {
        "failed": str(seed.COUNTS["failed"] + seed.COUNTS["dead"])
    }
    failed, executed = expected.executed()
    assert (
        _cell(browser, f"{dest} [data-field=success_hour]").splitlines()[0]
        == f"{(executed - failed) / executed:.1%}"
    )
    ops = expected.operations()
    assert _cell(browser, f"{dest} [data-field=retry]") == str(ops["failed"])
    assert _cell(browser, f"{dest} [data-field=dead]") == str(ops["dead"])
    with sqlite3.connect(f"file:{server.metadata}?mode=ro", uri=True) as conn:
        (pending,) = conn.execute("select count(*) from hitl_detail where responded_at is null").fetchone()
    assert _cell(browser, f"{dest} [data-field=approvals]") == str(pending)
    assert len(browser.find_elements(By.CSS_SELECTOR, f"tr[data-errors={seed.DESTINATION}] li")) == 3

    account = f"tr[data-account='{seed.BREAKER_ACCOUNT}']"
    assert _cell(browser, f"{account} [data-field=breaker]") == "open"
    assert _cell(browser, f"{account} [data-field=reset]") == f"elt breaker reset {seed.BREAKER_ACCOUNT}"
    budget = f"tr[data-account='{seed.BUDGET_ACCOUNT}']"
    assert _cell(browser, f"{budget} [data-field=rate]") == f"{seed.BUDGET_RATE:g}"

    attendance = expected.attendance()
    assert _bars(browser, "chart-attendance") == [
        ("people", f"{day:%m-%d}", float(people)) for day, (people, _) in sorted(attendance.items())
    ]
    assert _bars(browser, "chart-sales-funnel") == [(p, s, float(n)) for p, s, n in expected.sales_funnel()]
    statuses = ("completed", "arrived", "scheduled", "cancelled")
    assert _bars(browser, "chart-reception-funnel") == [
        (status, branch, float(values[status]))
        for branch, values in sorted(expected.reception_funnel().items())
        for status in statuses
        if values.get(status)
    ]
    text = browser.find_element(By.TAG_NAME, "body").text + browser.page_source
    assert [p for p in PERSONAL if p in text] == []

    browser.switch_to.default_content()
    # Kept under the test's temporary directory (pytest keeps the last runs).
    screenshot = server.out / "ops_page.png"
    browser.save_screenshot(str(screenshot))
    print(f"\nscreenshot: {screenshot}")

    browser.switch_to.frame(browser.find_element(By.CSS_SELECTOR, "iframe"))
    from elt_platform.state.store import utcnow

    today = utcnow().date()
    _show_range(browser, today, today)
    assert {(series, n) for series, _, n in _bars(browser, "chart-operations")} == {
        (outcome, float(n)) for outcome, n in ops.items()
    }

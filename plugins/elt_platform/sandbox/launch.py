"""Start a source's sandbox for ``elt run`` (``make run``) and point the platform at it.

Each launcher is a context manager named by a source's registry entry (``Source.sandbox``); it
yields a one-line description of the endpoint and, while it runs, sets the environment the extract
reads (an ``AIRFLOW_CONN_*`` connection, an exchange-area URI). It is only used when no real endpoint
is configured for that source. Runtime code never imports this module: only the CLI's ``run`` does.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from elt_platform.config import REPO_ROOT, PlatformConfig

if TYPE_CHECKING:  # the launchers import the sandboxes lazily, inside each function
    from elt_platform.sandbox.server import SandboxServer

#: Real 1C exports beside the checkout (``../shared/fixtures``); ``make run`` replays one of them.
ONEC_FIXTURES = REPO_ROOT.parent / "shared" / "fixtures" / "commerceml"
ONEC_RUN_PACKAGE = "carono_cml2.07"


@dataclass(frozen=True)
class SandboxOptions:
    """What ``elt run`` asks of the sandboxes."""

    employees: int = 300
    seed: int = 42


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


@contextmanager
def _serving(server: SandboxServer, variable: str, **connection: object) -> Iterator[None]:
    """Start ``server`` and, while it runs, set ``variable`` to an ``http`` connection to its API.

    Args:
        server: The sandbox server, not started.
        variable: The ``AIRFLOW_CONN_*`` environment variable the extract reads.
        **connection: Fields of the connection beyond ``conn_type`` and ``host`` (``password``, ``extra``).
    """
    server.start()
    try:
        with _env(variable, json.dumps({"conn_type": "http", "host": server.base_url, **connection})):
            yield
    finally:
        server.stop()


@contextmanager
def alaqan(options: SandboxOptions) -> Iterator[str]:
    """The Alaqan sandbox on a free 127.0.0.1 port, as the ``alaqan_default`` connection."""
    from elt_platform.sandbox.alaqan.generator import AlaqanDataset
    from elt_platform.sandbox.alaqan.server import SandboxServer

    server = SandboxServer(AlaqanDataset(seed=options.seed, employees=options.employees))
    with _serving(server, "AIRFLOW_CONN_ALAQAN_DEFAULT", password=server.api_key):
        yield f"sandbox {server.root_url} ({options.employees} employees, seed {options.seed})"


@contextmanager
def amocrm(options: SandboxOptions) -> Iterator[str]:
    """The amoCRM sandbox on a free 127.0.0.1 port, as the ``amocrm_default`` connection (the extract's
    and the reverse ETL's: one account, one request budget).

    A private integration (long-lived token as the connection's password) over 2,000 leads created in
    the year up to today 00:00 UTC; the clock then follows real time, so each day brings new data.
    """
    from datetime import UTC, datetime, timedelta

    from elt_platform.sandbox.amocrm.account import CLINIC
    from elt_platform.sandbox.amocrm.generator import AmoCrmDataset
    from elt_platform.sandbox.amocrm.server import AmoCrmSandboxServer, default_long_lived_token

    leads, requests_per_second = 2000, 7
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    # The clinic's pipelines and reception fields too: the same account receives the reverse ETL.
    dataset = AmoCrmDataset(
        seed=options.seed, leads=leads, start=today - timedelta(days=365), now=today, clinic=CLINIC
    )
    token = default_long_lived_token()
    server = AmoCrmSandboxServer(
        dataset, long_lived_token=token, requests_per_second=requests_per_second, follow_wall_clock=True
    )
    extra = {"requests_per_second": requests_per_second}
    with _serving(server, "AIRFLOW_CONN_AMOCRM_DEFAULT", password=token, extra=extra):
        yield f"sandbox {server.root_url} ({leads} leads by {today:%Y-%m-%d}, seed {options.seed})"


@contextmanager
def onec(options: SandboxOptions) -> Iterator[str]:
    """A real CommerceML export (fixture) dropped into the local exchange area as a complete package.

    Raises:
        FileNotFoundError: ``../shared/fixtures`` is not beside the checkout.
    """
    del options
    package = ONEC_FIXTURES / ONEC_RUN_PACKAGE
    if not package.is_dir():
        raise FileNotFoundError(f"1C sandbox package {package} not found (../shared beside the checkout?)")
    area = PlatformConfig.from_env().home / "exchange" / "onec"
    target = area / "incoming" / ONEC_RUN_PACKAGE
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(package, target, ignore=shutil.ignore_patterns("*.md"))
    (target / ".complete").touch()
    with _env("ELT_ONEC_EXCHANGE_URI", str(area)):
        yield f"sandbox exchange folder {area} (package {ONEC_RUN_PACKAGE} from ../shared/fixtures)"


@contextmanager
def ident(options: SandboxOptions) -> Iterator[str]:
    """Four iDent databases (five branches) in a throw-away PostgreSQL, reached through ODBC (psqlODBC).

    Installs unixODBC + psqlODBC when missing, starts the cluster under ``$ELT_HOME/ident-sandbox/``,
    loads a small dataset ending today 00:00 (local wall clock) and sets ``AIRFLOW_CONN_IDENT_1`` … ``_4``
    (``odbc`` connections whose ``extra.driver`` names the driver, hence
    ``AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA``) and ``ELT_IDENT_SANDBOX=1``.
    """
    from contextlib import ExitStack
    from datetime import datetime

    from elt_platform.sandbox.ident import catalog
    from elt_platform.sandbox.ident.cluster import PostgresCluster
    from elt_platform.sandbox.ident.driver import ensure_driver
    from elt_platform.sandbox.ident.generator import load

    ensure_driver()
    scale = 0.5
    today = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
    directory = PlatformConfig.from_env().home / "ident-sandbox"
    with PostgresCluster(directory, catalog.DATABASES) as cluster, ExitStack() as env:
        load(cluster.odbc, seed=options.seed, scale=scale, now=today)
        for number, database in enumerate(cluster.databases, start=1):
            env.enter_context(_env(f"AIRFLOW_CONN_IDENT_{number}", json.dumps(database.airflow_connection())))
        env.enter_context(_env("AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA", "True"))
        env.enter_context(_env("ELT_IDENT_SANDBOX", "1"))
        yield (
            f"sandbox PostgreSQL 127.0.0.1:{cluster.port} via ODBC {{{cluster.databases[0].driver}}}: "
            f"{len(cluster.names)} databases, {sum(map(len, catalog.LAYOUT))} branches, scale {scale}, "
            f"seed {options.seed}, up to {today:%Y-%m-%d}"
        )


@contextmanager
def bitrix24(options: SandboxOptions) -> Iterator[str]:
    """A Bitrix24 portal (incoming webhook) on a free 127.0.0.1 port, as the ``crm_bitrix24`` connection.

    The portal has the clinic pipeline and user fields ``schemas/destinations/bitrix24.yaml`` names, and
    existing contacts, leads and deals (shared family phones among them), as a portal in use has.
    """
    from elt_platform.sandbox.bitrix24.generator import populate
    from elt_platform.sandbox.bitrix24.server import Bitrix24SandboxServer

    server = Bitrix24SandboxServer()
    made = populate(server.portal, seed=options.seed, contacts=300, leads=60, deals=200)
    seeded = f"{len(made.contacts)} contacts, {len(made.leads)} leads, {len(made.deals)} deals"
    server.start()
    try:
        variable = "AIRFLOW_CONN_CRM_BITRIX24"
        with _env(variable, json.dumps({"conn_type": "http", "host": server.webhook_url})):
            yield f"sandbox portal {server.root_url} ({seeded}, seed {options.seed})"
    finally:
        server.stop()

"""Alembic migrations of the state store, run programmatically (there is no ``alembic.ini``).

:func:`run_upgrade` is what :meth:`elt_platform.state.store.StateStore.upgrade` calls on first open;
``env.py`` runs the migrations on the connection it is handed, inside the caller's locked transaction.
A new revision (the reverse-ETL outbox will be ``0002``) is generated with::

    .venv/bin/python -c "from alembic import command; from elt_platform.state.migrations import \\
alembic_config; command.revision(alembic_config(), 'add outbox', rev_id='0002')"
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

MIGRATIONS_DIR = Path(__file__).resolve().parent
#: Not Alembic's default ``alembic_version``: Airflow's metadata database uses that name, and a
#: production Postgres may host both.
VERSION_TABLE = "elt_state_alembic_version"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` for this package's migrations.

    Args:
        connection: the connection ``env.py`` migrates; ``None`` makes ``env.py`` connect to
            ``ELT_STATE_DB_URL`` itself (for ``command.revision`` / offline SQL).

    Returns:
        The configuration, with no ini file behind it.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


def run_upgrade(connection: Connection) -> str:
    """``alembic upgrade head`` on ``connection``, within the transaction already open on it.

    Args:
        connection: a connection inside a transaction; the caller commits.

    Returns:
        The head revision the database is now at.
    """
    command.upgrade(alembic_config(connection), "head")
    return current_revision(connection) or ""


def current_revision(connection: Connection) -> str | None:
    """The revision recorded in the database (``None`` before the first upgrade)."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


@cache
def head_revision() -> str:
    """The newest revision in ``versions/`` (read once per process)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head

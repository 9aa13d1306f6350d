"""Alembic environment of the state store: migrate the connection handed over in ``config.attributes``.

Run by :func:`elt_platform.state.migrations.run_upgrade`, which passes a connection whose transaction
already holds the migration lock; Alembic then runs every pending revision inside that transaction
(both SQLite, with our explicit ``BEGIN``, and Postgres have transactional DDL), so a failed upgrade
leaves the previous schema intact.
"""

from __future__ import annotations

from alembic import context

from elt_platform.state.migrations import VERSION_TABLE
from elt_platform.state.schema import metadata

config = context.config


def run_offline() -> None:
    from elt_platform.state.store import default_url

    context.configure(
        url=default_url(),
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        from elt_platform.state.store import StateStore, default_url

        store = StateStore(default_url())
        with store.transaction() as connection:
            _migrate(connection)
        store.engine.dispose()
    else:
        _migrate(connection)


def _migrate(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()

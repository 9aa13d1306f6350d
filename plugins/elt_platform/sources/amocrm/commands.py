"""``elt amocrm-auth --code CODE``: store the amoCRM account's first OAuth token pair (``make amocrm-auth``).

:func:`register` adds the command to the platform CLI (``elt_platform/cli.py``). It reads the
``amocrm_default`` connection (OAuth mode: ``login`` = client id, ``password`` = client secret,
``extra.redirect_uri``), exchanges the authorization code amoCRM showed after the integration was
authorised (valid 20 minutes, single use) and saves the pair in the state store, where every extract
refreshes it. Output is one line: ``✔`` with the account and expiry, or ``✘`` with the reason; a token
is never printed.
"""

from __future__ import annotations

import argparse
import sys

EXIT_FAILED = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``amocrm-auth`` to a CLI.

    Args:
        subparsers: the result of ``parser.add_subparsers()``; the command sets ``func`` (taking the
            parsed namespace, returning an exit code).
    """
    from elt_platform.sources.amocrm.settings import CONN_ID

    auth = subparsers.add_parser(
        "amocrm-auth", help="exchange an amoCRM authorization code for the first OAuth token pair"
    )
    auth.add_argument("--code", required=True, help="the authorization code (valid 20 minutes, single use)")
    auth.add_argument("--conn-id", default=CONN_ID, help=f"Airflow connection (default {CONN_ID})")
    auth.set_defaults(func=cmd_amocrm_auth)


def cmd_amocrm_auth(args: argparse.Namespace) -> int:
    """``amocrm-auth --code CODE``: exchange the code, store the pair, print one line."""
    from airflow.sdk import BaseHook

    from elt_platform.http.errors import HttpError
    from elt_platform.sources.amocrm.auth import exchange_authorization_code
    from elt_platform.sources.amocrm.connection import ConnectionConfig
    from elt_platform.sources.amocrm.settings import AUTH_OAUTH

    try:
        connection = BaseHook.get_connection(args.conn_id)
        config = ConnectionConfig.from_connection(connection)
        if config.auth != AUTH_OAUTH:
            print(
                f"✘ {config.account}: the {args.conn_id} connection holds a long-lived token "
                "(no login = client id): nothing to authorise",
                file=sys.stderr,
            )
            return EXIT_FAILED
        pair = exchange_authorization_code(connection, args.code)
    except (HttpError, ValueError) as exc:
        print(f"✘ {args.conn_id}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - e.g. Airflow's "connection not defined": one line, not a traceback
        print(f"✘ {args.conn_id}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    expires = pair.expires_at.isoformat(timespec="seconds") if pair.expires_at else "unknown"
    print(
        f"✔ {config.account} authorised: token pair stored (access token expires {expires}, then refreshed)"
    )
    return 0

"""Command line for the amoCRM sandbox: ``python -m elt_platform.sandbox.amocrm --port 8766 --leads 5000``
(``--clinic`` adds the clinic's pipelines and reception fields for the reverse-ETL sync).

Serves until killed (Ctrl-C / SIGTERM, handled by uvicorn) and prints the base URL to point the client
or the ``amocrm_default`` connection at. The long-lived token comes from ``--long-lived-token``, else
``$AMOCRM_SANDBOX_TOKEN``, else the development token; it is never printed. OAuth clients use
``--client-id``/``--client-secret`` and get codes from ``POST /__sandbox/oauth/code``.
"""

import argparse
import time
from datetime import UTC, datetime

from elt_platform.sandbox.amocrm.account import CLINIC
from elt_platform.sandbox.amocrm.app import AmoCrmSandbox
from elt_platform.sandbox.amocrm.generator import AmoCrmDataset
from elt_platform.sandbox.amocrm.oauth import TokenStore
from elt_platform.sandbox.amocrm.server import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    TOKEN_ENV,
    default_long_lived_token,
)
from elt_platform.sandbox.cli import serve_from_command_line, server_parser
from elt_platform.sandbox.faults import FaultConfig


def _aware(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parser() -> argparse.ArgumentParser:
    parser = server_parser(
        "python -m elt_platform.sandbox.amocrm",
        "Serve a deterministic fake amoCRM API v4 (leads, contacts, companies, tasks, events).",
        port=8766,
    )
    parser.add_argument(
        "--leads", type=int, default=2000, help="leads existing at --now (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=42, help="dataset seed (default: %(default)s)")
    parser.add_argument(
        "--start", type=_aware, default=None, help="history start, ISO (default: --now - 182 days)"
    )
    parser.add_argument(
        "--now", type=_aware, default=None, help="initial clock, ISO (default: today 00:00 UTC)"
    )
    parser.add_argument("--follow-wall-clock", action="store_true", help="advance the clock with real time")
    parser.add_argument(
        "--clinic",
        action="store_true",
        help="add the clinic's pipelines and reception fields (iDent reception sync)",
    )
    parser.add_argument(
        "--rps", type=float, default=7.0, help="requests/s per integration (default: %(default)s)"
    )
    parser.add_argument(
        "--client-id", default=DEFAULT_CLIENT_ID, help="OAuth client_id (default: %(default)s)"
    )
    parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET, help="OAuth client_secret")
    parser.add_argument(
        "--long-lived-token",
        default=None,
        help=f"accepted bearer (default: ${TOKEN_ENV}, else a development token)",
    )
    return parser


def _sandbox(args: argparse.Namespace, faults: FaultConfig | None) -> tuple[AmoCrmSandbox, str]:
    now = args.now or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = args.start or datetime.fromtimestamp(now.timestamp() - 182 * 86_400, UTC)
    began = time.monotonic()
    dataset = AmoCrmDataset(
        seed=args.seed, leads=args.leads, start=start, now=now, clinic=CLINIC if args.clinic else None
    )
    tokens = TokenStore(
        args.client_id,
        args.client_secret,
        long_lived_token=args.long_lived_token or default_long_lived_token(),
    )
    sandbox = AmoCrmSandbox(
        dataset, tokens, requests_per_second=args.rps, faults=faults, follow_wall_clock=args.follow_wall_clock
    )
    return sandbox, f"{dataset!r}, built in {time.monotonic() - began:.1f}s"


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build the dataset and serve until interrupted.

    Args:
        argv: Arguments without the program name; None reads ``sys.argv``.

    Returns:
        Process exit code.
    """
    return serve_from_command_line(
        _parser(), argv, _sandbox, title="amoCRM sandbox", admin_routes=("clock", "ban", "oauth/code")
    )

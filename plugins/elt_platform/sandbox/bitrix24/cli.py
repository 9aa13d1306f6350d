"""Command line for the Bitrix24 sandbox: ``python -m elt_platform.sandbox.bitrix24 --deals 10000``.

Serves until killed (Ctrl-C / SIGTERM, handled by uvicorn). The webhook token comes from ``--token``,
else ``$BITRIX24_SANDBOX_TOKEN``, else the development token; it is never printed, and the access log
masks it (the webhook URL path carries it).
"""

import argparse
import logging
import time

from elt_platform.sandbox.bitrix24.app import PLANS, Bitrix24Sandbox
from elt_platform.sandbox.bitrix24.generator import populate
from elt_platform.sandbox.bitrix24.portal import Portal
from elt_platform.sandbox.bitrix24.server import TOKEN_ENV, default_token
from elt_platform.sandbox.cli import serve_from_command_line, server_parser
from elt_platform.sandbox.faults import FaultConfig

MASK = "***"


class MaskToken(logging.Filter):
    """Replace the webhook token in access-log records (uvicorn passes the path as an argument)."""

    def __init__(self, token: str) -> None:
        """Create the filter for ``token``."""
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                arg.replace(self.token, MASK) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def _parser() -> argparse.ArgumentParser:
    parser = server_parser(
        "python -m elt_platform.sandbox.bitrix24",
        "Serve a fake Bitrix24 portal behind an incoming webhook (contacts, leads, deals, batch).",
        port=8767,
    )
    parser.add_argument("--contacts", type=int, default=1000, help="existing contacts (default: %(default)s)")
    parser.add_argument("--leads", type=int, default=200, help="existing leads (default: %(default)s)")
    parser.add_argument("--deals", type=int, default=2000, help="existing deals (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=42, help="content seed (default: %(default)s)")
    parser.add_argument("--user-id", type=int, default=1, help="webhook user id (default: %(default)s)")
    parser.add_argument(
        "--token", default=None, help=f"webhook token (default: ${TOKEN_ENV}, else a dev token)"
    )
    parser.add_argument("--plan", choices=sorted(PLANS), default="standard", help="rate-limit plan")
    parser.add_argument("--strict-findbycomm", action="store_true", help="more than 20 values is an error")
    return parser


def _sandbox(args: argparse.Namespace, faults: FaultConfig | None) -> tuple[Bitrix24Sandbox, str]:
    token = args.token or default_token()
    logging.getLogger("uvicorn.access").addFilter(MaskToken(token))
    began = time.monotonic()
    portal = Portal(strict_findbycomm=args.strict_findbycomm)
    populate(portal, seed=args.seed, contacts=args.contacts, leads=args.leads, deals=args.deals)
    sandbox = Bitrix24Sandbox(portal, token=token, user_id=args.user_id, plan=args.plan, faults=faults)
    note = f"webhook /rest/{args.user_id}/{MASK}/, {portal!r}, built in {time.monotonic() - began:.1f}s"
    return sandbox, note


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build the portal and serve until interrupted.

    Args:
        argv: Arguments without the program name; None reads ``sys.argv``.

    Returns:
        Process exit code.
    """
    return serve_from_command_line(
        _parser(),
        argv,
        _sandbox,
        title="Bitrix24 sandbox",
        admin_routes=("state", "seed", "calls", "bitrix24/faults"),
    )

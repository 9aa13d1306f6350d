"""Command line for the Alaqan sandbox: ``python -m elt_platform.sandbox.alaqan --port 8765``.

Serves until killed (Ctrl-C / SIGTERM, handled by uvicorn) and prints the base URL to point the client
or the ``alaqan_default`` connection at. The API key comes from ``--api-key``, else
``$ALAQAN_SANDBOX_API_KEY``, else the development key; it is never printed.
"""

import argparse

from elt_platform.sandbox.alaqan.app import AlaqanSandbox
from elt_platform.sandbox.alaqan.generator import AlaqanDataset
from elt_platform.sandbox.alaqan.server import API_KEY_ENV, default_api_key
from elt_platform.sandbox.cli import serve_from_command_line, server_parser
from elt_platform.sandbox.faults import FaultConfig


def _parser() -> argparse.ArgumentParser:
    parser = server_parser(
        "python -m elt_platform.sandbox.alaqan",
        "Serve a deterministic fake Alaqan API (byDate/byIin) with switchable faults.",
        port=8765,
    )
    parser.add_argument("--employees", type=int, default=200, help="roster size (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=42, help="dataset seed (default: %(default)s)")
    parser.add_argument(
        "--api-key",
        default=None,
        help=f"accepted X-Api-Key (default: ${API_KEY_ENV}, else the development key 'sandbox-key')",
    )
    return parser


def _sandbox(args: argparse.Namespace, faults: FaultConfig | None) -> tuple[AlaqanSandbox, str]:
    dataset = AlaqanDataset(seed=args.seed, employees=args.employees)
    return AlaqanSandbox(dataset, args.api_key or default_api_key(), faults), ""


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve until interrupted.

    Args:
        argv: Arguments without the program name; None reads ``sys.argv``.

    Returns:
        Process exit code.
    """
    return serve_from_command_line(_parser(), argv, _sandbox, title="Alaqan sandbox")

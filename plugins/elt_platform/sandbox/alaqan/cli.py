"""Command line for the Alaqan sandbox: ``python -m elt_platform.sandbox.alaqan --port 8765``.

Serves until killed (Ctrl-C / SIGTERM, handled by uvicorn) and prints the base URL to point the client
or the ``alaqan_default`` connection at. The API key comes from ``--api-key``, else
``$ALAQAN_SANDBOX_API_KEY``, else the development key; it is never printed.
"""

import argparse
import json

import uvicorn

from elt_platform.sandbox.admin import ADMIN_PREFIX
from elt_platform.sandbox.alaqan.app import create_app
from elt_platform.sandbox.alaqan.generator import AlaqanDataset
from elt_platform.sandbox.alaqan.server import API_KEY_ENV, API_PATH, default_api_key
from elt_platform.sandbox.faults import FaultConfig
from elt_platform.sandbox.server import bind_socket, uvicorn_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m elt_platform.sandbox.alaqan",
        description="Serve a deterministic fake Alaqan API (byDate/byIin) with switchable faults.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=8765, help="TCP port, 0 = any free (default: %(default)s)"
    )
    parser.add_argument("--employees", type=int, default=200, help="roster size (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=42, help="dataset seed (default: %(default)s)")
    parser.add_argument(
        "--api-key",
        default=None,
        help=f"accepted X-Api-Key (default: ${API_KEY_ENV}, else the development key 'sandbox-key')",
    )
    parser.add_argument(
        "--faults",
        default=None,
        metavar="JSON",
        help='initial fault config, e.g. \'{"rate_429": 0.1, "retry_after": 1}\' (see FaultConfig)',
    )
    parser.add_argument("--no-access-log", action="store_true", help="do not log request lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve until interrupted.

    Args:
        argv: Arguments without the program name; None reads ``sys.argv``.

    Returns:
        Process exit code.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        faults = FaultConfig.from_dict(json.loads(args.faults)) if args.faults else None
    except ValueError as exc:
        parser.error(f"--faults: {exc}")
    dataset = AlaqanDataset(seed=args.seed, employees=args.employees)
    app = create_app(dataset, args.api_key or default_api_key(), faults)
    sock = bind_socket(args.host, args.port)
    port = sock.getsockname()[1]
    root = f"http://{args.host}:{port}"
    print(f"Alaqan sandbox: {root}{API_PATH}", flush=True)
    admin = root + ADMIN_PREFIX
    print(f"  admin: {admin}/faults  {admin}/stats  {admin}/health", flush=True)
    server = uvicorn.Server(uvicorn_config(app, access_log=not args.no_access_log, configure_logging=True))
    server.run(sockets=[sock])
    return 0

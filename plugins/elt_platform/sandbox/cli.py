"""The command-line half every sandbox CLI shares: the listening and fault options, and serving a
:class:`~elt_platform.sandbox.app.Sandbox` in the foreground until killed.

A sandbox's ``cli.py`` builds its parser with :func:`server_parser`, adds its own options, and hands
:func:`serve_from_command_line` a function that builds the sandbox from the parsed arguments.
"""

import argparse
import json
from collections.abc import Callable, Sequence

import uvicorn

from elt_platform.sandbox.admin import ADMIN_PREFIX
from elt_platform.sandbox.app import Sandbox
from elt_platform.sandbox.faults import FaultConfig
from elt_platform.sandbox.server import bind_socket, uvicorn_config

#: Admin routes every sandbox has (see :mod:`elt_platform.sandbox.admin`), printed at start.
BASE_ADMIN_ROUTES = ("faults", "stats", "health")

#: Builds the sandbox from the parsed arguments and the ``--faults`` config; returns it and a note
#: printed after its URL (e.g. how long the dataset took to build), possibly empty.
Build = Callable[[argparse.Namespace, FaultConfig | None], tuple[Sandbox, str]]


def server_parser(prog: str, description: str, *, port: int) -> argparse.ArgumentParser:
    """A parser with the options every sandbox CLI has: ``--host``, ``--port``, ``--faults``, access log.

    Args:
        prog: Program name shown in the usage line (``python -m elt_platform.sandbox.<api>``).
        description: One line on what is served.
        port: Default TCP port of this sandbox.

    Returns:
        The parser, for the sandbox's own options.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=port, help="TCP port, 0 = any free (default: %(default)s)"
    )
    parser.add_argument(
        "--faults",
        default=None,
        metavar="JSON",
        help='initial fault config, e.g. \'{"rate_429": 0.1, "retry_after": 1}\' (see FaultConfig)',
    )
    parser.add_argument("--no-access-log", action="store_true", help="do not log request lines")
    return parser


def serve_from_command_line(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    build: Build,
    *,
    title: str,
    admin_routes: Sequence[str] = (),
) -> int:
    """Parse ``argv``, build the sandbox, print its URLs and serve until killed (Ctrl-C / SIGTERM).

    The socket is bound before the URL is printed, so a client reading the first line can connect at once
    (``--port 0`` prints the port the OS picked).

    Args:
        parser: A :func:`server_parser` with the sandbox's own options added.
        argv: Arguments without the program name; None reads ``sys.argv``.
        build: Makes the sandbox (see :data:`Build`).
        title: Name printed before the API URL, e.g. ``"Alaqan sandbox"``.
        admin_routes: The sandbox's admin routes beyond :data:`BASE_ADMIN_ROUTES`, to print.

    Returns:
        Process exit code.
    """
    args = parser.parse_args(argv)
    try:
        faults = FaultConfig.from_dict(json.loads(args.faults)) if args.faults else None
    except ValueError as exc:
        parser.error(f"--faults: {exc}")
    sandbox, note = build(args, faults)
    sock = bind_socket(args.host, args.port)
    root = f"http://{args.host}:{sock.getsockname()[1]}"
    print(f"{title}: {root}{sandbox.api_path}" + (f"  ({note})" if note else ""), flush=True)
    admin = "  ".join(f"{root}{ADMIN_PREFIX}/{route}" for route in (*BASE_ADMIN_ROUTES, *admin_routes))
    print(f"  admin: {admin}", flush=True)
    config = uvicorn_config(sandbox.create_app(), access_log=not args.no_access_log, configure_logging=True)
    uvicorn.Server(config).run(sockets=[sock])
    return 0

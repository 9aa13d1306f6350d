"""Run any :class:`~elt_platform.sandbox.app.Sandbox` with uvicorn in a background thread (tests, benchmarks,
``make run``), plus the socket and uvicorn settings the sandbox CLIs share.

``SandboxServer`` binds the socket itself before starting uvicorn, so ``port=0`` yields a free port that
is known (and already listening) before the first request; shutdown is graceful and bounded.
"""

import socket
import threading
import time
from dataclasses import replace
from types import TracebackType
from typing import Any, Self, TypedDict

import uvicorn

from elt_platform.sandbox.app import Sandbox
from elt_platform.sandbox.faults import FaultConfig
from elt_platform.sandbox.state import SandboxState


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host:port``; port 0 lets the OS pick a free one.

    Args:
        host: Interface address, e.g. ``"127.0.0.1"``.
        port: TCP port, 0 for any free port.

    Returns:
        A listening socket to hand to uvicorn.
    """
    # proto must be IPPROTO_TCP, not 0: asyncio only sets TCP_NODELAY on accepted sockets whose proto says
    # TCP, and without it every keep-alive response stalls ~40 ms on Nagle + delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    # Listening now (uvicorn would only do it once its loop runs) closes the race where a client
    # connects between "URL printed" and "server started" and is refused.
    sock.listen(128)
    return sock


def uvicorn_config(app: Any, *, access_log: bool, configure_logging: bool) -> uvicorn.Config:
    """Build the uvicorn config shared by :class:`SandboxServer` and the sandbox CLIs.

    Args:
        app: The ASGI app.
        access_log: Log one line per request (request line and status; never headers).
        configure_logging: Let uvicorn install its logging config; False inside tests and other hosts
            so the caller's logging (e.g. pytest's caplog) is left alone.

    Returns:
        The config.
    """
    kwargs: dict[str, Any] = {} if configure_logging else {"log_config": None}
    return uvicorn.Config(
        app,
        loop="asyncio",
        lifespan="off",
        ws="none",
        access_log=access_log,
        timeout_graceful_shutdown=2,
        **kwargs,
    )


class ServerOptions(TypedDict, total=False):
    """How a :class:`SandboxServer` listens (its keyword arguments after the sandbox), for subclasses."""

    host: str
    port: int
    access_log: bool
    startup_timeout: float


class SandboxServer:
    """A sandbox HTTP server in a daemon thread; a context manager.

    Example:
        >>> with SandboxServer(MySandbox()) as server:  # doctest: +SKIP
        ...     requests.get(server.base_url + "items")
    """

    def __init__(
        self,
        sandbox: Sandbox,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        access_log: bool = False,
        startup_timeout: float = 5.0,
    ) -> None:
        """Prepare (not start) a server.

        Args:
            sandbox: The sandbox to serve; its app is built here.
            host: Interface to bind; keep the loopback default outside experiments.
            port: TCP port; 0 picks a free one.
            access_log: Log request lines through the ``uvicorn.access`` logger.
            startup_timeout: Seconds :meth:`start` waits for uvicorn before failing.
        """
        self.sandbox = sandbox
        self.app = sandbox.create_app()
        self.host = host
        self._requested_port = port
        self._access_log = access_log
        self._startup_timeout = startup_timeout
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    def __repr__(self) -> str:
        where = self.root_url if self.port is not None else "not started"
        return f"{type(self).__name__}({where})"

    @property
    def state(self) -> SandboxState:
        """The sandbox's shared state (faults, stats)."""
        return self.sandbox.state

    @property
    def root_url(self) -> str:
        """``http://host:port`` of the running server (the admin routes live under it)."""
        if self.port is None:
            raise RuntimeError("the sandbox server is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """API base URL as the client expects it: :attr:`root_url` + the sandbox's ``api_path``."""
        return self.root_url + self.sandbox.api_path

    def start(self) -> Self:
        """Bind, start uvicorn in a thread and wait until it serves.

        Returns:
            self, for chaining.

        Raises:
            RuntimeError: Already started, or uvicorn did not come up within ``startup_timeout``.
        """
        if self._thread is not None:
            raise RuntimeError("the sandbox server is already started")
        self._socket = bind_socket(self.host, self._requested_port)
        self.port = self._socket.getsockname()[1]
        self._server = uvicorn.Server(
            uvicorn_config(self.app, access_log=self._access_log, configure_logging=False)
        )
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"{self.sandbox.name}-sandbox",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"the {self.sandbox.name} sandbox did not start within {self._startup_timeout}s"
                )
            time.sleep(0.005)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ask uvicorn to exit, wait for the thread and close the socket; safe to call twice.

        Takes at most about ``2 * timeout`` seconds: a graceful wait, then a forced exit that abandons
        requests still running.

        Args:
            timeout: Seconds to wait for a graceful exit before forcing it.
        """
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def set_faults(self, faults: FaultConfig | None = None, **changes: Any) -> FaultConfig:
        """Replace the faults in force (in-process; other processes use ``PUT /__sandbox/faults``).

        Args:
            faults: New config; None starts from no faults.
            **changes: Fields to set on top, e.g. ``next_429=3, retry_after=1``.

        Returns:
            The config now in force.

        Raises:
            ValueError: If the resulting config is invalid.
        """
        return self.state.set_faults(replace(faults or FaultConfig(), **changes))

    def stats(self) -> dict[str, Any]:
        """Return the API request counters (see ``GET /__sandbox/stats``)."""
        return self.state.stats()

    def reset_stats(self) -> None:
        """Zero the API request counters."""
        self.state.reset_stats()

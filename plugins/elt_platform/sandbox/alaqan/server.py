"""The Alaqan sandbox in a background thread: ``SandboxServer(AlaqanDataset(...))`` as tests, benchmarks
and ``make run`` construct it, on top of the generic :class:`elt_platform.sandbox.server.SandboxServer`.
"""

import os
from typing import Unpack

from elt_platform.sandbox import server
from elt_platform.sandbox.alaqan.app import AlaqanSandbox
from elt_platform.sandbox.alaqan.generator import AlaqanDataset
from elt_platform.sandbox.faults import FaultConfig

API_KEY_ENV = "ALAQAN_SANDBOX_API_KEY"
#: Development-only key, used when neither an argument nor ``ALAQAN_SANDBOX_API_KEY`` gives one.
DEFAULT_API_KEY = "sandbox-key"


def default_api_key() -> str:
    """Return ``$ALAQAN_SANDBOX_API_KEY`` or the development key ``"sandbox-key"``."""
    return os.environ.get(API_KEY_ENV) or DEFAULT_API_KEY


class SandboxServer(server.SandboxServer):
    """The Alaqan sandbox server; ``base_url`` is ``http://127.0.0.1:PORT/api/astanahub/``.

    Example:
        >>> with SandboxServer(AlaqanDataset(seed=1, employees=50)) as server:  # doctest: +SKIP
        ...     client = AlaqanClient(server.base_url, server.api_key)
    """

    sandbox: AlaqanSandbox

    def __init__(
        self,
        dataset: AlaqanDataset | None = None,
        *,
        api_key: str | None = None,
        faults: FaultConfig | None = None,
        **options: Unpack[server.ServerOptions],
    ) -> None:
        """Prepare (not start) a server.

        Args:
            dataset: Data to serve; defaults to ``AlaqanDataset()`` (seed 42, 200 employees).
            api_key: Accepted key; defaults to :func:`default_api_key`.
            faults: Faults in force at start.
            **options: ``host``, ``port``, ``access_log``, ``startup_timeout`` of the generic server.
        """
        self.dataset = dataset if dataset is not None else AlaqanDataset()
        self.api_key = api_key or default_api_key()
        super().__init__(AlaqanSandbox(self.dataset, self.api_key, faults), **options)

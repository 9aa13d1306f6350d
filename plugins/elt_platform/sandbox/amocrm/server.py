"""The amoCRM sandbox in a background thread: :class:`AmoCrmSandboxServer`, as tests, benchmarks and
``make run`` construct it, on the generic :class:`elt_platform.sandbox.server.SandboxServer`.
"""

import os
import time
from collections.abc import Callable
from datetime import datetime
from typing import Unpack

from elt_platform.sandbox import server
from elt_platform.sandbox.amocrm.app import AmoCrmSandbox
from elt_platform.sandbox.amocrm.generator import AmoCrmDataset
from elt_platform.sandbox.amocrm.oauth import ACCESS_TOKEN_TTL, REFRESH_TOKEN_TTL, TokenStore
from elt_platform.sandbox.faults import FaultConfig

TOKEN_ENV = "AMOCRM_SANDBOX_TOKEN"
#: Development-only credentials, used when neither an argument nor ``$AMOCRM_SANDBOX_TOKEN`` gives one.
DEFAULT_LONG_LIVED_TOKEN = "sandbox-amocrm-long-lived-token"
DEFAULT_CLIENT_ID = "sandbox-client-id"
DEFAULT_CLIENT_SECRET = "sandbox-client-secret"


def default_long_lived_token() -> str:
    """Return ``$AMOCRM_SANDBOX_TOKEN`` or the development token."""
    return os.environ.get(TOKEN_ENV) or DEFAULT_LONG_LIVED_TOKEN


class AmoCrmSandboxServer(server.SandboxServer):
    """The amoCRM sandbox server; ``base_url`` is ``http://127.0.0.1:PORT/api/v4/``.

    Example:
        >>> dataset = AmoCrmDataset(seed=1, leads=300)
        >>> with AmoCrmSandboxServer(dataset, long_lived_token="t") as srv:  # doctest: +SKIP
        ...     requests.get(srv.base_url + "leads", headers={"Authorization": "Bearer t"})
    """

    sandbox: AmoCrmSandbox

    def __init__(
        self,
        dataset: AmoCrmDataset | None = None,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        long_lived_token: str | None = None,
        redirect_uri: str | None = None,
        requests_per_second: float = 7.0,
        access_token_ttl: float = ACCESS_TOKEN_TTL,
        refresh_token_ttl: float = REFRESH_TOKEN_TTL,
        token_clock: Callable[[], float] = time.time,
        follow_wall_clock: bool = False,
        faults: FaultConfig | None = None,
        **options: Unpack[server.ServerOptions],
    ) -> None:
        """Prepare (not start) a server.

        Args:
            dataset: Data to serve; defaults to ``AmoCrmDataset()`` (seed 42, 2,000 leads).
            client_id: The integration's id (OAuth).
            client_secret: The integration's secret (OAuth).
            long_lived_token: A bearer accepted without OAuth (private integration); None: OAuth only.
            redirect_uri: If set, token requests must send exactly it; otherwise any non-empty one.
            requests_per_second: Per-integration limit; beyond it requests get 429.
            access_token_ttl: Lifetime of issued access tokens (``expires_in``).
            refresh_token_ttl: Lifetime of unused refresh tokens.
            token_clock: Clock of token expiry (tests pass a fake one to expire tokens).
            follow_wall_clock: Advance the dataset's clock to the current minute before each request.
            faults: Faults in force at start.
            **options: ``host``, ``port``, ``access_log``, ``startup_timeout`` of the generic server.
        """
        self.dataset = dataset if dataset is not None else AmoCrmDataset()
        self.tokens = TokenStore(
            client_id,
            client_secret,
            long_lived_token=long_lived_token,
            redirect_uri=redirect_uri,
            access_token_ttl=access_token_ttl,
            refresh_token_ttl=refresh_token_ttl,
            clock=token_clock,
        )
        self.long_lived_token = long_lived_token
        super().__init__(
            AmoCrmSandbox(
                self.dataset,
                self.tokens,
                requests_per_second=requests_per_second,
                faults=faults,
                follow_wall_clock=follow_wall_clock,
            ),
            **options,
        )

    @property
    def client_id(self) -> str:
        """The integration's ``client_id``."""
        return self.tokens.client_id

    @property
    def oauth_url(self) -> str:
        """``POST`` here to exchange a code or a refresh token."""
        return self.root_url + "/oauth2/access_token"

    def issue_authorization_code(self, redirect_uri: str | None = None) -> str:
        """A single-use authorization code, as the user's consent in the amoCRM UI would give."""
        return self.tokens.issue_code(redirect_uri)

    def ban(self, banned: bool = True) -> None:
        """Block (or unblock) the account: every route answers nginx's HTML 403 page."""
        self.sandbox.banned = banned

    def advance(self, to: datetime | int) -> datetime:
        """Move the dataset's clock forward (see :meth:`AmoCrmDataset.advance`)."""
        return self.dataset.advance(to)

    def writes(self) -> dict[str, int]:
        """Entities written per endpoint (API routes, ``create``, ``admin_edit``) since the server started."""
        return self.dataset.written.writes()

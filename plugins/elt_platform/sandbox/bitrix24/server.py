"""The Bitrix24 sandbox in a background thread: :class:`Bitrix24SandboxServer`, as tests and benchmarks
construct it, with the in-process API for seeding, editing "as a person", reading the final state, the
command log and the Bitrix24-specific faults.
"""

import os
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Unpack

from elt_platform.sandbox import server
from elt_platform.sandbox.bitrix24.app import Bitrix24Sandbox
from elt_platform.sandbox.bitrix24.configuration import PortalConfig
from elt_platform.sandbox.bitrix24.faults import Bitrix24Faults, CommandFailure
from elt_platform.sandbox.bitrix24.methods import Command
from elt_platform.sandbox.bitrix24.portal import PERSON_USER, WEBHOOK_USER, Portal
from elt_platform.sandbox.faults import FaultConfig

TOKEN_ENV = "BITRIX24_SANDBOX_TOKEN"
#: Development-only webhook secret, used when neither an argument nor ``$BITRIX24_SANDBOX_TOKEN`` gives one.
DEFAULT_TOKEN = "sandbox-bitrix24-webhook-token"


def default_token() -> str:
    """Return ``$BITRIX24_SANDBOX_TOKEN`` or the development token."""
    return os.environ.get(TOKEN_ENV) or DEFAULT_TOKEN


class Bitrix24SandboxServer(server.SandboxServer):
    """The Bitrix24 sandbox server; ``base_url`` is the webhook URL ``http://127.0.0.1:PORT/rest/1/<token>/``.

    Example:
        >>> with Bitrix24SandboxServer(token="t") as srv:  # doctest: +SKIP
        ...     hook = WebhookUrl(srv.webhook_url)
        ...     srv.seed_contact(NAME="Айгерим", PHONE=[{"VALUE": "+7 701 123 45 67"}])
    """

    sandbox: Bitrix24Sandbox

    def __init__(
        self,
        portal: Portal | None = None,
        *,
        token: str | None = None,
        user_id: int = WEBHOOK_USER,
        config: PortalConfig | None = None,
        clock: Callable[[], float] = time.time,
        strict_findbycomm: bool = False,
        plan: str = "standard",
        burst: float | None = None,
        drain_per_second: float | None = None,
        rate_limit_clock: Callable[[], float] = time.monotonic,
        faults: FaultConfig | None = None,
        bitrix_faults: Bitrix24Faults | None = None,
        **options: Unpack[server.ServerOptions],
    ) -> None:
        """Prepare (not start) a server.

        Args:
            portal: The CRM to serve; None builds an empty one from ``config``, ``clock``,
                ``strict_findbycomm``.
            token: The webhook secret; None: ``$BITRIX24_SANDBOX_TOKEN`` or the development token.
            user_id: The webhook's user id.
            config: Funnels, statuses, user fields (only when ``portal`` is None).
            clock: The portal's clock (only when ``portal`` is None).
            strict_findbycomm: More than 20 findbycomm values is an error (only when ``portal`` is None).
            plan: ``standard`` (burst 50, 2/s) or ``enterprise`` (250, 5/s).
            burst: Overrides the plan's burst.
            drain_per_second: Overrides the plan's drain rate.
            rate_limit_clock: Monotonic clock of the leaky bucket (tests pass a fake one).
            faults: Shared faults in force at start.
            bitrix_faults: Command-level faults in force at start.
            **options: ``host``, ``port``, ``access_log``, ``startup_timeout`` of the generic server.
        """
        self.portal = portal or Portal(config, clock=clock, strict_findbycomm=strict_findbycomm)
        super().__init__(
            Bitrix24Sandbox(
                self.portal,
                token=token or default_token(),
                user_id=user_id,
                plan=plan,
                burst=burst,
                drain_per_second=drain_per_second,
                rate_limit_clock=rate_limit_clock,
                faults=faults,
                bitrix_faults=bitrix_faults,
            ),
            **options,
        )

    @property
    def webhook_url(self) -> str:
        """The incoming-webhook URL to give the client (it contains the token: do not log it)."""
        return self.root_url + self.sandbox.webhook_path

    @property
    def base_url(self) -> str:
        """Same as :attr:`webhook_url`: the API root the client calls methods under."""
        return self.webhook_url

    # --- data ----------------------------------------------------------------------------------------

    def seed_contact(self, **fields: Any) -> int:
        """Create an existing contact (system fields allowed); returns its id."""
        return self.portal.seed("contact", fields)

    def seed_lead(self, **fields: Any) -> int:
        """Create an existing lead; returns its id."""
        return self.portal.seed("lead", fields)

    def seed_deal(self, **fields: Any) -> int:
        """Create an existing deal (``CATEGORY_ID``, ``STAGE_ID``, ``UF_CRM_*``…); returns its id."""
        return self.portal.seed("deal", fields)

    def edit_deal_as_person(self, deal_id: int, user_id: int = PERSON_USER, **fields: Any) -> dict[str, Any]:
        """Change a deal as a manager would (a manual stage, a field edit): not a sync, not counted."""
        return self.portal.edit_as_person("deal", deal_id, fields, user_id=user_id)

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """The final state: ``{"contacts", "leads", "deals"}`` as ``crm.*.get`` shows each record."""
        return self.portal.snapshot()

    # --- traffic and faults --------------------------------------------------------------------------

    def commands(self, method: str | None = None) -> list[Command]:
        """Executed commands (top-level and inside ``batch``), optionally of one method."""
        return self.sandbox.api.commands(method)

    def command_counts(self) -> dict[str, Any]:
        """``{"commands", "batch_commands", "total"}`` (see :meth:`RestApi.counts`)."""
        return self.sandbox.api.counts()

    def reset_stats(self) -> None:
        """Zero the HTTP counters and the command log."""
        super().reset_stats()
        self.sandbox.api.reset_log()

    def set_bitrix_faults(
        self,
        faults: Bitrix24Faults | None = None,
        *,
        fail_commands: list[CommandFailure] | None = None,
        **changes: Any,
    ) -> Bitrix24Faults:
        """Replace the command-level faults, e.g. ``set_bitrix_faults(batch_errors_as_list=True)`` or
        ``set_bitrix_faults(fail_commands=[CommandFailure(phone="+77011234567")])``.

        Returns:
            The switches now in force.
        """
        base = faults or Bitrix24Faults()
        if fail_commands is not None:
            changes["fail_commands"] = fail_commands
        return self.sandbox.api.set_faults(replace(base, **changes))

"""What the engine needs from a destination: validate its configuration, decide per row, write.

A destination package (``elt_platform.destinations.<crm>``) implements :class:`DestinationAdapter`
over its client; the engine (:mod:`elt_platform.reverse_etl.runs`) owns planning, the outbox, approval
and reports, so no destination re-implements retries, intents or dead letters.
"""

from __future__ import annotations

from typing import Protocol

from elt_platform.reverse_etl.plan import Candidate, Decision, Outcome


class ConfigurationError(ValueError):
    """The destination's configuration does not match the CRM (unknown stage id, missing field…)."""


class DestinationAdapter(Protocol):
    """One CRM account as the sync sees it."""

    #: Decisions executed per engine step: each step is one intent commit, CRM batch(es), one outcome commit.
    chunk_size: int

    def validate(self) -> None:
        """Check the configuration against the CRM (stages, pipelines, fields).

        Raises:
            ConfigurationError: with a one-line message naming the offending setting.
        """

    def resolve(self, candidates: list[Candidate]) -> list[Decision]:
        """Match each candidate in the CRM (read-only calls) and decide its action."""

    def execute(self, decisions: list[Decision]) -> list[Outcome]:
        """Write the decisions (creates/updates) and report each one's outcome (one per decision)."""

    def close(self) -> None:
        """Release connections."""

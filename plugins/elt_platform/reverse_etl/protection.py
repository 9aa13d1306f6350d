"""What a sync may change in a CRM record a person also edits: manual stages and protected fields.

Two rules, the same for every destination:

* **Stages.** The sync sets only automatic stages. A deal standing in a manual stage (plan
  presentation, prepayment received, waiting list) is never moved by the sync, and the sync never
  moves a deal backwards along its funnel (ranked by the stage order of the configuration).
* **Protected fields.** A field configured as protected is written on create; afterwards only while
  the CRM still holds the value we last wrote. A value a person changed stays, and the plan shows the
  field as protected with both values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StageRules:
    """A funnel's stages as the sync sees them.

    Attributes:
        field: the CRM field holding the stage (``STAGE_ID``, ``status_id``).
        order: stage ids in funnel order (final stages last); stages not listed rank as unknown.
        manual: stage ids a person sets; the sync never moves a deal out of them.
    """

    field: str
    order: tuple[Any, ...]
    manual: frozenset[Any] = frozenset()

    def rank(self, stage: Any) -> int | None:
        key = _same(stage)
        for index, known in enumerate(self.order):
            if _same(known) == key:
                return index
        return None


def _same(value: Any) -> str:
    """A comparison key: CRMs answer numbers as strings (Bitrix24) and empty values as ``""``/None."""
    if value is None or value == "" or value == []:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def equal(left: Any, right: Any) -> bool:
    """Whether a CRM value and ours are the same value (``"19999.99"`` == ``19999.99``)."""
    a, b = _same(left), _same(right)
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except ValueError:
        return False


@dataclass
class Changes:
    """The fields to write and what was held back."""

    fields: dict[str, Any]
    diff: dict[str, list[Any]]
    protected: dict[str, list[Any]]


def changes_for_update(
    desired: Mapping[str, Any],
    current: Mapping[str, Any],
    last_written: Mapping[str, Any],
    *,
    protected_fields: frozenset[str],
    stages: StageRules | None,
) -> Changes:
    """The fields an update should write to an existing CRM record.

    Args:
        desired: the values our row maps to (destination field names).
        current: the record's values in the CRM now.
        last_written: the values we wrote last time (empty when the record was found, not created by us).
        protected_fields: fields a person owns once set.
        stages: the funnel's stage rules (None: no stage field).

    Returns:
        Fields that differ and may be written, the diff ``[current, ours]`` of those, and the held-back
        fields ``[current, ours]``.
    """
    fields: dict[str, Any] = {}
    diff: dict[str, list[Any]] = {}
    protected: dict[str, list[Any]] = {}
    for name, ours in desired.items():
        theirs = current.get(name)
        if equal(theirs, ours):
            continue
        if stages is not None and name == stages.field and _stage_is_held(theirs, ours, stages):
            protected[name] = [theirs, ours]
            continue
        if name in protected_fields and not equal(theirs, last_written.get(name)):
            protected[name] = [theirs, ours]
            continue
        fields[name] = ours
        diff[name] = [theirs, ours]
    return Changes(fields, diff, protected)


def _stage_is_held(current: Any, desired: Any, stages: StageRules) -> bool:
    if any(equal(current, manual) for manual in stages.manual):
        return True
    now, wanted = stages.rank(current), stages.rank(desired)
    return now is not None and wanted is not None and wanted < now

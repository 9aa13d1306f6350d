"""The Bitrix24 side of an outbound row: its sync configuration, and the deal/contact fields it maps to.

Pure: no I/O beyond reading the YAML configuration (``schemas/destinations/bitrix24.yaml``, or the file
``ELT_BITRIX24_CONFIG`` names). The sync (:mod:`.sync`) validates the configuration against the portal
before a run and asks this module what to write.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from elt_platform.config import REPO_ROOT
from elt_platform.reverse_etl.names import split_full_name

CONFIG_VARIABLE = "ELT_BITRIX24_CONFIG"
DEFAULT_CONFIG = REPO_ROOT / "schemas" / "destinations" / "bitrix24.yaml"


class MappingConfigError(ValueError):
    """The sync configuration file is malformed (a missing key, a wrong type)."""


@dataclass(frozen=True)
class SyncConfig:
    """How outbound rows map onto one portal (see the YAML file's comments)."""

    category_id: int
    stages: dict[str, str]
    manual_stages: frozenset[str]
    deal_fields: dict[str, str]
    protected_fields: frozenset[str]
    currency: str
    lead_converted_status: str

    @property
    def external_id_field(self) -> str:
        return self.deal_fields["external_id"]


def load_config(path: Path | str | None = None) -> SyncConfig:
    """Read the sync configuration.

    Raises:
        MappingConfigError: the file is missing a key or has a value of the wrong shape.
    """
    path = Path(path or os.environ.get(CONFIG_VARIABLE) or DEFAULT_CONFIG)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        config = SyncConfig(
            category_id=int(raw["category_id"]),
            stages={str(k): str(v) for k, v in raw["stages"].items()},
            manual_stages=frozenset(str(s) for s in raw.get("manual_stages") or ()),
            deal_fields={str(k): str(v) for k, v in raw["deal_fields"].items()},
            protected_fields=frozenset(str(f) for f in raw.get("protected_fields") or ()),
            currency=str(raw.get("currency") or "KZT"),
            lead_converted_status=str(raw.get("lead_converted_status") or "CONVERTED"),
        )
    except (OSError, KeyError, TypeError, ValueError, AttributeError, yaml.YAMLError) as exc:
        raise MappingConfigError(f"Bitrix24 sync configuration {path}: {type(exc).__name__}: {exc}") from None
    if "external_id" not in config.deal_fields:
        raise MappingConfigError(f"Bitrix24 sync configuration {path}: deal_fields.external_id is required")
    return config


def deal_fields(row: dict[str, Any], config: SyncConfig) -> dict[str, Any]:
    """The deal fields an outbound row sets (stage included; no contact link)."""
    fields: dict[str, Any] = {
        field: (row.get(column) if row.get(column) is not None else "")
        for column, field in config.deal_fields.items()
    }
    stage = config.stages.get(row["stage_code"])
    if stage is None:
        raise MappingConfigError(
            f"Bitrix24 sync configuration: no stage for stage_code {row['stage_code']!r}"
        )
    fields["STAGE_ID"] = stage
    return fields


def new_deal_fields(row: dict[str, Any], config: SyncConfig) -> dict[str, Any]:
    """The fields of a deal created for an outbound row."""
    return {
        **deal_fields(row, config),
        "CATEGORY_ID": config.category_id,
        "CURRENCY_ID": config.currency,
    }


def contact_fields(row: dict[str, Any]) -> dict[str, Any]:
    """A new contact for the row's patient: the name split as iDent writes it (last, first, middle; the
    external id when there is no name) and the phone as a mobile multi-field item."""
    name = split_full_name(row.get("patient_full_name"))
    fields: dict[str, Any] = {
        "LAST_NAME": name.last,
        "NAME": name.first or row["external_id"],
        "SECOND_NAME": name.middle,
    }
    if row.get("phone"):
        fields["PHONE"] = [{"VALUE": row["phone"], "VALUE_TYPE": "MOBILE"}]
    return fields

"""The amoCRM side of an outbound row: the sync configuration resolved against the account, and the lead
and contact an outbound row maps to.

Leads are compared as *flat* dicts — ``name``, ``price``, ``status_id``, ``pipeline_id`` and ``cf:<field
id>`` for custom fields — so the platform's protection rules (:mod:`elt_platform.reverse_etl.protection`)
work on them as on any CRM; :func:`lead_payload` turns a flat dict back into amoCRM's write shape.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from elt_platform.config import REPO_ROOT
from elt_platform.reverse_etl.adapter import ConfigurationError
from elt_platform.reverse_etl.names import split_full_name

CONFIG_VARIABLE = "ELT_AMOCRM_SYNC_CONFIG"
DEFAULT_CONFIG = REPO_ROOT / "schemas" / "destinations" / "amocrm.yaml"
#: amoCRM's closed statuses, the same in every pipeline.
WON, LOST = 142, 143


@dataclass(frozen=True)
class SyncConfig:
    """The YAML file, as written (names or ids)."""

    pipelines: dict[str, Any]
    stages: dict[str, Any]
    manual_stages: tuple[Any, ...]
    lead_fields: dict[str, Any]
    responsible_user_id: int | None
    protected_fields: frozenset[str]


def load_config(path: Path | str | None = None) -> SyncConfig:
    """Read the sync configuration.

    Raises:
        ConfigurationError: a missing key or a value of the wrong shape.
    """
    path = Path(path or os.environ.get(CONFIG_VARIABLE) or DEFAULT_CONFIG)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        config = SyncConfig(
            pipelines=dict(raw["pipelines"]),
            stages=dict(raw["stages"]),
            manual_stages=tuple(raw.get("manual_stages") or ()),
            lead_fields=dict(raw["lead_fields"]),
            responsible_user_id=raw.get("responsible_user_id"),
            protected_fields=frozenset(raw.get("protected_fields") or ()),
        )
    except (OSError, KeyError, TypeError, ValueError, AttributeError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"amoCRM sync configuration {path}: {type(exc).__name__}: {exc}") from None
    for required in ("primary", "repeat"):
        if required not in config.pipelines:
            raise ConfigurationError(f"amoCRM sync configuration {path}: pipelines.{required} is required")
    for required in ("reception_id", "branch_name"):
        if required not in config.lead_fields:
            raise ConfigurationError(f"amoCRM sync configuration {path}: lead_fields.{required} is required")
    return config


@dataclass(frozen=True)
class Field:
    """A lead custom field of the account."""

    id: int
    type: str
    enums: dict[str, int]  # value → enum id (select fields)


@dataclass(frozen=True)
class Account:
    """The configuration resolved to the account's ids (built by :func:`resolve`).

    Attributes:
        pipelines: funnel (``primary``/``repeat``) → pipeline id.
        stages: (pipeline id, stage_code) → status id.
        order: pipeline id → its status ids in funnel order (``sort``; won and lost last).
        manual: status ids a person sets.
        fields: outbound column → custom field.
        open_statuses: ``(pipeline id, status id)`` of every open status of both pipelines (searches).
    """

    pipelines: dict[str, int]
    stages: dict[tuple[int, str], int]
    order: dict[int, tuple[int, ...]]
    manual: frozenset[int]
    fields: dict[str, Field]
    open_statuses: tuple[tuple[int, int], ...]
    responsible_user_id: int | None
    protected: frozenset[str]


def _pick(items: list[dict[str, Any]], wanted: Any, what: str) -> dict[str, Any]:
    key = "id" if isinstance(wanted, int) else "name"
    found = [item for item in items if item.get(key) == wanted]
    if len(found) != 1:
        known = sorted(str(item.get("name")) for item in items)
        raise ConfigurationError(f"amoCRM sync configuration: {what} {wanted!r} not found (known: {known})")
    return found[0]


def resolve(
    config: SyncConfig, pipelines: list[dict[str, Any]], lead_fields: list[dict[str, Any]]
) -> Account:
    """Resolve names to the account's ids.

    Raises:
        ConfigurationError: a pipeline, status or field the account does not have.
    """
    ids: dict[str, int] = {}
    stages: dict[tuple[int, str], int] = {}
    order: dict[int, tuple[int, ...]] = {}
    manual: set[int] = set()
    open_statuses: list[tuple[int, int]] = []
    for funnel, wanted in config.pipelines.items():
        pipeline = _pick(pipelines, wanted, f"pipelines.{funnel}")
        pid = int(pipeline["id"])
        ids[funnel] = pid
        statuses = list((pipeline.get("_embedded") or {}).get("statuses") or [])
        ranked = sorted(statuses, key=lambda s: (int(s["id"]) in (WON, LOST), int(s.get("sort") or 0)))
        order[pid] = tuple(int(s["id"]) for s in ranked)
        open_statuses += [(pid, int(s["id"])) for s in ranked if int(s["id"]) not in (WON, LOST)]
        for code, wanted_status in config.stages.items():
            stages[pid, code] = int(_pick(statuses, wanted_status, f"stages.{code} in {funnel}")["id"])
        for wanted_status in config.manual_stages:
            manual.add(int(_pick(statuses, wanted_status, f"manual_stages in {funnel}")["id"]))
    fields = {}
    for column, wanted in config.lead_fields.items():
        field = _pick(lead_fields, wanted, f"lead_fields.{column}")
        enums = {str(e.get("value")): int(e["id"]) for e in field.get("enums") or []}
        fields[column] = Field(int(field["id"]), str(field.get("type")), enums)
    return Account(
        pipelines=ids,
        stages=stages,
        order=order,
        manual=frozenset(manual),
        fields=fields,
        open_statuses=tuple(open_statuses),
        responsible_user_id=config.responsible_user_id,
        protected=frozenset(config.protected_fields),
    )


def _field_value(field: Field, value: Any) -> Any:
    if value is None or value == "":
        return None
    if field.type == "select":
        return field.enums.get(str(value))
    if field.type in ("date_time", "date"):
        return int(datetime.fromisoformat(str(value)).timestamp())
    if field.type == "numeric":
        return float(value)
    return str(value)


def flat_lead(row: dict[str, Any], account: Account, pipeline_id: int) -> dict[str, Any]:
    """The lead an outbound row describes, flat, for the lead's pipeline."""
    flat: dict[str, Any] = {
        "name": row.get("deal_title") or row["external_id"],
        "price": int(round(float(row.get("amount") or 0))),
        "status_id": account.stages[pipeline_id, row["stage_code"]],
    }
    for column, field in account.fields.items():
        value = row.get("plan_start_iso") if column == "reception_date" else row.get(column)
        flat[f"cf:{field.id}"] = _field_value(field, value)
    return flat


def flatten(lead: dict[str, Any]) -> dict[str, Any]:
    """A lead as amoCRM answers it, flat (first value of each custom field; enum id for selects)."""
    flat = {k: lead.get(k) for k in ("name", "price", "status_id", "pipeline_id")}
    for item in lead.get("custom_fields_values") or []:
        values = item.get("values") or [{}]
        first = values[0]
        flat[f"cf:{item['field_id']}"] = first.get("enum_id") if first.get("enum_id") else first.get("value")
    return flat


def lead_payload(flat: dict[str, Any], account: Account) -> dict[str, Any]:
    """amoCRM's write shape of flat lead fields (custom fields as ``custom_fields_values``)."""
    by_id = {f.id: f for f in account.fields.values()}
    payload: dict[str, Any] = {k: v for k, v in flat.items() if not k.startswith("cf:")}
    values: list[dict[str, Any]] = []
    for key, value in flat.items():
        if not key.startswith("cf:"):
            continue
        field = by_id[int(key[3:])]
        if value is None:
            values.append({"field_id": field.id, "values": None})
        elif field.type == "select":
            values.append({"field_id": field.id, "values": [{"enum_id": value}]})
        else:
            values.append({"field_id": field.id, "values": [{"value": value}]})
    if values:
        payload["custom_fields_values"] = values
    return payload


def contact_payload(row: dict[str, Any]) -> dict[str, Any]:
    """A new contact for the row's patient (name split as iDent writes it, the middle name after the first:
    amoCRM has no field for it; the external id when there is no name; mobile phone)."""
    name = split_full_name(row.get("patient_full_name"))
    contact: dict[str, Any] = {
        "first_name": " ".join(part for part in (name.first, name.middle) if part) or row["external_id"],
        "last_name": name.last,
    }
    if row.get("phone"):
        contact["custom_fields_values"] = [
            {"field_code": "PHONE", "values": [{"value": row["phone"], "enum_code": "MOB"}]}
        ]
    return contact

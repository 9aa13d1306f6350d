"""What the clinic models need from the platform settings: branch map, time zones, snapshot tables, masking.

The **manifest** (``schemas/sources/ident.yaml``, :mod:`elt_platform.sources.ident.manifest`) is the one
description of the iDent databases, and the settings come from it:

* ``ident_branches`` — branch number → ``{"database": key, "own_companies": [ids]}``: a reception's
  branch is the branch of its chair's ``OwnCompanies`` row in its database (two branches can share one
  database). gold's external id ``F<branch>_<ID>`` is built from it.
* ``ident_timezones`` — database key → IANA zone of its wall-clock times (ISO 8601 offsets in silver).
* ``ident_snapshot_tables`` — bronze names of the tables read as full snapshots (``load: full``): they
  carry no tombstones, so staging treats a key missing from the latest snapshot as deleted.

Without a manifest file (a checkout that has no iDent source yet), ``ELT_IDENT_BRANCHES`` (JSON, same
shape as ``ident_branches``) and ``ELT_IDENT_TIMEZONES`` (JSON ``{database: zone}``, every database
``Asia/Almaty`` by default) stand in; the defaults (:data:`DEFAULT_BRANCHES`) are the sandbox's five
branches over four databases, branches 1 and 2 sharing database ``1``. The macros in
``dbt/macros/ident_clinic.sql`` hold the same defaults for runs without vars.

Phones of patients are masked per the platform's personal-data setting (:mod:`elt_platform.pii`): the
mode as the var ``pii_masking``, the key as Spark SQL conf only.

:func:`full_rebuild_reason` is the check of the domain's incremental fast path (``Domain.incremental``):
after a micro-batch the reception chain merges its changes, after anything else the domain is rebuilt.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from elt_platform.config import is_time_zone
from elt_platform.pii import pii_masking
from elt_platform.registry import DbtSettings
from elt_platform.sources.ident.manifest import MANIFEST_PATH, bronze_name, load_manifest

BRANCHES_ENV = "ELT_IDENT_BRANCHES"
TIMEZONES_ENV = "ELT_IDENT_TIMEZONES"
BRANCHES_VAR = "ident_branches"
TIMEZONES_VAR = "ident_timezones"
SNAPSHOT_TABLES_VAR = "ident_snapshot_tables"
MASKING_VAR = "pii_masking"
DEFAULT_TIMEZONE = "Asia/Almaty"

Branches = dict[str, dict[str, object]]

DEFAULT_BRANCHES: Branches = {
    "1": {"database": "1", "own_companies": [1]},
    "2": {"database": "1", "own_companies": [2]},
    "3": {"database": "2", "own_companies": [1]},
    "4": {"database": "3", "own_companies": [1]},
    "5": {"database": "4", "own_companies": [1]},
}
DEFAULT_SNAPSHOT_TABLES: tuple[str, ...] = (
    "persons",
    "staffs",
    "items",
    "profession_names",
    "own_companies",
    "armchairs",
    "reception_cancel_reasons",
    "treatment_plan_stages",
    "service_items",
    "service_item_prices",
)

# Database keys are quoted into SQL (the manifest allows positive numbers; the env form a bit more).
_DATABASE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class IdentDbtConfigError(ValueError):
    """``ELT_IDENT_BRANCHES`` / ``ELT_IDENT_TIMEZONES`` are unusable."""


def _json_object(env: Mapping[str, str], name: str) -> dict | None:
    text = (env.get(name) or "").strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IdentDbtConfigError(f"{name} is not JSON: {exc}") from exc
    if not isinstance(value, dict) or not value:
        raise IdentDbtConfigError(f"{name} must be a non-empty JSON object")
    return value


def _positive_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
        return int(value)
    return None


def parse_branches(given: Mapping[object, object], origin: str = BRANCHES_ENV) -> Branches:
    """A branch map checked: positive branch numbers and OwnCompanies ids, plain database keys, and no
    OwnCompanies id of a database in two branches.

    Raises:
        IdentDbtConfigError: anything else.
    """
    branches: Branches = {}
    owner: dict[tuple[str, int], int] = {}
    for raw_number, branch in given.items():
        number = _positive_int(raw_number)
        if number is None:
            raise IdentDbtConfigError(f"{origin}: branch number {raw_number!r} must be a positive integer")
        if not isinstance(branch, Mapping) or set(branch) != {"database", "own_companies"}:
            raise IdentDbtConfigError(
                f'{origin}: branch {number} must be {{"database": <key>, "own_companies": [<ids>]}}, '
                f"got {branch!r}"
            )
        database = str(branch["database"]).strip()
        if not _DATABASE.match(database):
            raise IdentDbtConfigError(
                f"{origin}: branch {number}: database key {database!r} is not a plain key"
            )
        companies = branch["own_companies"]
        ids = [_positive_int(c) for c in companies] if isinstance(companies, list) else [None]
        if not ids or None in ids or any(isinstance(c, str) for c in companies):
            raise IdentDbtConfigError(
                f"{origin}: branch {number}: own_companies must be a non-empty list of positive integers"
            )
        for company in ids:
            assert company is not None  # refused above
            other = owner.setdefault((database, company), number)
            if other != number:
                raise IdentDbtConfigError(
                    f"{origin}: OwnCompanies {company} of database {database!r} "
                    f"is in branches {other} and {number}"
                )
        branches[str(number)] = {"database": database, "own_companies": ids}
    return dict(sorted(branches.items(), key=lambda item: int(item[0])))


def _zone(zone: object, origin: str) -> str:
    if not isinstance(zone, str) or not is_time_zone(zone.strip()):
        raise IdentDbtConfigError(f"{origin}: {zone!r} is not an IANA time zone (e.g. Asia/Almaty)")
    return zone.strip()


def _settings_from_env(env: Mapping[str, str]) -> tuple[Branches, dict[str, str], list[str]]:
    given = _json_object(env, BRANCHES_ENV)
    branches = (
        parse_branches(given) if given is not None else {k: dict(v) for k, v in DEFAULT_BRANCHES.items()}
    )
    zones = {str(b["database"]): DEFAULT_TIMEZONE for b in branches.values()}
    for database, zone in (_json_object(env, TIMEZONES_ENV) or {}).items():
        if not _DATABASE.match(str(database)):
            raise IdentDbtConfigError(f"{TIMEZONES_ENV}: database key {database!r} is not a plain key")
        zones[str(database)] = _zone(zone, f"{TIMEZONES_ENV}.{database}")
    return branches, dict(sorted(zones.items())), list(DEFAULT_SNAPSHOT_TABLES)


def _settings_from_manifest(path: Path) -> tuple[Branches, dict[str, str], list[str]]:
    manifest = load_manifest(path)
    branches = parse_branches(
        {
            n: {"database": b.database, "own_companies": list(b.own_companies)}
            for n, b in manifest.branches.items()
        },
        origin=str(path),
    )
    zones = {key: database.timezone for key, database in sorted(manifest.databases.items())}
    snapshots = [bronze_name(name) for name, table in manifest.tables.items() if table.load == "full"]
    return branches, zones, snapshots


def dbt_settings(env: Mapping[str, str] | None = None, manifest_path: Path | None = None) -> DbtSettings:
    """dbt vars and Spark conf of the clinic domain.

    Args:
        env: environment (default ``os.environ``).
        manifest_path: the iDent manifest (default ``schemas/sources/ident.yaml``); when the file does not
            exist, the environment and defaults stand in.

    Raises:
        elt_platform.sources.ident.manifest.ManifestError: the manifest is invalid.
        IdentDbtConfigError: ``ELT_IDENT_BRANCHES`` / ``ELT_IDENT_TIMEZONES`` are unusable (no manifest).
        elt_platform.pii.MaskingConfigError: unknown masking mode, or no hash key in production.
    """
    env = os.environ if env is None else env
    path = MANIFEST_PATH if manifest_path is None else manifest_path
    if path.is_file():
        branches, zones, snapshots = _settings_from_manifest(path)
        origin = f"manifest {path.name}"
    else:
        branches, zones, snapshots = _settings_from_env(env)
        origin = BRANCHES_ENV if env.get(BRANCHES_ENV, "").strip() else "defaults"
    masking = pii_masking(env)
    return DbtSettings(
        vars={
            BRANCHES_VAR: branches,
            TIMEZONES_VAR: zones,
            SNAPSHOT_TABLES_VAR: snapshots,
            MASKING_VAR: masking.mode,
        },
        spark_conf=masking.spark_conf,
        summary={
            "iDent branches": f"{len(branches)} over {len({b['database'] for b in branches.values()})} "
            f"database(s) ({origin})",
            "iDent time zones": ", ".join(f"{db}={zone}" for db, zone in zones.items()),
            "PII masking": masking.summary,
        },
    )


#: The reception chain's incremental models (silver → gold → outbound) and the column or table property
#: holding each one's high-water mark (dbt/macros/ident_incremental.sql).
INCREMENTAL_TABLES: dict[str, str] = {
    "silver.ident_receptions_latest": "column:loaded_at",
    "silver.ident_receptions": "column:inputs_loaded_at",
    "gold.ident_receptions": "property:elt.ident.inputs_loaded_at",
    "outbound.bitrix24_deals": "property:elt.ident.inputs_loaded_at",
    "outbound.amocrm_deals": "property:elt.ident.inputs_loaded_at",
}
#: The bronze table the micro-batch writes: the only one the fast path follows.
MICRO_BATCH_TABLE = "bronze.ident_receptions"
#: Built by full rebuilds only: its last commit is when the last full rebuild read bronze.
FULL_BUILD_MARKER = "silver.ident_patients"
#: A full rebuild at least this often, even without a daily load (models off the fast path catch up).
FULL_BUILD_MAX_AGE = timedelta(hours=26)


def _committed_at(table) -> datetime | None:
    snapshot = table.current_snapshot()
    return None if snapshot is None else datetime.fromtimestamp(snapshot.timestamp_ms / 1000, UTC)


def full_rebuild_reason(catalog=None, *, now: datetime | None = None) -> str | None:
    """Why the clinic domain's next build must rebuild everything, or None when the reception chain may
    merge the micro-batches' changes (the fast path; ``Domain.incremental`` of the clinic).

    A full rebuild is needed when any incremental table is missing or has no high-water mark (first
    build, a model's columns changed), when a bronze table other than the micro-batch's was committed after
    the last full rebuild (the daily load: reference tables, bills, patients, deletions found by
    reconciliation), or when the last full rebuild is older than :data:`FULL_BUILD_MAX_AGE`.

    Args:
        catalog: the lakehouse catalog (default: the platform's).
        now: the current time (tests).
    """
    from pyiceberg.exceptions import NoSuchTableError

    from elt_platform.iceberg.catalog import load_catalog
    from elt_platform.sources.ident.pipeline import SOURCE

    catalog = catalog or load_catalog()
    try:
        built = _committed_at(catalog.load_table(FULL_BUILD_MARKER))
        tables = {name: catalog.load_table(name) for name in INCREMENTAL_TABLES}
    except NoSuchTableError as exc:
        return f"no full build yet ({exc})"
    if built is None:
        return f"{FULL_BUILD_MARKER} has no snapshot"
    for name, mark in INCREMENTAL_TABLES.items():
        kind, key = mark.split(":", 1)
        table = tables[name]
        has_mark = key in table.properties if kind == "property" else key in table.schema().column_names
        if not has_mark:
            return f"{name} has no high-water mark ({mark})"
    for name in SOURCE.bronze_tables:
        if name == MICRO_BATCH_TABLE:
            continue
        try:
            committed = _committed_at(catalog.load_table(name))
        except NoSuchTableError:
            continue
        if committed is not None and committed > built:
            return f"{name} changed since the last full build ({committed:%Y-%m-%d %H:%M:%S} UTC)"
    age = (now or datetime.now(UTC)) - built
    if age > FULL_BUILD_MAX_AGE:
        return f"the last full build is {age} old"
    return None

"""Reading an outbound table and checking its rows against the destination's contract.

The outbound models (dbt ``models/outbound/``) are small — one row per live deal — so the engine reads
them whole with pyiceberg (no Spark: a reverse-ETL run starts in a second). Each row is validated
against ``schemas/contracts/<crm>/deal.schema.json``; a row breaking it is never sent and is reported
with the reason.
"""

from __future__ import annotations

import functools
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from elt_platform.config import REPO_ROOT

#: A row's validation errors are cut to this many characters in plans and reports.
MAX_REASON_LENGTH = 300


def read_outbound(identifier: str, *, catalog: Any = None) -> list[dict[str, Any]]:
    """Every row of the outbound table ``identifier`` as JSON-ready dicts (dates as ISO text, decimals
    as numbers), ordered by ``external_id``; no table yet → no rows."""
    from pyiceberg.exceptions import NoSuchTableError

    from elt_platform.iceberg.catalog import load_catalog

    catalog = catalog or load_catalog()
    try:
        table = catalog.load_table(identifier)
    except NoSuchTableError:
        return []
    rows = [{k: _plain(v) for k, v in row.items()} for row in table.scan().to_arrow().to_pylist()]
    return sorted(rows, key=lambda r: str(r.get("external_id")))


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


@functools.cache
def _validator(contract: str) -> Any:
    from jsonschema import Draft202012Validator

    schema = json.loads((Path(REPO_ROOT) / contract).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@functools.cache
def _conforms(contract: str) -> Any:
    """The contract compiled to Python by fastjsonschema: ~30x faster than jsonschema per row, which a
    plan of 10,000 changed rows notices (3 s). Only the keywords the contracts use, all of them defined
    alike in drafts 7 and 2020-12; ``format`` stays an annotation, as jsonschema treats it."""
    import fastjsonschema

    schema = json.loads((Path(REPO_ROOT) / contract).read_text(encoding="utf-8"))
    schema.pop("$schema", None)
    return fastjsonschema.compile(schema, use_formats=False)


def contract_errors(row: dict[str, Any], contract: str) -> str | None:
    """Why ``row`` breaks the contract (first errors, one line), or None when it conforms."""
    import fastjsonschema

    try:
        _conforms(contract)(row)
        return None
    except fastjsonschema.JsonSchemaValueException:
        pass  # jsonschema explains it: every error, by path
    errors = sorted(_validator(contract).iter_errors(row), key=lambda e: list(e.path))
    if not errors:
        return None
    text = "; ".join(f"{'/'.join(map(str, e.path)) or 'row'}: {e.message}" for e in errors[:3])
    return text[:MAX_REASON_LENGTH]

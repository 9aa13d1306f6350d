"""The contract check's fast path (fastjsonschema) decides exactly as jsonschema, the reference.

Rows are built from each real contract: a valid row takes, per property, the first value of a pool that
jsonschema accepts for that property alone; 3,000 variants then swap one or two properties for other
pool values, drop a required key or add an unknown one. For every row the fast check must say "valid"
exactly when jsonschema finds no error, and ``contract_errors`` must name jsonschema's errors.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from elt_platform.reverse_etl.feed import _conforms, contract_errors

REPO = Path(__file__).resolve().parents[3]
CONTRACTS = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "schemas" / "contracts").glob("*/*.json"))
POOL = [
    None,
    "",
    "abc",
    "F1_123",
    "F12_7",
    "+77011234567",
    "87011234567",
    "2026-01-12T10:00:00+05:00",
    "2026-01-12",
    "x" * 3001,
    "0123456789abcdef" * 4,
    "0123456789ABCDEF" * 4,
    0,
    -1,
    7,
    3.5,
    True,
    [],
    {},
]


def _pool(subschema: dict) -> list:
    return list(subschema.get("enum", [])) + POOL


def _valid_row(schema: dict) -> dict:
    row = {}
    for name, subschema in schema["properties"].items():
        accepts = Draft202012Validator(subschema).is_valid
        row[name] = next(value for value in _pool(subschema) if accepts(value))
    assert Draft202012Validator(schema).is_valid(row)
    return row


@pytest.mark.parametrize("contract", CONTRACTS)
def test_the_fast_check_agrees_with_jsonschema_on_every_variant(contract: str) -> None:
    schema = json.loads((REPO / contract).read_text(encoding="utf-8"))
    reference = Draft202012Validator(schema)
    fast = _conforms(contract)
    base = _valid_row(schema)
    rng = random.Random(7)
    names = list(schema["properties"])
    outcomes = {True: 0, False: 0}
    for _ in range(3000):
        row = dict(base)
        for name in rng.sample(names, rng.choice((1, 2))):
            row[name] = rng.choice(_pool(schema["properties"][name]))
        if rng.random() < 0.05:
            row.pop(rng.choice(schema["required"]))
        if rng.random() < 0.05:
            row["unknown_column"] = 1
        valid = reference.is_valid(row)
        try:
            fast(row)
            fast_valid = True
        except Exception:  # noqa: BLE001 - fastjsonschema.JsonSchemaValueException
            fast_valid = False
        assert fast_valid == valid, (row, list(reference.iter_errors(row))[:2])
        outcomes[valid] += 1
        message = contract_errors(row, contract)
        assert (message is None) == valid
        if not valid:
            first = sorted(reference.iter_errors(row), key=lambda e: list(e.path))[0]
            assert first.message[:60] in message
    assert min(outcomes.values()) > 300, outcomes  # both answers were exercised

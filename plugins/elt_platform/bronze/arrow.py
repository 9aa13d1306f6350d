"""Records (plain dicts from a parser) to an Arrow table in a bronze declaration's schema.

The one conversion every source uses. It is column-wise — one ``pa.array`` per declared column over
the records, constants as ``pa.repeat`` — because building Arrow row by row, or keeping a chunk of
dicts alive until the write, costs memory and GC time on large loads. Lineage columns are not part of
the result: the writer stamps them (:func:`elt_platform.iceberg.writer.stamp_lineage`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from elt_platform.iceberg.tables import TableSpec


def _json_cell(value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


def _string_column(values: list[Any], type_: pa.DataType) -> pa.Array:
    try:
        return pa.array(values, type=type_)
    except pa.ArrowTypeError:
        # Nested values (1C requisites, contacts…) are kept as JSON text: bronze never fails on shape.
        return pa.array([_json_cell(v) for v in values], type=type_)


def records_to_arrow(
    records: Sequence[Mapping[str, Any]],
    spec: TableSpec,
    constants: Mapping[str, Any] | None = None,
    *,
    keys: Mapping[str, str] | None = None,
) -> pa.Table:
    """Rows in ``spec``'s Arrow schema, lineage columns excluded.

    Args:
        records: One dict per row; a missing key is a null. Lists and dicts in a string column
            become JSON strings.
        spec: The bronze declaration.
        constants: Column → one value for every row (overrides the records' values).
        keys: Column → record key, where the parser names a field differently (``source_line`` ←
            ``sourceline``).

    Returns:
        A table with exactly the declared non-lineage columns, in declaration order.

    Raises:
        ValueError: A constant names a column the table does not have (or a lineage column, which
            only the writer sets).
        pyarrow.ArrowInvalid, pyarrow.ArrowTypeError: A value does not fit its column's type.
    """
    constants = constants or {}
    keys = keys or {}
    schema = spec.arrow_schema(lineage=False)
    unknown = set(constants) - set(schema.names)
    if unknown:
        raise ValueError(f"{spec.identifier}: constants for undeclared or lineage columns {sorted(unknown)}")
    columns = []
    for f in schema:
        if f.name in constants:
            columns.append(pa.repeat(pa.scalar(constants[f.name], f.type), len(records)))
            continue
        key = keys.get(f.name, f.name)
        values = [r.get(key) for r in records]
        if pa.types.is_large_string(f.type) or pa.types.is_string(f.type):
            columns.append(_string_column(values, f.type))
        else:
            columns.append(pa.array(values, type=f.type))
    return pa.Table.from_arrays(columns, schema=schema)


__all__ = ["records_to_arrow"]

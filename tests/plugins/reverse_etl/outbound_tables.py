"""Test helper: publish hand-made rows as an outbound Iceberg table, as dbt's outbound models would."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

#: Integer columns of the outbound contracts; ``amount`` is a number, everything else text.
INTEGERS = ("branch_number", "reception_id", "patient_id", "completed_receptions_before")


def publish_outbound(catalog: Any, identifier: str, rows: list[dict]) -> None:
    """Replace ``identifier`` (``outbound.<crm>_deals``) by ``rows``, creating namespace and table."""
    numbers = {"amount": pa.float64(), **dict.fromkeys(INTEGERS, pa.int64())}
    schema = pa.schema([(name, numbers.get(name, pa.string())) for name in rows[0]])
    data = pa.Table.from_pylist(rows, schema=schema)
    namespace = identifier.split(".", 1)[0]
    if (namespace,) not in catalog.list_namespaces():
        catalog.create_namespace(namespace)
    if catalog.table_exists(identifier):
        catalog.load_table(identifier).overwrite(data)
    else:
        catalog.create_table(identifier, schema=schema).append(data)

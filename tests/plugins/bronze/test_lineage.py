"""Every bronze table declared in ``schemas/bronze`` gets the four lineage columns, filled by the writer."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from elt_platform.bronze.arrow import records_to_arrow
from elt_platform.iceberg.tables import SCHEMAS_DIR, load_spec
from elt_platform.iceberg.writer import CommitInfo, ensure_table, replace_slice

BRONZE_SPECS = sorted(str(p.relative_to(SCHEMAS_DIR)) for p in SCHEMAS_DIR.glob("bronze/*/*.yaml"))
LOADED_AT = datetime(2025, 3, 4, 2, 0, tzinfo=UTC)
# A value for each declared type, enough to fill a table's required columns.
SAMPLE = {"date": date(2025, 3, 3), "string": "k", "long": 1, "int": 1, "boolean": True}


@pytest.mark.parametrize("relative", BRONZE_SPECS)
def test_lineage_columns_are_present_and_filled(catalog, relative):
    spec = load_spec(relative)
    record = {c.name: SAMPLE[c.type] for c in spec.columns if c.required}
    table = ensure_table(catalog, spec)
    commit = CommitInfo(
        "run-1", "test", batch_id="batch-1", source_uri="file:///landing/x.gz", loaded_at=LOADED_AT
    )

    replace_slice(
        table,
        records_to_arrow([record], spec),
        column=spec.replace_column,
        values=[record[spec.slice_column] if spec.slice_column else "batch-1"],
        commit=commit,
    )

    (row,) = (
        table.scan(selected_fields=("_run_id", "_loaded_at", "_batch_id", "_source_uri"))
        .to_arrow()
        .to_pylist()
    )
    assert row == {
        "_run_id": "run-1",
        "_loaded_at": LOADED_AT,
        "_batch_id": "batch-1",
        "_source_uri": "file:///landing/x.gz",
    }
    assert table.schema().column_names[-4:] == ["_run_id", "_loaded_at", "_batch_id", "_source_uri"]

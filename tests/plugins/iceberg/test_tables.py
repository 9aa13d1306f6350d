"""Table declarations under ``schemas/`` → Iceberg schema, partition spec and Arrow schema.

Expected values are read from the YAML with ``yaml.safe_load`` here, or written out literally; the
type vocabulary of the declarations is Iceberg's own, so an Iceberg type prints as the declared name.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from pyiceberg.transforms import IdentityTransform

from elt_platform.iceberg.tables import SCHEMAS_DIR, TableSpecError, load_spec

BRONZE_SPECS = sorted(SCHEMAS_DIR.glob("bronze/*/*.yaml"))
by_spec = pytest.mark.parametrize(
    "path", BRONZE_SPECS, ids=[f"{p.parent.name}/{p.name}" for p in BRONZE_SPECS]
)


def _write(root: Path, text: str, name: str = "bronze/test/things.yaml") -> str:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return name


def test_bronze_specs_are_discovered():
    assert Path(SCHEMAS_DIR, "bronze/alaqan/visits.yaml") in BRONZE_SPECS


@by_spec
def test_bronze_identifier_is_layer_dot_source_underscore_entity(path):
    spec = load_spec(str(path.relative_to(SCHEMAS_DIR)))
    assert spec.identifier == f"bronze.{path.parent.name}_{path.stem}"
    assert spec.namespace == "bronze"


@by_spec
def test_iceberg_schema_follows_declaration_order_names_types_and_required(path):
    declared = yaml.safe_load(path.read_text(encoding="utf-8"))["columns"]
    schema = load_spec(str(path.relative_to(SCHEMAS_DIR))).iceberg_schema()
    actual = [(f.field_id, f.name, str(f.field_type), f.required) for f in schema.fields]
    expected = [
        (n, c["name"], c["type"], bool(c.get("required", False))) for n, c in enumerate(declared, start=1)
    ]
    assert actual == expected


@by_spec
def test_partition_spec_is_identity_on_declared_columns(path):
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec = load_spec(str(path.relative_to(SCHEMAS_DIR)))
    schema = spec.iceberg_schema()
    fields = spec.partition_spec().fields
    assert [schema.find_column_name(f.source_id) for f in fields] == doc["partition_by"]
    assert [f.name for f in fields] == doc["partition_by"]
    assert all(isinstance(f.transform, IdentityTransform) for f in fields)
    assert [f.field_id for f in fields] == list(range(1000, 1000 + len(fields)))


@by_spec
def test_arrow_schema_names_and_nullability_follow_declaration(path):
    declared = yaml.safe_load(path.read_text(encoding="utf-8"))["columns"]
    schema = load_spec(str(path.relative_to(SCHEMAS_DIR))).arrow_schema()
    assert [(f.name, f.nullable) for f in schema] == [
        (c["name"], not c.get("required", False)) for c in declared
    ]


SCALAR_TYPES = {
    "string": pa.large_string(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "int": pa.int32(),
    "long": pa.int64(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
}


@pytest.mark.parametrize(
    ("declared", "arrow_type"),
    [
        *SCALAR_TYPES.items(),
        pytest.param("decimal(12,2)", pa.decimal128(12, 2), id="decimal"),
    ],
)
def test_every_declared_type_maps_to_iceberg_and_arrow(tmp_path, declared, arrow_type):
    name = _write(
        tmp_path,
        f"table: bronze.test_things\ncolumns:\n  - {{name: d, type: date, required: true}}\n"
        f'  - {{name: value, type: "{declared}"}}\npartition_by: [d]\n',
    )
    spec = load_spec(name, root=tmp_path)
    assert str(spec.iceberg_schema().find_field("value").field_type).replace(" ", "") == declared
    assert spec.arrow_schema().field("value").type == arrow_type


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "table: bronze.x\ncolumns:\n  - {name: a, type: varchar}\n",
            "column 'a' has unknown type 'varchar'",
            id="unknown-type",
        ),
        pytest.param(
            "table: bronze.x\ncolumns:\n  - {name: a, type: date}\npartition_by: [day]\n",
            "partition column 'day' is not declared",
            id="undeclared-partition-column",
        ),
        pytest.param("columns:\n  - {name: a, type: date}\n", "missing or malformed key", id="no-table"),
        pytest.param("table: bronze.x\n", "missing or malformed key", id="no-columns"),
        pytest.param("table: bronze.x\ncolumns:\n  - {name: a}\n", "missing or malformed key", id="no-type"),
        pytest.param("table: bronze.x\ncolumns: 5\n", "missing or malformed key", id="columns-not-a-list"),
        pytest.param("", "missing or malformed key", id="empty-file"),
        pytest.param(
            "table: bronze.x\ncolumns:\n  - {name: a, type: 'decimal(10)'}\n",
            "decimal",
            id="decimal-without-scale",
        ),
    ],
)
def test_invalid_declaration_raises_spec_error_naming_file_and_problem(tmp_path, text, message):
    name = _write(tmp_path, text, "bronze/test/bad.yaml")
    with pytest.raises(TableSpecError) as caught:
        load_spec(name, root=tmp_path)
    assert message in str(caught.value)
    assert "bad.yaml" in str(caught.value)

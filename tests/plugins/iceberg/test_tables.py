"""Table declarations under ``schemas/`` → Iceberg schema, partition spec and Arrow schema.

Expected values are read from the YAML with ``yaml.safe_load`` here, or written out literally; the
type vocabulary of the declarations is Iceberg's own, so an Iceberg type prints as the declared name.
Every bronze table ends with the four lineage columns, which no declaration lists.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from pyiceberg.transforms import IdentityTransform

from elt_platform.iceberg.tables import SCHEMAS_DIR, TableSpecError, load_spec

# (name, type) of the lineage columns, literally: the contract dbt sources and silver rely on.
LINEAGE = [
    ("_run_id", "string"),
    ("_loaded_at", "timestamptz"),
    ("_batch_id", "string"),
    ("_source_uri", "string"),
]

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
    columns = [(c["name"], c["type"], bool(c.get("required", False))) for c in declared]
    columns += [(name, type_, False) for name, type_ in LINEAGE]
    assert actual == [(n, *column) for n, column in enumerate(columns, start=1)]


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
    spec = load_spec(str(path.relative_to(SCHEMAS_DIR)))
    business = [(c["name"], not c.get("required", False)) for c in declared]
    assert [(f.name, f.nullable) for f in spec.arrow_schema(lineage=False)] == business
    assert [(f.name, f.nullable) for f in spec.arrow_schema()] == business + [(n, True) for n, _ in LINEAGE]


@by_spec
def test_slice_column_and_natural_key_are_read_and_declared(path):
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec = load_spec(str(path.relative_to(SCHEMAS_DIR)))
    declared = {c["name"] for c in doc["columns"]}
    assert spec.slice_column == doc.get("slice_column")
    if spec.slice_column is not None:  # replaced by a slice of a declared column…
        assert spec.slice_column in doc["partition_by"]  # …so that replacing it is metadata-only
    # …or, without one (iDent: a run replaces its own batch), by the writer's _batch_id lineage column.
    assert spec.natural_key == tuple(doc.get("natural_key", ()))
    assert set(spec.natural_key) <= declared


@by_spec
def test_no_declaration_uses_keys_the_loader_does_not_read(path):
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert set(doc) <= {"table", "description", "columns", "partition_by", "slice_column", "natural_key"}


def test_lineage_columns_are_added_to_bronze_declarations_only(tmp_path):
    text = "table: {layer}.test_things\ncolumns:\n  - {{name: d, type: date}}\n"
    bronze = load_spec(_write(tmp_path, text.format(layer="bronze")), root=tmp_path)
    other = load_spec(_write(tmp_path, text.format(layer="ops"), "ops/test/things.yaml"), root=tmp_path)
    assert [(c.name, c.type) for c in bronze.columns] == [("d", "date"), *LINEAGE]
    assert [c.name for c in other.columns] == ["d"]


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
        pytest.param(
            "table: bronze.x\ncolumns:\n  - {name: a, type: date}\nslice_column: day\n",
            "slice column 'day' is not declared",
            id="undeclared-slice-column",
        ),
        pytest.param(
            "table: bronze.x\ncolumns:\n  - {name: a, type: date}\nnatural_key: [a, b]\n",
            "natural key column 'b' is not declared",
            id="undeclared-natural-key-column",
        ),
        pytest.param(
            "table: bronze.x\ncolumns:\n  - {name: a, type: date}\n  - {name: _run_id, type: string}\n",
            "lineage columns ['_run_id'] are added by the platform",
            id="lineage-column-declared",
        ),
    ],
)
def test_invalid_declaration_raises_spec_error_naming_file_and_problem(tmp_path, text, message):
    name = _write(tmp_path, text, "bronze/test/bad.yaml")
    with pytest.raises(TableSpecError) as caught:
        load_spec(name, root=tmp_path)
    assert message in str(caught.value)
    assert "bad.yaml" in str(caught.value)


def test_silver_suites_check_uniqueness_on_the_bronze_natural_key():
    # The natural key is silver's dedup key; the silver gate of the same table asserts it holds.
    keys = {}
    for path in BRONZE_SPECS:
        spec = load_spec(str(path.relative_to(SCHEMAS_DIR)))
        keys[spec.identifier.replace("bronze.", "silver.", 1)] = list(spec.natural_key)
    checked = 0
    for suite in sorted(SCHEMAS_DIR.glob("quality/silver_*.yaml")):
        doc = yaml.safe_load(suite.read_text(encoding="utf-8"))
        if not keys.get(doc["table"]):
            continue
        unique = [
            e["expect_compound_columns_to_be_unique"]["column_list"]
            for e in doc["expectations"]
            if "expect_compound_columns_to_be_unique" in e
        ]
        assert unique == [keys[doc["table"]]], suite.name
        checked += 1
    assert checked >= 1  # silver.alaqan_visits at least

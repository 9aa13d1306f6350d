"""The bronze declarations of iDent (``schemas/bronze/ident/<table>.yaml``), generated from the manifest.

``write_declarations()`` rewrites the files; a test fails when they and the manifest disagree.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from elt_platform.iceberg.tables import SCHEMAS_DIR
from elt_platform.sources.ident.manifest import BRONZE_TYPES, Manifest, bronze_identifier, bronze_name, snake

DECLARATIONS_DIR = SCHEMAS_DIR / "bronze" / "ident"
HEADER = (
    "# Generated from schemas/sources/ident.yaml by elt_platform.sources.ident.declarations: do not edit.\n"
)


def spec_path(table: str) -> str:
    """The declaration of a source table, relative to ``schemas/`` (for :func:`load_spec`)."""
    return f"bronze/ident/{bronze_name(table)}.yaml"


def declaration(manifest: Manifest, name: str) -> dict:
    """The bronze declaration (YAML document) of one manifest table."""
    table = manifest.tables[name]
    tracking = table.rowversion or ", ".join(table.audit) or "full snapshot"
    columns = [
        {"name": "source_db", "type": "string", "required": True, "doc": "Manifest database key."},
        {"name": "extract_date", "type": "date", "required": True,
         "doc": "The data interval's day (snapshot day for full tables)."},
        {"name": "is_deleted", "type": "boolean", "required": True,
         "doc": "True: a tombstone of a key deleted at the source (found by reconciliation)."},
    ]  # fmt: skip
    columns += [
        {"name": snake(c), "type": BRONZE_TYPES[t], "doc": f"{c} ({t})"} for c, t in table.columns.items()
    ]
    return {
        "table": bronze_identifier(name),
        "description": f"iDent dbo.{name}, {table.load} load ({tracking}); one row per version read.",
        "columns": columns,
        "partition_by": list(table.partition_by),
        "natural_key": ["source_db", *(snake(k) for k in table.key)],
    }


def render(manifest: Manifest, name: str) -> str:
    """The file text of one declaration."""
    return HEADER + yaml.safe_dump(
        declaration(manifest, name), sort_keys=False, allow_unicode=True, width=120
    )


def write_declarations(manifest: Manifest, directory: Path = DECLARATIONS_DIR) -> list[Path]:
    """(Re)write every declaration; remove ones for tables no longer in the manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    wanted = {directory / f"{bronze_name(n)}.yaml": render(manifest, n) for n in manifest.tables}
    for stale in set(directory.glob("*.yaml")) - set(wanted):
        stale.unlink()
    for path, text in wanted.items():
        path.write_text(text, encoding="utf-8")
    return sorted(wanted)

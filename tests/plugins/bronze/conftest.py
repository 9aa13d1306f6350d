"""Throw-away bronze declarations for the load-path tests, written under a temporary ``schemas/`` root."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from elt_platform.iceberg.tables import TableSpec, load_spec


@pytest.fixture
def make_spec(tmp_path: Path) -> Callable[[str, str], TableSpec]:
    """``make_spec(entity, yaml_text)`` → the spec of ``bronze.test_<entity>`` declared by that text."""

    def build(entity: str, text: str) -> TableSpec:
        relative = f"bronze/test/{entity}.yaml"
        path = tmp_path / "schemas" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"table: bronze.test_{entity}\n{text}", encoding="utf-8")
        return load_spec(relative, root=tmp_path / "schemas")

    return build

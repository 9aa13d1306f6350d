"""Great Expectations gate over a table's *slice* (rows whose key column is in a set of values).

:mod:`elt_platform.quality.gate` validates a date interval; loads keyed by something else — a 1C
exchange package (``package_id``) — validate exactly the slices they wrote. A suite is declared in
``schemas/quality/<suite>.yaml`` like the interval suites, with ``slice_column`` instead of
``date_column``; the checkpoint itself is :func:`elt_platform.quality.gate.validate_frame`, the same
as the interval gate's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pyiceberg.expressions import In

from elt_platform.config import PlatformConfig
from elt_platform.iceberg.catalog import load_catalog
from elt_platform.quality.gate import GateResult, load_suite, validate_frame


def run_slice_gate(suite_name: str, values: Iterable[str], *, run_id: str = "manual") -> GateResult:
    """Validate the rows of the suite's table whose ``slice_column`` is one of ``values``.

    Args:
        suite_name: File stem under ``schemas/quality``.
        values: The slice (e.g. the package ids a run loaded).
        run_id: Recorded with the result and used to name the stored result.

    Returns:
        The gate outcome (only when it passed).

    Raises:
        QualityGateError: An expectation failed.
    """
    spec = load_suite(suite_name)
    config = PlatformConfig.from_env()
    keys = sorted(set(values))
    column = spec["slice_column"]
    table = load_catalog(config).load_table(spec["table"])
    if keys:
        # pyiceberg's pydantic predicates: mypy sees the model fields, not the positional __init__.
        frame = table.scan(row_filter=In(column, keys)).to_pandas()  # type: ignore[call-arg, misc, arg-type]
    else:
        frame = table.scan(limit=0).to_pandas()
    return validate_frame(
        suite_name,
        frame,
        table=spec["table"],
        expectations=[
            *spec["expectations"],
            {"expect_column_values_to_be_in_set": {"column": column, "value_set": keys}},
        ],
        scope=f"{len(keys)} {column} value(s)",
        result_name=re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id) + ".json",
        run_id=run_id,
        batch_name="slice",
        config=config,
    )


__all__ = ["run_slice_gate"]

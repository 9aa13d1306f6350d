"""Great Expectations gate over a table's *slice* (rows whose key column is in a set of values).

:mod:`elt_platform.quality.gate` validates a date interval; loads keyed by something else — a 1C
exchange package (``package_id``) — validate exactly the slices they wrote. A suite is declared in
``schemas/quality/<suite>.yaml`` like the interval suites, with ``slice_column`` instead of
``date_column``; the expectations, the file-backed GX context under ``$ELT_HOME/gx`` (Data Docs) and
the failure messages are the same as the interval gate's.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path

from pyiceberg.expressions import In

from elt_platform.config import PlatformConfig
from elt_platform.iceberg.catalog import load_catalog
from elt_platform.quality.gate import (
    GateResult,
    QualityGateError,
    _describe_failure,
    _expectation,
    load_suite,
)

log = logging.getLogger(__name__)


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
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    spec = load_suite(suite_name)
    config = PlatformConfig.from_env()
    keys = sorted(set(values))
    column = spec["slice_column"]
    table = load_catalog(config).load_table(spec["table"])
    frame = table.scan(row_filter=In(column, keys)).to_pandas() if keys else table.scan(limit=0).to_pandas()
    log.info(
        "quality gate %s: %d rows of %s for %d %s value(s)",
        suite_name,
        len(frame),
        spec["table"],
        len(keys),
        column,
    )

    context = gx.get_context(mode="file", project_root_dir=str(config.home / "gx"))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_or_update_pandas(name="lakehouse")
    try:
        asset = source.get_asset(spec["table"])
    except LookupError:
        asset = source.add_dataframe_asset(name=spec["table"])
    try:
        batch = asset.get_batch_definition("slice")
    except (KeyError, LookupError):
        batch = asset.add_batch_definition_whole_dataframe("slice")
    expectations = [
        _expectation(name, dict(kwargs)) for item in spec["expectations"] for name, kwargs in item.items()
    ]
    expectations.append(gx.expectations.ExpectColumnValuesToBeInSet(column=column, value_set=keys))
    suite = context.suites.add_or_update(gx.ExpectationSuite(name=suite_name, expectations=expectations))
    validation = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite_name, data=batch, suite=suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=suite_name,
            validation_definitions=[validation],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")],
            result_format="SUMMARY",
        )
    )
    outcome = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=gx.RunIdentifier(run_name=run_id))

    results = [r for v in outcome.run_results.values() for r in v.results]
    failed = [_describe_failure(r, len(frame)) for r in results if not r.success]
    result_uri = _store(config, suite_name, run_id, outcome.describe_dict())
    docs = context.get_docs_sites_urls()
    gate = GateResult(
        suite=suite_name,
        success=bool(outcome.success),
        rows=len(frame),
        evaluated=len(results),
        failed=failed,
        result_uri=result_uri,
        data_docs=docs[0]["site_url"] if docs else None,
    )
    log.info(
        "quality gate %s: %d/%d passed; result %s",
        suite_name,
        len(results) - len(failed),
        len(results),
        result_uri,
    )
    if not gate.success:
        raise QualityGateError(f"{suite_name} failed for {len(keys)} {column} value(s): " + "; ".join(failed))
    return gate


def _store(config: PlatformConfig, suite: str, run_id: str, result: dict) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id) + ".json"
    body = json.dumps(result, default=str, indent=1)
    if not config.quality_uri.startswith("file://"):
        from pyarrow import fs

        filesystem, root = fs.FileSystem.from_uri(config.quality_uri)
        with filesystem.open_output_stream(f"{root}/{suite}/{name}") as out:
            out.write(body.encode())
        return f"{config.quality_uri}/{suite}/{name}"
    path = Path(config.quality_uri[len("file://") :]) / suite / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path.as_uri()


__all__ = ["run_slice_gate"]

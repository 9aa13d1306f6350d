"""Great Expectations checkpoints that gate a layer for one data interval.

A suite is declared in ``schemas/quality/<suite>.yaml`` (expectation name → arguments). The gate
reads the interval's rows of the table through pyiceberg, runs a GX 1.x checkpoint in a file-backed
context under ``$ELT_HOME/gx`` (so Data Docs accumulate there), writes the full result as JSON to the
quality area and raises :class:`QualityGateError` when any expectation fails, which fails the task
and stops everything downstream. Log lines name the failed expectations and their counts, never the
offending values (they may be personal data); those stay in the stored result.

An expectation declared with ``severity: warning`` (or ``info``; GX's own field, default ``critical``)
does not block: when it fails, the gate still passes, logs it as a warning and lists it in
:attr:`GateResult.warnings` with its count — for conditions that are counted and reported, not refused
(a reception of an unknown branch). GX itself ignores severity when it decides a checkpoint's success, so
the stored result still says ``"success": false``; the gate's decision is :attr:`GateResult.success`.

:func:`validate_frame` is that checkpoint for rows already read; :func:`run_gate` feeds it a date
interval and :func:`elt_platform.quality.slice_gate.run_slice_gate` a set of key values.
"""

from __future__ import annotations

import fcntl
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pyiceberg.expressions import And, GreaterThanOrEqual, LessThan

from elt_platform.config import REPO_ROOT, PlatformConfig
from elt_platform.iceberg.catalog import load_catalog

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

SUITES_DIR = REPO_ROOT / "schemas" / "quality"


class QualityGateError(RuntimeError):
    """At least one expectation failed; the message lists which, with unexpected counts."""


@dataclass(frozen=True)
class GateResult:
    """Outcome of one gate run.

    Attributes:
        failed: blocking (``critical``) expectations that failed, with their unexpected counts.
        warnings: non-blocking (``warning``/``info``) expectations that failed, with their counts.
    """

    suite: str
    success: bool
    rows: int
    evaluated: int
    failed: list[str]
    result_uri: str
    data_docs: str | None
    warnings: list[str] = field(default_factory=list)


def _expectation(name: str, kwargs: dict):
    import great_expectations as gx

    class_name = "".join(part.capitalize() for part in name.split("_"))
    try:
        return getattr(gx.expectations, class_name)(**kwargs)
    except AttributeError as exc:
        raise ValueError(f"unknown expectation {name!r}") from exc


def load_suite(name: str) -> dict:
    """Read ``schemas/quality/<name>.yaml``."""
    return yaml.safe_load((SUITES_DIR / f"{name}.yaml").read_text(encoding="utf-8"))


def run_gate(suite_name: str, start: date, end: date, *, run_id: str = "manual") -> GateResult:
    """Validate the ``[start, end)`` slice of the suite's table.

    Args:
        suite_name: file stem under ``schemas/quality``.
        start: first day of the interval.
        end: day after the last one.
        run_id: recorded with the result.

    Returns:
        The gate outcome (only when it passed).

    Raises:
        QualityGateError: an expectation failed.
    """
    import pandas as pd

    spec = load_suite(suite_name)
    config = PlatformConfig.from_env()
    column = spec["date_column"]
    table = load_catalog(config).load_table(spec["table"])
    # pyiceberg's pydantic predicates: mypy sees the model fields, not the positional __init__.
    row_filter = And(
        GreaterThanOrEqual(column, start.isoformat()),  # type: ignore[call-arg, misc, arg-type]
        LessThan(column, end.isoformat()),  # type: ignore[call-arg, misc, arg-type]
    )
    frame = table.scan(row_filter=row_filter).to_pandas()
    frame[column] = pd.to_datetime(frame[column])
    in_interval = {
        "expect_column_values_to_be_between": {
            "column": column,
            "min_value": datetime.combine(start, time.min),
            "max_value": datetime.combine(end - timedelta(days=1), time.min),
        }
    }
    return validate_frame(
        suite_name,
        frame,
        table=spec["table"],
        expectations=[*spec["expectations"], in_interval],
        scope=f"[{start}, {end})",
        result_name=f"{start}_{end}.json",
        run_id=run_id,
        batch_name="interval",
        config=config,
    )


def validate_frame(
    suite_name: str,
    frame: pd.DataFrame,
    *,
    table: str,
    expectations: list[dict[str, dict]],
    scope: str,
    result_name: str,
    run_id: str = "manual",
    batch_name: str = "slice",
    config: PlatformConfig | None = None,
) -> GateResult:
    """Run a GX checkpoint over rows already read from ``table`` and store the full result.

    The file-backed context under ``$ELT_HOME/gx`` keeps one pandas asset per table; the suite,
    validation definition and checkpoint are named ``suite_name`` and replaced on every run, under a
    lock that serialises gates across processes.

    Args:
        suite_name: names the GX suite and checkpoint, and the results folder.
        frame: the rows to validate.
        table: the table the rows come from (names the GX asset).
        expectations: ``{expectation_name: kwargs}`` items, as a suite file's ``expectations``.
        scope: what the rows are, for log lines and the failure message (``[start, end)``…).
        result_name: file name of the stored result within the suite's results folder.
        run_id: recorded with the result.
        batch_name: name of the asset's whole-dataframe batch definition.
        config: platform settings; read from the environment when omitted.

    Returns:
        The gate outcome (only when it passed).

    Raises:
        QualityGateError: an expectation failed.
    """
    config = config or PlatformConfig.from_env()
    log.info("quality gate %s: %d rows of %s for %s", suite_name, len(frame), table, scope)
    with _context_lock(config.home / "gx"):
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="file", project_root_dir=str(config.home / "gx"))
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        batch = _dataframe_batch(context, table, batch_name)
        suite = context.suites.add_or_update(
            gx.ExpectationSuite(
                name=suite_name,
                expectations=[
                    _expectation(name, dict(kwargs)) for item in expectations for name, kwargs in item.items()
                ],
            )
        )
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
        outcome = checkpoint.run(
            batch_parameters={"dataframe": frame}, run_id=gx.RunIdentifier(run_name=run_id)
        )

        results = [r for v in outcome.run_results.values() for r in v.results]
        unmet = [r for r in results if not r.success]
        failed = [_describe_failure(r, len(frame)) for r in unmet if _blocks(r)]
        warnings = [_describe_failure(r, len(frame)) for r in unmet if not _blocks(r)]
        result_uri = _store_result(config, suite_name, result_name, outcome.describe_dict())
        docs = context.get_docs_sites_urls()

    gate = GateResult(
        suite=suite_name,
        success=not failed,
        rows=len(frame),
        evaluated=len(results),
        failed=failed,
        result_uri=result_uri,
        data_docs=docs[0]["site_url"] if docs else None,
        warnings=warnings,
    )
    for warning in warnings:
        log.warning("quality gate %s: %s for %s (warning, not blocking)", suite_name, warning, scope)
    log.info(
        "quality gate %s: %d/%d expectations passed, %d warning(s); result %s",
        suite_name,
        len(results) - len(unmet),
        len(results),
        len(warnings),
        result_uri,
    )
    if not gate.success:
        raise QualityGateError(
            f"{suite_name} failed for {scope}: " + "; ".join(failed) + f" (details: {result_uri})"
        )
    return gate


def _dataframe_batch(context, table: str, batch_name: str):
    """The table's pandas asset's whole-dataframe batch definition ``batch_name``, made if missing."""
    source = context.data_sources.add_or_update_pandas(name="lakehouse")
    try:
        asset = source.get_asset(table)
    except LookupError:
        asset = source.add_dataframe_asset(name=table)
    try:
        return asset.get_batch_definition(batch_name)
    except (KeyError, LookupError):
        return asset.add_batch_definition_whole_dataframe(batch_name)


@contextmanager
def _context_lock(root: Path) -> Iterator[None]:
    """Serialise use of the file-backed GX context across processes.

    The context rewrites its suite, validation-definition and checkpoint files on every gate; two
    gates at once (a backfill's parallel runs) fail with GX's "has changed since it has last been
    saved". A gate takes about a second, so an exclusive lock costs nothing noticeable.
    """
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".gate.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _blocks(result) -> bool:
    """Whether a failed expectation fails the gate: only ``critical`` ones (GX's default) do."""
    from great_expectations.expectations.metadata_types import FailureSeverity

    return result.expectation_config.severity == FailureSeverity.CRITICAL


def _describe_failure(result, rows: int) -> str:
    kwargs = result.expectation_config.kwargs
    pair = [kwargs[k] for k in ("column_A", "column_B") if k in kwargs]
    target = kwargs.get("column") or kwargs.get("column_list") or ", ".join(pair)
    unexpected = result.result.get("unexpected_count", "?")
    return f"{result.expectation_config.type}({target}): {unexpected} unexpected of {rows}"


def _store_result(config: PlatformConfig, suite: str, name: str, result: Mapping[str, Any]) -> str:
    body = json.dumps(result, default=str, indent=1)
    if not config.quality_uri.startswith("file://"):
        filesystem, root = config.filesystem(config.quality_uri)
        with filesystem.open_output_stream(f"{root}/{suite}/{name}") as out:
            out.write(body.encode())
        return f"{config.quality_uri}/{suite}/{name}"
    path = Path(config.quality_uri[len("file://") :]) / suite / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path.as_uri()

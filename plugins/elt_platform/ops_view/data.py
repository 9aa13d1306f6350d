"""What the platform page shows, gathered through the library: state store, ``ops`` and gold tables.

Every number has one source, named in the dataclass documenting it; the page and its JSON twin only
format these values. Lakehouse reads are pyiceberg scans with row filters (no Spark in the web
server); state reads go through :mod:`elt_platform.state` and :mod:`elt_platform.reverse_etl`.

Personal data never reaches the page unless the platform's PII setting is ``clear``
(:mod:`elt_platform.pii`): errors and breaker reasons are masked, quarantine reasons are reduced to
their code, raw payloads are hidden, and the charts show aggregates only.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from elt_platform.freshness import Freshness, source_freshness
from elt_platform.http.redaction import redact_pii
from elt_platform.pii import masking_mode
from elt_platform.registry import Registry, registry
from elt_platform.state.store import StateStore, utcnow

log = logging.getLogger(__name__)

#: The gold and ops tables the charts read (each is checked against the registry by a test).
ATTENDANCE_TABLE = "gold.alaqan_daily_attendance"
SALES_FUNNEL_TABLE = "gold.amocrm_sales_funnel"
RECEPTION_FUNNEL_TABLE = "gold.ident_reception_funnel"
OPERATIONS_TABLE = "ops.reverse_etl_plans"
#: Days shown when the page is opened without a range.
DEFAULT_DAYS = 30
#: Errors listed per destination.
LAST_ERRORS = 5
#: Rows shown by the rejected-rows view.
ROWS_LIMIT = 100
LAYERS = ("bronze", "silver", "gold", "outbound")
RECEPTION_STATUSES = ("completed", "arrived", "scheduled", "cancelled")
#: Plan outcomes that are CRM operations, then the ones decided without a write.
OPERATION_OUTCOMES = ("sent", "failed", "dead", "review", "skipped")
#: Columns holding a raw record: hidden unless the PII setting is ``clear``.
RAW_COLUMNS = ("raw_json",)


class RangeError(ValueError):
    """A date range that cannot be shown (malformed, inverted, too long)."""


@dataclass(frozen=True)
class DateRange:
    """Inclusive local days the charts cover."""

    start: date
    end: date

    MAX_DAYS = 3660

    @classmethod
    def parse(cls, start: str | None, end: str | None, *, today: date | None = None) -> DateRange:
        """From ``?start=&end=`` (ISO dates); default the :data:`DEFAULT_DAYS` days ending today.

        Raises:
            RangeError: malformed, inverted or longer than ten years.
        """
        today = today or utcnow().date()
        try:
            last = date.fromisoformat(end) if end else today
            first = date.fromisoformat(start) if start else last - timedelta(days=DEFAULT_DAYS - 1)
        except ValueError as exc:
            raise RangeError(f"not an ISO date: {exc}") from None
        if last < first:
            raise RangeError(f"end {last} is before start {first}")
        if (last - first).days > cls.MAX_DAYS:
            raise RangeError("a range of at most ten years")
        return cls(first, last)

    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]


@dataclass(frozen=True)
class RejectedCounts:
    """Rows of one quarantine/rejected table by reason code (``reason`` up to its first ``:``)."""

    table: str
    reasons: dict[str, int] | None  # None: the table does not exist yet

    @property
    def total(self) -> int:
        return sum((self.reasons or {}).values())


@dataclass(frozen=True)
class SourceStatus:
    """One source.

    Attributes:
        freshness: from the transform ledger and the extract schedules (:mod:`elt_platform.freshness`).
        tables: rows per table of the source and its domains, from each table's current Iceberg
            snapshot summary (``total-records``, as ``elt counts``); None: not created yet.
        rejected: ``rejected_tables`` of the registry, scanned for their ``reason`` column.
    """

    name: str
    title: str
    schedules: list[str]
    freshness: Freshness
    tables: dict[str, int | None]
    rejected: list[RejectedCounts]

    def layer_rows(self) -> dict[str, int | None]:
        """Rows per layer (a layer with no existing table: None). Quarantine tables are not counted."""
        totals: dict[str, int | None] = {}
        for table, rows in self.tables.items():
            layer = table.partition(".")[0]
            if table.endswith(("_quarantine", "_rejected")):
                continue
            if rows is not None:
                totals[layer] = (totals.get(layer) or 0) + rows
            else:
                totals.setdefault(layer, None)
        return {layer: totals[layer] for layer in LAYERS if layer in totals}


@dataclass(frozen=True)
class Rate:
    """CRM operations of a window: ``failed`` (failed + dead) of ``executed`` (+ sent), from the
    reverse-ETL plan rows' outcomes (:func:`elt_platform.state.outbox.error_rate`)."""

    failed: int
    executed: int

    @property
    def success(self) -> float | None:
        return None if not self.executed else (self.executed - self.failed) / self.executed


@dataclass(frozen=True)
class ErrorLine:
    external_id: str
    status: str
    error: str
    at: datetime | None


@dataclass(frozen=True)
class DestinationStatus:
    """One reverse-ETL destination.

    Attributes:
        last_run: the newest ``reverse_etl_runs`` row: ``run_id``, ``status``, ``started_at``,
            ``finished_at`` and its report counts (``created``, ``updated``, ``protected``, ``review``,
            ``failed``, ``dead``…).
        hour / day: :class:`Rate` over the last hour and the last 24 hours.
        queues: outbox records now ``failed`` (retry queue), ``dead`` (dead letters), ``review``.
        last_errors: the newest outbox records with an error, masked as ``ops.reverse_etl_state``.
        pending_approvals: Airflow human-in-the-loop requests of its DAG without a response (None:
            the Airflow metadata database was not readable).
    """

    name: str
    title: str
    dag_id: str
    last_run: dict[str, Any] | None
    hour: Rate
    day: Rate
    queues: dict[str, int]
    last_errors: list[ErrorLine]
    pending_approvals: int | None


@dataclass(frozen=True)
class AccountStatus:
    """One external account: its circuit breaker and request budget (state store)."""

    account: str
    breaker: str  # open | closed | - (never tripped)
    reason: str | None
    opened_at: datetime | None
    rate: float | None
    burst: int | None
    tokens: float | None
    last_used: datetime | None

    @property
    def reset_command(self) -> str:
        return f"elt breaker reset {self.account}"


@dataclass(frozen=True)
class Charts:
    """Chart series for the date range (empty lists when a table is missing or has no rows in it).

    Attributes:
        attendance: ``(day, people, hours)`` per local day: rows of ``gold.alaqan_daily_attendance``
            (one per person and day) and the sum of their ``hours_on_site``.
        sales_funnel: ``(pipeline, status, leads)`` in pipeline and status order: ``leads_count`` of
            ``gold.amocrm_sales_funnel`` summed over the cohort months the range touches.
        reception_funnel: ``(branch, {status: receptions})`` from ``gold.ident_reception_funnel``
            summed over the range's days, plus ``receptions``, ``primary`` and ``repeat``.
        operations: ``(UTC day, destination, {outcome: plan rows})`` from ``ops.reverse_etl_plans``.
    """

    attendance: list[tuple[date, int, float]] = field(default_factory=list)
    sales_funnel: list[tuple[str, str, int]] = field(default_factory=list)
    reception_funnel: list[tuple[str, dict[str, int]]] = field(default_factory=list)
    operations: list[tuple[date, str, dict[str, int]]] = field(default_factory=list)


@dataclass(frozen=True)
class PlatformView:
    generated_at: datetime
    range: DateRange
    pii_clear: bool
    sources: list[SourceStatus]
    destinations: list[DestinationStatus]
    accounts: list[AccountStatus]
    charts: Charts


# -- masking ----------------------------------------------------------------------------------------


def _masked(text: str | None, clear: bool) -> str | None:
    if text is None:
        return None
    return text if clear else redact_pii(text)


def reason_code(reason: str | None) -> str:
    """``unknown_event: 'enter'`` → ``unknown_event``: the code carries no record's data."""
    code = (reason or "").partition(":")[0].strip()
    return code or "(none)"


# -- lakehouse --------------------------------------------------------------------------------------


def _number(value: Any) -> float:
    if value is None:
        return 0.0
    return float(value) if isinstance(value, Decimal | int | float) else float(str(value))


def _scan(catalog: Any, table: str, row_filter: Any, fields: tuple[str, ...]) -> list[dict[str, Any]] | None:
    """Rows of ``table`` matching ``row_filter`` (only ``fields``); None if the table does not exist."""
    from pyiceberg.exceptions import NoSuchTableError

    try:
        loaded = catalog.load_table(table)
    except NoSuchTableError:
        return None
    return loaded.scan(row_filter=row_filter, selected_fields=fields).to_arrow().to_pylist()


def _between(column: str, first: Any, last: Any) -> Any:
    from pyiceberg.expressions import And, GreaterThanOrEqual, LessThanOrEqual

    return And(
        GreaterThanOrEqual(column, first),  # type: ignore[call-arg, misc, arg-type]
        LessThanOrEqual(column, last),  # type: ignore[call-arg, misc, arg-type]
    )


def attendance(catalog: Any, days: DateRange) -> list[tuple[date, int, float]]:
    """People on site and their hours per local day (see :class:`Charts`)."""
    rows = _scan(
        catalog,
        ATTENDANCE_TABLE,
        _between("visit_date", days.start.isoformat(), days.end.isoformat()),
        ("visit_date", "hours_on_site"),
    )
    people: Counter[date] = Counter()
    hours: defaultdict[date, float] = defaultdict(float)
    for row in rows or []:
        people[row["visit_date"]] += 1
        hours[row["visit_date"]] += _number(row["hours_on_site"])
    return [(day, people[day], round(hours[day], 2)) for day in sorted(people)]


def sales_funnel(catalog: Any, days: DateRange) -> list[tuple[str, str, int]]:
    """Leads that reached each status, per pipeline (see :class:`Charts`)."""
    rows = _scan(
        catalog,
        SALES_FUNNEL_TABLE,
        _between("year", days.start.year, days.end.year),
        ("year", "month", "pipeline_id", "pipeline_name", "status_id", "status_name", "status_sort",
         "leads_count"),
    )  # fmt: skip
    first, last = (days.start.year, days.start.month), (days.end.year, days.end.month)
    totals: Counter[tuple[str, int, int, str]] = Counter()
    for row in rows or []:
        if first <= (row["year"], row["month"]) <= last:
            pipeline = row["pipeline_name"] or str(row["pipeline_id"])
            status = row["status_name"] or str(row["status_id"])
            totals[(pipeline, int(row["status_sort"] or 0), int(row["status_id"] or 0), status)] += int(
                row["leads_count"] or 0
            )
    return [(pipeline, status, n) for (pipeline, _, _, status), n in sorted(totals.items())]


def reception_funnel(catalog: Any, days: DateRange) -> list[tuple[str, dict[str, int]]]:
    """Receptions per branch by current status, primary and repeat (see :class:`Charts`)."""
    counted = ("receptions", *RECEPTION_STATUSES, "primary_receptions", "repeat_receptions")
    rows = _scan(
        catalog,
        RECEPTION_FUNNEL_TABLE,
        _between("reception_date", days.start.isoformat(), days.end.isoformat()),
        ("source_db", "branch_number", "branch_name", *counted),
    )
    branches: dict[str, Counter[str]] = {}
    for row in rows or []:
        name = row["branch_name"] or f"branch {row['branch_number']}"
        label = f"{name} ({row['source_db']})" if row["source_db"] else name
        totals = branches.setdefault(label, Counter())
        for column in counted:
            totals[column.removesuffix("_receptions")] += int(row[column] or 0)
    return [(label, dict(branches[label])) for label in sorted(branches)]


def operations(catalog: Any, days: DateRange) -> list[tuple[date, str, dict[str, int]]]:
    """Reverse-ETL plan rows per UTC day, destination and outcome (see :class:`Charts`)."""
    first = datetime.combine(days.start, time(), tzinfo=UTC)
    last = datetime.combine(days.end, time.max, tzinfo=UTC)
    rows = _scan(
        catalog,
        OPERATIONS_TABLE,
        _between("updated_at", first.isoformat(), last.isoformat()),
        ("destination", "outcome", "updated_at"),
    )
    counts: dict[tuple[date, str], Counter[str]] = defaultdict(Counter)
    for row in rows or []:
        if row["outcome"]:
            counts[(row["updated_at"].astimezone(UTC).date(), row["destination"])][row["outcome"]] += 1
    return [(day, dest, dict(counts[(day, dest)])) for day, dest in sorted(counts)]


def rejected_counts(catalog: Any, table: str) -> RejectedCounts:
    """Rows of a quarantine/rejected table per reason code (the whole table)."""
    from pyiceberg.expressions import AlwaysTrue

    rows = _scan(catalog, table, AlwaysTrue(), ("reason",))
    if rows is None:
        return RejectedCounts(table, None)
    return RejectedCounts(table, dict(sorted(Counter(reason_code(r["reason"]) for r in rows).items())))


def rejected_rows(
    table: str, *, catalog: Any = None, limit: int = ROWS_LIMIT, reg: Registry | None = None
) -> tuple[list[str], list[list[str]]]:
    """The newest rows of a rejected table for the page, masked.

    Args:
        table: one of the registry's ``rejected_tables`` (anything else is refused).
        catalog: the lakehouse catalog (default: the configured one).
        limit: at most this many rows.

    Returns:
        ``(columns, rows)`` of display strings; raw payload columns are left out and every other
        value masked unless the PII setting is ``clear``.

    Raises:
        KeyError: ``table`` is not a rejected table of any source.
    """
    from pyiceberg.expressions import AlwaysTrue

    from elt_platform.iceberg.catalog import load_catalog

    reg = reg or registry()
    if not any(table in reg.rejected_tables(source) for source in reg.sources):
        raise KeyError(table)
    catalog = catalog or load_catalog()
    clear = masking_mode() == "clear"
    loaded = catalog.load_table(table)
    columns = [f.name for f in loaded.schema().fields if clear or f.name not in RAW_COLUMNS]
    data = loaded.scan(row_filter=AlwaysTrue(), selected_fields=tuple(columns)).to_arrow().to_pylist()
    order = next((c for c in ("loaded_at", "updated_at") if c in columns), None)
    if order:
        data.sort(key=lambda r: str(r[order] or ""), reverse=True)
    cells = [[_masked("" if r[c] is None else str(r[c]), clear) or "" for c in columns] for r in data[:limit]]
    return columns, cells


# -- state store ------------------------------------------------------------------------------------


def destination_statuses(
    store: StateStore,
    *,
    reg: Registry,
    now: datetime,
    approvals: dict[str, int] | None,
) -> list[DestinationStatus]:
    """Every registered destination (see :class:`DestinationStatus`)."""
    from elt_platform.reverse_etl.exports import state_rows
    from elt_platform.reverse_etl.plan import UNSENT
    from elt_platform.state import outbox

    runs = outbox.list_runs(store)
    queues = outbox.queue_sizes(store)
    # Only records that may carry an error: a sent one never does (a page of 100,000 deals masks a few).
    records = state_rows(store, statuses=UNSENT)
    statuses = []
    for dest in reg.destinations.values():
        own = [r for r in runs if r["destination"] == dest.name]
        last_run = None
        if own:
            run = max(own, key=lambda r: r["started_at"])
            summary = json.loads(run["summary"]) if run["summary"] else {}
            last_run = {
                **{k: run[k] for k in ("run_id", "status", "dry_run", "started_at", "finished_at")},
                "counts": {
                    k: v for k, v in summary.items() if isinstance(v, int) and not isinstance(v, bool)
                },
            }
        errors = sorted(
            (
                r
                for r in records
                if r["destination"] == dest.name and r["last_error"] and r["status"] != "sent"
            ),
            key=lambda r: r["updated_at"],
            reverse=True,
        )[:LAST_ERRORS]
        sizes = queues.get(dest.name, {})
        statuses.append(
            DestinationStatus(
                name=dest.name,
                title=dest.title,
                dag_id=dest.dag_id,
                last_run=last_run,
                hour=Rate(*outbox.error_rate(store, dest.name, window=timedelta(hours=1), now=now)),
                day=Rate(*outbox.error_rate(store, dest.name, window=timedelta(days=1), now=now)),
                queues={
                    "retry": sizes.get("failed", 0),
                    "dead": sizes.get("dead", 0),
                    "review": sizes.get("review", 0),
                },  # fmt: skip
                last_errors=[
                    # state_rows masked the errors already, as ops.reverse_etl_state shows them.
                    ErrorLine(r["external_id"], r["status"], r["last_error"], r["updated_at"])
                    for r in errors
                ],
                pending_approvals=None if approvals is None else approvals.get(dest.dag_id, 0),
            )
        )
    return statuses


def account_statuses(store: StateStore, *, clear: bool) -> list[AccountStatus]:
    """Every account with a breaker or a budget, by name."""
    from elt_platform.state import list_breakers, list_budgets

    breakers = {b["account"]: b for b in list_breakers(store)}
    budgets = {b["account"]: b for b in list_budgets(store)}
    accounts = []
    for account in sorted(set(breakers) | set(budgets)):
        breaker, budget = breakers.get(account, {}), budgets.get(account, {})
        accounts.append(
            AccountStatus(
                account=account,
                breaker=breaker.get("state") or "-",
                reason=_masked(breaker.get("reason"), clear) if breaker.get("state") == "open" else None,
                opened_at=breaker.get("opened_at") if breaker.get("state") == "open" else None,
                rate=budget.get("rate"),
                burst=budget.get("burst"),
                tokens=budget.get("tokens"),
                last_used=budget.get("updated_at"),
            )
        )
    return accounts


def airflow_pending_approvals(dag_ids: Iterable[str]) -> dict[str, int] | None:
    """Human-in-the-loop requests without a response per DAG, from Airflow's metadata database.

    Returns:
        DAG id → pending requests; None when the metadata database cannot be read here.
    """
    try:
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import func, select

        query = (
            select(TaskInstance.dag_id, func.count())
            .join(HITLDetail, HITLDetail.ti_id == TaskInstance.id)
            .where(HITLDetail.responded_at.is_(None), TaskInstance.dag_id.in_(list(dag_ids)))
            .group_by(TaskInstance.dag_id)
        )
        with create_session() as session:
            return {str(dag_id): int(n) for dag_id, n in session.execute(query).all()}
    except Exception as exc:  # the page still shows everything else
        log.warning("pending approvals unavailable: %s", exc)
        return None


# -- the whole page ---------------------------------------------------------------------------------


def gather(
    days: DateRange,
    *,
    store: StateStore | None = None,
    catalog: Any = None,
    reg: Registry | None = None,
    counts: Callable[[list[str]], dict[str, int | None]] | None = None,
    approvals: Callable[[Iterable[str]], dict[str, int] | None] = airflow_pending_approvals,
    now: datetime | None = None,
) -> PlatformView:
    """Everything the page shows.

    Args:
        days: the charts' range.
        store / catalog / reg: the state store, lakehouse catalog and registry (default: configured).
        counts: rows per table (default :func:`elt_platform.cli.table_counts`).
        approvals: pending approvals per DAG id (default: Airflow's metadata database).
        now: the reference time of freshness and success rates.
    """
    from elt_platform.iceberg.catalog import load_catalog
    from elt_platform.state import open_state_store

    store = store or open_state_store()
    catalog = catalog or load_catalog()
    reg = reg or registry()
    now = now or utcnow()
    if counts is None:
        from elt_platform.cli import table_counts

        counts = table_counts
    clear = masking_mode() == "clear"
    tables = {name: reg.tables(name) for name in reg.sources}
    rows = counts(list(dict.fromkeys(t for names in tables.values() for t in names)))
    freshness = {f.source: f for f in source_freshness(store, now=now, sources=reg.sources.values())}
    sources = [
        SourceStatus(
            name=source.name,
            title=source.title,
            schedules=[_schedule_text(e.schedule) for e in source.extracts],
            freshness=freshness[source.name],
            tables={t: rows.get(t) for t in tables[source.name]},
            rejected=[rejected_counts(catalog, t) for t in reg.rejected_tables(source.name)],
        )
        for source in reg.sources.values()
    ]
    return PlatformView(
        generated_at=now,
        range=days,
        pii_clear=clear,
        sources=sources,
        destinations=destination_statuses(
            store,
            reg=reg,
            now=now,
            approvals=approvals([d.dag_id for d in reg.destinations.values()]),
        ),
        accounts=account_statuses(store, clear=clear),
        charts=Charts(
            attendance=attendance(catalog, days),
            sales_funnel=sales_funnel(catalog, days),
            reception_funnel=reception_funnel(catalog, days),
            operations=operations(catalog, days),
        ),
    )


def _schedule_text(schedule: str | timedelta) -> str:
    """A cron expression as written; a period as ``every 30 s``."""
    if isinstance(schedule, timedelta):
        return f"every {int(schedule.total_seconds())} s"
    return schedule

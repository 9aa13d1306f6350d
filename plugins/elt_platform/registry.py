"""The source registry: one declaration per source drives every DAG, asset and table list.

Each source package may hold a ``pipeline.py`` that declares what the platform needs to run it:

* ``SOURCE``: a :class:`Source` — how it reaches bronze (one or more :class:`Extract` DAGs), which
  bronze tables it owns, which quality suites gate them, which domains consume it;
* ``DOMAINS`` (optional): the :class:`Domain` s whose silver/gold marts it feeds — a domain is one
  ``transform_<domain>`` DAG and may combine several sources (cross-source marts build once);
* ``DESTINATIONS`` (optional, reverse ETL): :class:`Destination` s, one ``reverse_etl_<name>`` DAG each.

The registry discovers those modules under ``elt_platform/sources/`` (and ``destinations/``), so adding
a source means: its package (with ``pipeline.py``), its ``schemas/bronze/<source>/``, its dbt models —
nothing else. DAG files, assets, the CLI's table lists and the transform ledger all read from here.

Declarations are plain frozen dataclasses naming callables by dotted path (``module:function``):
importing one pulls in nothing but this module, so parsing a DAG file stays cheap.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any, Literal

ExtractKind = Literal["interval", "package"]
RebuildKind = Literal["interval", "state"]

#: Where source packages live; each may declare ``pipeline.py``.
SOURCE_PACKAGES = ("elt_platform.sources", "elt_platform.destinations")


class RegistryError(ValueError):
    """Declarations contradict each other (duplicate DAG ids, a domain naming an unknown source…)."""


@dataclass(frozen=True)
class Extract:
    """One extract DAG of a source.

    Attributes:
        dag_id: ``extract_<source>`` (or ``extract_<source>_<variant>`` when a source has several).
        kind: ``interval`` — each run loads a data interval of days (REST/SQL sources, backfillable);
            ``package`` — each run loads whatever complete file packages are waiting (1C exchange).
        call: ``module:function``. Interval kind: ``f(start, end, *, run_id) -> dict`` loading
            ``[start, end)``. Package kind: ``f(run_id=..., path=...) -> dict`` with ``package_ids``.
        options: extra keyword arguments of ``call`` (e.g. the 1C loader mode), as ``(name, value)`` pairs.
        gate: ``module:function`` for package kinds, ``f(loaded: dict, *, run_id) -> dict``; interval
            kinds run the source's ``bronze_suites`` over the interval instead.
        suites: the bronze suites gating this DAG's loads when they are not all of the source's (a
            micro-batch of one table gates that table only); None: the source's ``bronze_suites``.
        schedule: cron expression (UTC); or, for an interval extract polled more often than cron's one
            minute (a micro-batch), the period between runs as a ``timedelta``: the DAG then runs on a
            trigger timetable, each run loading the day before it as a cron trigger's run does.
        max_active_runs: concurrent runs (package loads apply in order: 1).
        retry_delay: pause before a task retry.
        doc: what the DAG does (``doc_md``), for the Airflow UI.
        tags: extra tags.
        changes_only: each run loads only what changed at the source since the previous run (a
            micro-batch whose slice is the run). A run that wrote no row hands nothing on: no ledger
            slice, its gate skipped, so no asset event wakes the transform for nothing. The call's
            summary then carries ``written`` (bronze table → rows written).
    """

    dag_id: str
    kind: ExtractKind
    call: str
    schedule: str | timedelta
    doc: str
    options: tuple[tuple[str, object], ...] = ()
    gate: str | None = None
    suites: tuple[str, ...] | None = None
    max_active_runs: int = 4
    retry_delay: timedelta = timedelta(minutes=5)
    tags: tuple[str, ...] = ()
    changes_only: bool = False


@dataclass(frozen=True)
class Source:
    """A system the platform extracts into bronze.

    Attributes:
        name: short name: bronze tables are ``bronze.<name>_<entity>``, DAGs ``extract_<name>…``.
        title: human name (summaries, docs).
        owner: team answering for the DAGs.
        start_date: first data interval / first scheduled run.
        extracts: its extract DAGs.
        bronze_tables: every bronze table it writes (``bronze.<name>_…``), for counts and docs.
        trigger_table: the bronze table whose asset event wakes the transforms (emitted by the gate).
        bronze_suites: quality suites (``schemas/quality/<suite>.yaml``) gating an interval's load.
        domains: the domains whose transform consumes this source (one ledger row per domain).
        timezone: IANA zone of the source's local wall-clock values (see STYLE "Time").
        pool: Airflow pool limiting concurrent extract tasks (None: default pool).
        connection: Airflow connection id the extract uses (shown by ``make run``; never its secret).
        endpoint_env: environment variable whose presence means a real endpoint is configured
            (default ``AIRFLOW_CONN_<CONNECTION>``); without it ``make run`` starts the sandbox.
        sandbox: ``module:function`` of a context manager starting the source's sandbox for
            ``make run`` (test doubles only; runtime code never imports it).
    """

    name: str
    title: str
    owner: str
    start_date: datetime
    extracts: tuple[Extract, ...]
    bronze_tables: tuple[str, ...]
    trigger_table: str
    domains: tuple[str, ...]
    bronze_suites: tuple[str, ...] = ()
    timezone: str = "UTC"
    pool: str | None = None
    connection: str | None = None
    endpoint_env: str | None = None
    sandbox: str | None = None

    @property
    def endpoint_variable(self) -> str | None:
        """The variable that points the source at a real system (see ``endpoint_env``)."""
        if self.endpoint_env:
            return self.endpoint_env
        return f"AIRFLOW_CONN_{self.connection.upper()}" if self.connection else None


@dataclass(frozen=True)
class IncrementalPath:
    """The fast path of a ``state`` domain: dbt models that merge the changes since their last build
    (``materialized: incremental``) instead of rebuilding from all of bronze.

    Attributes:
        check: ``module:function`` returning why the next build must be a full rebuild (a sentence:
            bronze tables the fast path does not follow changed, a table is missing…), or None when the
            incremental models may merge. A full rebuild runs dbt with ``--full-refresh``.
        silver / gold: dbt selectors of the models built by each step on the fast path; the other
            models of the domain wait for the next full rebuild.
    """

    check: str
    silver: tuple[str, ...]
    gold: tuple[str, ...]


@dataclass(frozen=True)
class Domain:
    """A business domain: one ``transform_<name>`` DAG building its silver and gold with dbt.

    Attributes:
        name: the dbt folders ``models/intermediate/<name>/`` and ``models/marts/<name>/``.
        sources: sources whose bronze it reads (their staging models are built with it).
        rebuild: ``interval`` — rebuild each pending data interval (merged where they touch);
            ``state`` — silver/gold are the state derived from all of bronze, rebuilt whole.
        silver_tables / gold_tables: tables the transform produces (its outlet assets, CLI counts).
        outbound_tables: reverse-ETL feeds (``outbound.*``, dbt ``models/outbound/``) its gold step
            also builds; they hold the contact data CRMs need in clear, so they are not in ``gold``.
        silver_suites: quality suites gating silver before gold is built.
        owner / start_date: as for sources.
        sweep: cron of the safety-net run that picks up pending work even if an asset event was
            missed (the ledger, not the event, says what to build).
        dbt_settings: ``module:function`` returning :class:`DbtSettings` (vars, Spark SQL conf) the
            domain's models need, e.g. the IIN masking mode; None when the models need none.
        incremental: the fast path of a ``state`` domain (:class:`IncrementalPath`); None: every build
            is a full rebuild.
        doc: ``doc_md`` of the DAG.
    """

    name: str
    sources: tuple[str, ...]
    rebuild: RebuildKind
    silver_tables: tuple[str, ...]
    gold_tables: tuple[str, ...]
    owner: str
    start_date: datetime
    doc: str
    silver_suites: tuple[str, ...] = ()
    outbound_tables: tuple[str, ...] = ()
    sweep: str = "*/30 * * * *"
    dbt_settings: str | None = None
    incremental: IncrementalPath | None = None

    @property
    def dag_id(self) -> str:
        return f"transform_{self.name}"

    def silver_selectors(self) -> list[str]:
        """dbt selectors of the silver step: every silver model upstream of the domain's marts, the
        silver models of its sources that no mart reads (rejected rows), and the sources' tests."""
        return [
            f"+path:models/marts/{self.name},tag:silver",
            *(f"tag:{source},tag:silver" for source in self.sources),
            *(f"source:{source}" for source in self.sources),
        ]

    def gold_selectors(self) -> list[str]:
        """dbt selectors of the gold step: the domain's marts (and outbound feeds, if it has any)."""
        marts = [f"path:models/marts/{self.name}"]
        return [*marts, "path:models/outbound"] if self.outbound_tables else marts


@dataclass(frozen=True)
class ApprovalPolicy:
    """When a reverse-ETL run waits for a person's approval before writing.

    Attributes:
        first_run: the first run against a destination (nothing sent yet) always asks.
        max_creates: more creates than this in one run asks.
        max_touched_share: writes touching more than this share of the destination's rows asks.
    """

    first_run: bool = True
    max_creates: int = 500
    max_touched_share: float = 0.2


@dataclass(frozen=True)
class Destination:
    """A reverse-ETL destination: one ``reverse_etl_<name>`` DAG pushing an outbound table to a CRM.

    Attributes:
        name: short name (``bitrix24``); outbox records and ``ops.reverse_etl_*`` rows carry it.
        title: human name.
        owner / start_date: as for sources.
        outbound_table: the Iceberg table the dbt outbound model builds (``outbound.<name>_deals``).
        domain: the domain whose transform builds it (the DAG waits on that table's asset).
        adapter: ``module:function`` returning the destination's adapter
            (:class:`elt_platform.reverse_etl.adapter.DestinationAdapter`) built from its connection.
        contract: JSON Schema of one outbound row, relative to the repository root.
        connection: Airflow connection id of the CRM account (shown by ``make run``; never its secret).
        endpoint_env: variable whose presence means a real CRM is configured (default
            ``AIRFLOW_CONN_<CONNECTION>``); without it ``make run`` starts the sandbox.
        sandbox: ``module:function`` of a context manager starting the CRM's sandbox (tests/``make run``).
        schedule: cron of the freshness path (the DAG also runs when the outbound table changes).
        max_attempts: failed writes of a row before it is parked as a dead letter.
        approval: when a run waits for a person.
        doc: ``doc_md`` of the DAG.
    """

    name: str
    title: str
    owner: str
    start_date: datetime
    outbound_table: str
    domain: str
    adapter: str
    contract: str
    doc: str
    connection: str | None = None
    endpoint_env: str | None = None
    sandbox: str | None = None
    schedule: str = "*/2 * * * *"
    max_attempts: int = 5
    approval: ApprovalPolicy = ApprovalPolicy()

    @property
    def dag_id(self) -> str:
        return f"reverse_etl_{self.name}"

    @property
    def endpoint_variable(self) -> str | None:
        """The variable that points the destination at a real CRM (see ``endpoint_env``)."""
        if self.endpoint_env:
            return self.endpoint_env
        return f"AIRFLOW_CONN_{self.connection.upper()}" if self.connection else None


@dataclass(frozen=True)
class DbtSettings:
    """What a domain's dbt models need at run time, resolved from platform settings.

    ``vars`` go to ``--vars``; ``spark_conf`` is set on the Spark session before dbt runs and read by
    SQL as ``${key}`` — secrets (hash keys) travel this way so they never appear in compiled SQL.
    ``summary`` is printed in run summaries (no secrets).
    """

    vars: dict[str, object] = field(default_factory=dict)
    spark_conf: dict[str, str] = field(default_factory=dict)
    summary: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Registry:
    """Every declaration, validated."""

    sources: dict[str, Source]
    domains: dict[str, Domain]
    destinations: dict[str, Destination]

    def __post_init__(self) -> None:
        dag_ids: list[str] = [e.dag_id for s in self.sources.values() for e in s.extracts]
        dag_ids += [d.dag_id for d in self.domains.values()]
        dag_ids += [d.dag_id for d in self.destinations.values()]
        duplicates = sorted({d for d in dag_ids if dag_ids.count(d) > 1})
        if duplicates:
            raise RegistryError(f"DAG ids declared twice: {duplicates}")
        for domain in self.domains.values():
            unknown = [s for s in domain.sources if s not in self.sources]
            if unknown:
                raise RegistryError(f"domain {domain.name!r} reads unknown sources {unknown}")
        for destination in self.destinations.values():
            if destination.domain not in self.domains:
                raise RegistryError(
                    f"destination {destination.name!r} is built by undeclared domain {destination.domain!r}"
                )
        for source in self.sources.values():
            unknown = [d for d in source.domains if d not in self.domains]
            if unknown:
                raise RegistryError(f"source {source.name!r} feeds undeclared domains {unknown}")
            for extract in source.extracts:
                stray = sorted(set(extract.suites or ()) - set(source.bronze_suites))
                if stray:
                    raise RegistryError(
                        f"extract {extract.dag_id!r} gates with suites {stray} its source does not declare"
                    )
            outside = [t for t in source.bronze_tables if not t.startswith(f"bronze.{source.name}_")]
            if outside or source.trigger_table not in source.bronze_tables:
                raise RegistryError(
                    f"source {source.name!r}: bronze tables must be bronze.{source.name}_* and include "
                    f"the trigger table {source.trigger_table!r}"
                )

    def extracts(self) -> list[tuple[Source, Extract]]:
        """Every extract DAG with its source, in source order."""
        return [(s, e) for s in self.sources.values() for e in s.extracts]

    def pools(self) -> dict[str, str]:
        """Airflow pools the sources name → their description. Each has one slot: a source's extract
        DAGs share its watermarks, so their tasks must not overlap."""
        return {
            s.pool: f"extract tasks of source {s.name} (one at a time)"
            for s in self.sources.values()
            if s.pool
        }

    def domains_of(self, source: str) -> list[Domain]:
        """The domains consuming ``source``."""
        return [self.domains[d] for d in self.sources[source].domains]

    def tables(self, source: str | None = None) -> list[str]:
        """Bronze, silver and gold tables (of one source and its domains, or of everything)."""
        sources = [self.sources[source]] if source else list(self.sources.values())
        names: list[str] = [t for s in sources for t in s.bronze_tables]
        for domain in self.domains.values():
            if source is None or source in domain.sources:
                names += [*domain.silver_tables, *domain.gold_tables, *domain.outbound_tables]
        return list(dict.fromkeys(names))

    def rejected_tables(self, source: str) -> list[str]:
        """The tables holding records a layer refused for ``source``, bronze first.

        By convention such a table is one of the source's own (``<layer>.<source>_…``) whose name ends
        in ``_quarantine`` or ``_rejected``, with a ``reason`` column reading ``<code>: <detail>``.
        """
        return [
            t
            for t in self.tables(source)
            if t.partition(".")[2].startswith(f"{source}_") and t.endswith(("_quarantine", "_rejected"))
        ]


def call(dotted: str, *args: Any, **kwargs: Any) -> Any:
    """Call a callable declarations name as ``module:function`` (imported only now, on a worker)."""
    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)(*args, **kwargs)


def _declarations(package: str) -> list[ModuleType]:
    try:
        root = importlib.import_module(package)
    except ModuleNotFoundError:
        return []
    modules = []
    for info in sorted(pkgutil.iter_modules(root.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        name = f"{package}.{info.name}.pipeline"
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return modules


def build_registry(modules: Iterable[object]) -> Registry:
    """A registry from declaration modules (anything with ``SOURCE``/``DOMAINS``/``DESTINATIONS``).

    Raises:
        RegistryError: declarations contradict each other.
    """
    sources: dict[str, Source] = {}
    domains: dict[str, Domain] = {}
    destinations: dict[str, Destination] = {}
    for module in modules:
        if (source := getattr(module, "SOURCE", None)) is not None:
            if source.name in sources:
                raise RegistryError(f"source {source.name!r} declared twice")
            sources[source.name] = source
        for domain in getattr(module, "DOMAINS", ()):
            if domain.name in domains:
                raise RegistryError(f"domain {domain.name!r} declared twice")
            domains[domain.name] = domain
        for destination in getattr(module, "DESTINATIONS", ()):
            if destination.name in destinations:
                raise RegistryError(f"destination {destination.name!r} declared twice")
            destinations[destination.name] = destination
    return Registry(sources=sources, domains=domains, destinations=destinations)


@functools.cache
def registry() -> Registry:
    """The platform's registry, discovered from ``sources/*/pipeline.py`` (cached per process)."""
    return build_registry([m for package in SOURCE_PACKAGES for m in _declarations(package)])

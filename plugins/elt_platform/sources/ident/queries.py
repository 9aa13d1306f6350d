"""Every query the iDent extract sends, written once in T-SQL and rendered for the target dialect.

The text is SQL Server's (brackets, ``TOP``, ``ISNULL``, ``CAST(… AS BIGINT)``) and goes to SQL Server as
written (a test parses every query as T-SQL); :func:`render` translates it with sqlglot for another
dialect: ``postgres`` (the sandbox: psqlODBC over PostgreSQL with the same quoted CamelCase names).
Parameters are ODBC ``?`` markers in every dialect (sqlglot would write ``%s`` for postgres; pyodbc needs
``?``). sqlglot (~8 MB) is imported only to translate: a SQL Server extract never loads it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from elt_platform.sources.ident.manifest import Manifest, Table

if TYPE_CHECKING:
    from sqlglot import exp

Dialect = Literal["tsql", "postgres"]


def _q(name: str) -> str:
    return f"[{name}]"


def _select_list(table: Table) -> str:
    # rowversion is binary(8) on SQL Server: read it as the bigint it orders like.
    return ", ".join(
        f"CAST({_q(c)} AS BIGINT) AS {_q(c)}" if t == "rowversion" else _q(c)
        for c, t in table.columns.items()
    )


def _from(manifest: Manifest, name: str) -> str:
    return f"{_q(manifest.schema_)}.{_q(name)}"


@dataclass(frozen=True)
class Query:
    """One statement: its T-SQL and the number of ``?`` parameters it takes."""

    name: str
    tsql: str
    parameters: int = 0

    def render(self, dialect: Dialect) -> str:
        return render(self.tsql, dialect)


def full(manifest: Manifest, name: str) -> Query:
    """Every row of a table (full snapshot)."""
    return Query(f"{name}.full", f"SELECT {_select_list(manifest.tables[name])} FROM {_from(manifest, name)}")


def by_rowversion(manifest: Manifest, name: str) -> Query:
    """Rows changed in ``(low, high]`` of the rowversion (params: low, high)."""
    table = manifest.tables[name]
    rv = _q(table.rowversion or "")
    sql = f"SELECT {_select_list(table)} FROM {_from(manifest, name)} WHERE {rv} > ? AND {rv} <= ?"
    return Query(f"{name}.rowversion", sql, 2)


def high_water(manifest: Manifest, name: str, dialect: Dialect) -> Query:
    """The highest rowversion safe to read up to now.

    SQL Server: ``MIN_ACTIVE_ROWVERSION() - 1`` — rows of transactions still open have a rowversion at or
    above it, so a read bounded by it never skips a row that commits later with a lower value. Postgres
    (the sandbox) has no such function: the highest committed value.
    """
    if dialect == "tsql":
        return Query(
            f"{name}.high_water", "SELECT CAST(MIN_ACTIVE_ROWVERSION() AS BIGINT) - 1 AS [HighWater]"
        )
    rv = _q(manifest.tables[name].rowversion or "")
    return Query(
        f"{name}.high_water", f"SELECT ISNULL(MAX({rv}), 0) AS [HighWater] FROM {_from(manifest, name)}"
    )


def by_audit(manifest: Manifest, name: str) -> Query:
    """Rows whose audit columns fall in ``[low, high)`` (params: low, high per audit column).

    Any audit column in the window selects the row: ``DateTimeChanged`` alone misses rows never changed
    after their insert (it is null then) and is sometimes bulk-touched; ``DateTimeAdded`` covers inserts.
    """
    table = manifest.tables[name]
    window = " OR ".join(f"({_q(c)} >= ? AND {_q(c)} < ?)" for c in table.audit)
    sql = f"SELECT {_select_list(table)} FROM {_from(manifest, name)} WHERE {window}"
    return Query(f"{name}.audit", sql, 2 * len(table.audit))


def keys(manifest: Manifest, name: str) -> Query:
    """Every key of a table (hard-delete reconciliation)."""
    key = ", ".join(_q(k) for k in manifest.tables[name].key)
    return Query(f"{name}.keys", f"SELECT {key} FROM {_from(manifest, name)}")


def probe(manifest: Manifest, name: str) -> Query:
    """No rows, every declared column: fails at once when the source lost a column."""
    sql = f"SELECT TOP 0 {_select_list(manifest.tables[name])} FROM {_from(manifest, name)}"
    return Query(f"{name}.probe", sql)


def all_queries(manifest: Manifest, dialect: Dialect = "tsql") -> list[Query]:
    """Every query the extract can send (for tests and review)."""
    out: list[Query] = []
    for name, table in manifest.tables.items():
        out += [full(manifest, name), keys(manifest, name), probe(manifest, name)]
        if table.rowversion:
            out += [by_rowversion(manifest, name), high_water(manifest, name, dialect)]
        if table.audit:
            out.append(by_audit(manifest, name))
    return out


def _odbc_markers(node: exp.Expression) -> exp.Expression:
    from sqlglot import exp

    return exp.var("?") if isinstance(node, exp.Placeholder) else node


@functools.lru_cache(maxsize=512)
def render(tsql: str, dialect: Dialect) -> str:
    """``tsql`` for ``dialect``: as written for ``tsql``; else identifiers quoted (case kept), ``?`` kept.

    Raises:
        sqlglot.errors.ParseError: the text is not valid T-SQL (another dialect).
    """
    if dialect == "tsql":
        return tsql
    import sqlglot

    tree = sqlglot.parse_one(tsql, read="tsql")
    return tree.transform(_odbc_markers).sql(dialect=dialect, identify=True)


__all__ = [
    "Dialect",
    "Query",
    "all_queries",
    "by_audit",
    "by_rowversion",
    "full",
    "high_water",
    "keys",
    "probe",
    "render",
]

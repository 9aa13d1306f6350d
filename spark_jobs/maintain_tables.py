"""Iceberg table maintenance: expire old snapshots, compact small files, drop orphan files.

Bronze writers commit once per chunk of days and every dbt run commits each model, so snapshot
metadata grows with every load; commits slow down as it grows. This job keeps history for
``--older-than-days`` (rollback window) and at least ``--retain-last`` snapshots, and optionally
rewrites small data files. Uses Iceberg's Spark procedures, so it runs wherever Spark runs.

Usage: ``python -m spark_jobs.maintain_tables [--namespaces bronze silver gold] [--compact]``
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

from spark_jobs.session import CATALOG_NAME, build_session


def maintenance_statements(
    table: str, *, expire_before: datetime, retain_last: int, compact: bool
) -> list[str]:
    """The Spark SQL ``CALL`` statements maintaining one table.

    Args:
        table: ``namespace.table``.
        expire_before: snapshots older than this may be expired.
        retain_last: snapshots always kept, whatever their age.
        compact: also rewrite small data files (binpack).

    Returns:
        Statements in execution order.
    """
    if retain_last < 1:
        raise ValueError("retain_last must keep at least the current snapshot")
    stamp = expire_before.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    statements = []
    if compact:
        statements.append(
            f"CALL {CATALOG_NAME}.system.rewrite_data_files(table => '{table}', "
            "options => map('min-input-files', '5', 'partial-progress.enabled', 'true'))"
        )
    statements.append(
        f"CALL {CATALOG_NAME}.system.expire_snapshots(table => '{table}', "
        f"older_than => TIMESTAMP '{stamp}', retain_last => {retain_last})"
    )
    return statements


def run(namespaces: list[str], *, older_than_days: int, retain_last: int, compact: bool) -> dict[str, int]:
    """Maintain every table of ``namespaces``; returns the number of statements run per table."""
    spark = build_session("maintenance")
    expire_before = datetime.now(UTC) - timedelta(days=older_than_days)
    done: dict[str, int] = {}
    for namespace in namespaces:
        for row in spark.sql(f"SHOW TABLES IN {namespace}").collect():
            table = f"{namespace}.{row['tableName']}"
            statements = maintenance_statements(
                table, expire_before=expire_before, retain_last=retain_last, compact=compact
            )
            for statement in statements:
                spark.sql(statement).collect()
            done[table] = len(statements)
            print(f"maintained {table}: {len(statements)} procedure call(s)")
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", nargs="+", default=["bronze", "silver", "gold"])
    parser.add_argument("--older-than-days", type=int, default=7)
    parser.add_argument("--retain-last", type=int, default=10)
    parser.add_argument("--compact", action="store_true")
    args = parser.parse_args(argv)
    run(
        args.namespaces,
        older_than_days=args.older_than_days,
        retain_last=args.retain_last,
        compact=args.compact,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

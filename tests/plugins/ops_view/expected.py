"""What the platform page must show for :mod:`tests.plugins.ops_view.seed`, computed from its constants
by plain arithmetic (never by the code under test)."""

from __future__ import annotations

from collections import Counter
from datetime import date

from tests.plugins.ops_view import seed

FIRST, LAST = seed.RANGE
OUTCOME = {"ok": "sent", "retry": "failed", "dead": "dead", "review": "review", "skipped": "skipped"}


def attendance() -> dict[date, tuple[int, float]]:
    """Day → (people, hours) in the range."""
    rows = [(d, float(h)) for d, _, h in seed.ATTENDANCE if FIRST <= d <= LAST]
    return {
        d: (sum(1 for x, _ in rows if x == d), round(sum(h for x, h in rows if x == d), 2)) for d, _ in rows
    }


def sales_funnel() -> list[tuple[str, str, int]]:
    rows = [r for r in seed.SALES if (r[0], r[1]) == (2025, 3)]
    return [(p, s, n) for _, _, p, _, s, _, n in sorted(rows, key=lambda r: (r[2], r[5], r[3]))]


def reception_funnel() -> dict[str, dict[str, int]]:
    branches: dict[str, Counter[str]] = {}
    for db, _, name, day, s, a, c, x, p in seed.RECEPTIONS:
        if FIRST <= day <= LAST:
            totals = branches.setdefault(f"{name} ({db})", Counter())
            totals.update(scheduled=s, arrived=a, completed=c, cancelled=x, receptions=s + a + c + x,
                          primary=p, repeat=s + a + c + x - p)  # fmt: skip
    return {label: dict(values) for label, values in branches.items()}


def operations() -> dict[str, int]:
    return dict(Counter(OUTCOME[outcome] for _, outcome, _ in seed.PLAN.values()))


def executed() -> tuple[int, int]:
    """(failed, executed) CRM operations of the run."""
    ops = operations()
    return ops["failed"] + ops["dead"], ops["failed"] + ops["dead"] + ops["sent"]


def reasons(values: list[str]) -> dict[str, int]:
    return dict(Counter(v.split(":")[0] for v in values))


FRESHNESS = {"alaqan": "green", "amocrm": "amber", "onec": "red", "ident": "never"}

"""The outbox records a run's rows without a CRM write in one call, however many, on both dialects.

A run re-planning every row of a large feed whose CRM values already match (a state store restored
from an older backup, a new ``row_hash`` definition) ends with that many ``skip-unchanged`` decisions,
written by one :func:`outbox.record_without_write`. Postgres refuses a statement with more than 65,535
bind parameters: one ``IN (…)`` over every external id would fail the run, and its every retry.
"""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from elt_platform.reverse_etl.plan import REVIEW, SKIP_UNCHANGED, Candidate, Decision
from elt_platform.state import outbox
from elt_platform.state.schema import reverse_etl_plan

pytestmark = [pytest.mark.integration]

#: Over Postgres's limit of 65,535 bind parameters per statement.
ROWS = 66_000


def test_a_run_of_66000_rows_without_writes_is_recorded(store):
    decisions = [
        Decision(Candidate(f"F1_{n}", "changed", {"row_hash": f"h{n}"}, None), SKIP_UNCHANGED, "external-id")
        for n in range(ROWS)
    ]
    outbox.start_run(store, "scale", "r1", dry_run=False)
    outbox.save_plan(store, "scale", "r1", decisions)

    outbox.record_without_write(store, "scale", "r1", decisions[:100], REVIEW)
    outbox.record_without_write(store, "scale", "r1", decisions[100:], "skipped")

    assert outbox.queue_sizes(store, "scale") == {"scale": {"review": 100, "sent": ROWS - 100}}
    with store.transaction(write=False) as conn:
        outcomes = Counter(conn.execute(select(reverse_etl_plan.c.outcome)).scalars())
    assert outcomes == {"review": 100, "skipped": ROWS - 100}

"""The maintenance job's procedure calls (pure part; the Spark run is covered end to end)."""

from datetime import UTC, datetime

import pytest

from spark_jobs.maintain_tables import maintenance_statements

WHEN = datetime(2025, 3, 1, 4, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("compact", "procedures"),
    [(False, ["expire_snapshots"]), (True, ["rewrite_data_files", "expire_snapshots"])],
)
def test_statements_in_order(compact, procedures):
    statements = maintenance_statements(
        "bronze.alaqan_visits", expire_before=WHEN, retain_last=5, compact=compact
    )
    assert [s.split("system.")[1].split("(")[0] for s in statements] == procedures
    assert all("table => 'bronze.alaqan_visits'" in s for s in statements)
    assert "older_than => TIMESTAMP '2025-03-01 04:30:00'" in statements[-1]
    assert "retain_last => 5" in statements[-1]


def test_retain_last_must_keep_current_snapshot():
    with pytest.raises(ValueError, match="at least the current snapshot"):
        maintenance_statements("t.x", expire_before=WHEN, retain_last=0, compact=False)

"""Every table the Alaqan pipeline writes, in order, written out rather than read from the registry.

The CLI tests check the registry's list against it and the end-to-end test counts each table's rows.
"""

ALAQAN_TABLES = (
    "bronze.alaqan_visits",
    "bronze.alaqan_visits_quarantine",
    "silver.alaqan_visits",
    "silver.alaqan_visits_quarantine",
    "silver.alaqan_rejected",
    "gold.alaqan_daily_attendance",
    "gold.alaqan_monthly_summary",
)

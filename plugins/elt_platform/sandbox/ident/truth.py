"""Ground truth of a sandbox database, read with plain SQL (independent of the extract's code).

End-to-end tests compare what reached the lake with these numbers. Status follows the ladder the
migrations of real iDent data use (SOURCE_FACTS §1.3): cancelled, else fulfilled (ended or check issued),
else arrived (appeared or started), else scheduled. A visit's branch is its order's ``ID_OwnCompanies``,
falling back to its chair's; a bill line is worth ``CountService × Price − DiscountSum``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

STATUS_SQL = """
CASE
    WHEN r."ReceptionCanceled" IS NOT NULL OR r."ID_ReceptionCancelReasons" IS NOT NULL THEN 'cancelled'
    WHEN r."ReceptionEnded" IS NOT NULL OR r."CheckIssued" IS NOT NULL THEN 'fulfilled'
    WHEN r."ReceptionStarted" IS NOT NULL OR r."PatientAppeared" IS NOT NULL THEN 'arrived'
    ELSE 'scheduled'
END"""

TABLES = (
    "OwnCompanies", "Armchairs", "Persons", "Staffs", "Items", "ProfessionNames", "Patients", "Receptions",
    "ReceptionCancelReasons", "ServiceItems", "ServiceItemPrices", "TreatmentPlans", "TreatmentPlanStages",
    "TreatmentPlanElements", "TreatmentPlanElementRelations", "Orders", "OrderServiceRelation", "PaymentsIn",
)  # fmt: skip


@dataclass(frozen=True)
class GroundTruth:
    """What one database holds now."""

    database: str
    counts: dict[str, int]  # rows per table
    receptions: dict[int, int]  # ID → RowVersion
    statuses: dict[str, int]  # status → receptions
    visits_by_branch: dict[tuple[int, str], int]  # (OwnCompanies.ID, status) → receptions
    revenue_by_branch: dict[int, Decimal]  # OwnCompanies.ID → billed amount of formed bills
    payments_by_branch: dict[int, Decimal]  # OwnCompanies.ID → sum of PaymentsIn.Payment
    max_row_version: int


def ground_truth(conn: Any) -> GroundTruth:
    """Read the current state of one database through ``conn`` (a DB-API connection: pyodbc or psycopg)."""
    cur = conn.cursor()

    def rows(sql: str) -> list:
        cur.execute(sql)
        return [tuple(row) for row in cur.fetchall()]

    database = rows("SELECT current_database()")[0][0]
    counts = {table: rows(f'SELECT COUNT(*) FROM dbo."{table}"')[0][0] for table in TABLES}
    receptions = dict(rows('SELECT "ID", "RowVersion" FROM dbo."Receptions"'))
    statuses = dict(rows(f'SELECT {STATUS_SQL} AS s, COUNT(*) FROM dbo."Receptions" r GROUP BY s'))
    visits = rows(
        f'SELECT COALESCE(o."ID_OwnCompanies", a."ID_OwnCompanies") AS b, {STATUS_SQL} AS s, COUNT(*)'
        ' FROM dbo."Receptions" r LEFT JOIN dbo."Armchairs" a ON a."ID" = r."ID_Armchairs"'
        ' LEFT JOIN dbo."Orders" o ON o."ID_Receptions" = r."ID" GROUP BY b, s'
    )
    revenue = rows(
        'SELECT COALESCE(o."ID_OwnCompanies", a."ID_OwnCompanies") AS b,'
        ' SUM(l."CountService" * p."Price" - COALESCE(l."DiscountSum", 0))'
        ' FROM dbo."Orders" o JOIN dbo."OrderServiceRelation" l ON l."ID_Orders" = o."ID"'
        ' JOIN dbo."ServiceItemPrices" p ON p."ID" = l."ID_ServicePrices"'
        ' LEFT JOIN dbo."Receptions" r ON r."ID" = o."ID_Receptions"'
        ' LEFT JOIN dbo."Armchairs" a ON a."ID" = r."ID_Armchairs"'
        ' WHERE o."IsBillFormed" GROUP BY b'
    )
    payments = rows('SELECT "ID_OwnCompanies", SUM("Payment") FROM dbo."PaymentsIn" GROUP BY 1')
    return GroundTruth(
        database=database,
        counts=counts,
        receptions=receptions,
        statuses=statuses,
        visits_by_branch={(branch, status): count for branch, status, count in visits},
        revenue_by_branch={branch: Decimal(total) for branch, total in revenue},
        payments_by_branch={branch: Decimal(total) for branch, total in payments},
        max_row_version=max(receptions.values(), default=0),
    )

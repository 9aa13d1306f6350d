"""Registry declaration of the Bitrix24 destination: ``reverse_etl_bitrix24`` (outbound.bitrix24_deals)."""

from datetime import datetime

from elt_platform.registry import Destination

DESTINATIONS = (
    Destination(
        name="bitrix24",
        title="Bitrix24",
        owner="data-platform",
        start_date=datetime(2024, 1, 1),
        outbound_table="outbound.bitrix24_deals",
        domain="clinic",
        adapter="elt_platform.destinations.bitrix24.sync:adapter_from_connection",
        contract="schemas/contracts/bitrix24/deal.schema.json",
        connection="crm_bitrix24",
        sandbox="elt_platform.sandbox.launch:bitrix24",
        doc=(
            "Push the clinic's deals (outbound.bitrix24_deals, one per live iDent reception) to Bitrix24: "
            "match by external id, then phone (contact, then lead — converted), create or update the deal "
            "without moving it out of a manual stage or backwards, nor overwriting a protected field a "
            "person changed. Plan → approve (first run, many creates or updates) → execute → report; "
            "`dry_run` plans only. Config: schemas/destinations/bitrix24.yaml (ELT_BITRIX24_CONFIG)."
        ),
    ),
)

"""Registry declaration of the amoCRM destination: ``reverse_etl_amocrm`` (outbound.amocrm_deals)."""

from datetime import datetime

from elt_platform.registry import Destination

DESTINATIONS = (
    Destination(
        name="amocrm",
        title="amoCRM",
        owner="data-platform",
        start_date=datetime(2024, 1, 1),
        outbound_table="outbound.amocrm_deals",
        domain="clinic",
        adapter="elt_platform.destinations.amocrm.sync:adapter_from_connection",
        contract="schemas/contracts/amocrm/deal.schema.json",
        connection="amocrm_default",
        sandbox="elt_platform.sandbox.launch:amocrm",
        doc=(
            "Push the clinic's receptions (outbound.amocrm_deals) to amoCRM as leads: match by the lead "
            "the outbox knows, then reception id (open stages of both pipelines), patient number (leads "
            "without a reception), phone (contacts); never won/lost leads. Primary pipeline when the "
            "patient has no completed reception, else repeat. Manual stages, backward moves and protected "
            "fields are left alone. Config: schemas/destinations/amocrm.yaml (ELT_AMOCRM_SYNC_CONFIG)."
        ),
    ),
)

"""Constants of the amoCRM destination (reverse ETL): endpoints, batch and page sizes.

The connection, its auth modes, the request rate and the token store are the extract's
(:mod:`elt_platform.sources.amocrm.settings`): one account, one ``amocrm_default`` connection, one
request budget. Secrets never live here.
"""

from elt_platform.sources.amocrm.settings import CONN_ID, PAGE_SIZE

__all__ = ["BATCH_SIZE", "CONN_ID", "ENDPOINTS", "PAGE_SIZE"]

#: Entities per write request. amoCRM accepts 250 on ``POST``/``PATCH /api/v4/leads|contacts`` and 50 on
#: ``leads/complex``; 50 everywhere keeps one request well inside the 60 s read timeout and a 400 (which
#: refuses the whole request) small.
BATCH_SIZE = 50

#: Operation → path under ``/api/v4/``.
ENDPOINTS = {
    "leads": "leads",
    "contacts": "contacts",
    "complex": "leads/complex",
    "pipelines": "leads/pipelines",
    "lead_fields": "leads/custom_fields",
    "contact_fields": "contacts/custom_fields",
    "users": "users",
}

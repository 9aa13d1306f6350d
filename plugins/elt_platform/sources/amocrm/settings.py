"""Constants of the amoCRM (API v4) source: connection id, endpoints, page sizes, politeness defaults.

Values here are defaults; the client takes each of them as a keyword argument and the Airflow
connection's ``extra`` may override the request rate. Secrets never live here: the long-lived token, or
the OAuth client secret, is the password of the ``amocrm_default`` connection, and OAuth token pairs
live in the state store.
"""

CONN_ID = "amocrm_default"
SOURCE = "amocrm"

API_PATH = "/api/v4/"
#: Host of a connection whose host is a bare subdomain (``example`` → ``example.amocrm.ru``).
DEFAULT_DOMAIN = "amocrm.ru"
#: OAuth 2.0 token endpoint, on the account's own host (not under ``/api/v4/``).
TOKEN_PATH = "/oauth2/access_token"

#: Load order (spec §2.4): reference snapshots first, then entities that reference them.
ENTITIES = ("pipelines", "users", "custom_fields", "companies", "contacts", "leads", "tasks", "events")
#: Full snapshots every run (sliced by ``snapshot_date`` = the interval's first day).
SNAPSHOT_ENTITIES = ("pipelines", "users", "custom_fields")
#: Entities whose custom-field definitions are snapshotted (``GET /api/v4/<entity>/custom_fields``).
CUSTOM_FIELD_ENTITIES = ("leads", "contacts", "companies")

#: Entity → path under ``/api/v4/`` (``custom_fields`` is per entity, see :func:`custom_fields_path`).
ENDPOINTS = {
    "pipelines": "leads/pipelines",
    "users": "users",
    "companies": "companies",
    "contacts": "contacts",
    "leads": "leads",
    "tasks": "tasks",
    "events": "events",
}
#: ``with=`` per entity: the ``_embedded`` parts bronze keeps as JSON columns.
WITH = {
    "leads": "contacts,companies",
    "contacts": "leads",
    "companies": "contacts,leads",
}
#: Entity → the timestamp its incremental filter and day slice use (events have no ``updated_at``).
CURSOR_FIELDS = {
    "companies": "updated_at",
    "contacts": "updated_at",
    "leads": "updated_at",
    "tasks": "updated_at",
    "events": "created_at",
}
#: Lists sorted by their cursor (``order[<cursor>]=asc``). The events list documents no ``order``.
ORDERED = ("companies", "contacts", "leads", "tasks")

#: Records per page: 250 is the documented maximum of the entity lists.
PAGE_SIZE = 250
#: ``GET /api/v4/events`` caps ``limit`` at 100 (docs: "системное ограничение 100").
EVENTS_PAGE_SIZE = 100
#: Arrow bytes of one table's staged rows per bronze commit. A long interval (a backfill) is committed in
#: groups of days of at most this size, inside the one transaction, so memory holds one group, never a whole
#: table: 80,000 leads over 16 days peaked at 941 MB RSS in one commit per table; a daily run is one group.
COMMIT_BYTES = 16 * 2**20
#: A page walk longer than this is a pagination bug (a ``next`` link that never ends), not data.
MAX_PAGES = 100_000

#: amoCRM allows 7 requests/s per integration (docs; 50/s per account across integrations).
DEFAULT_REQUESTS_PER_SECOND = 7.0
#: Requests sent back to back: 1 spaces them 1/7 s apart. The server counts 7/s with a bucket of 7 too, and
#: a client bucket as large as the server's leaves no margin: once both are drained, any request that
#: arrives a millisecond earlier than its predecessor's latency would put it is refused with 429 (the
#: end-to-end run saw 41 of 351). Spaced requests keep the server's bucket at 6 spare slots, which absorb
#: any network jitter, at the same sustained 7/s.
DEFAULT_BURST = 1

# Timeouts, retries, backoff and the statuses retried are the HTTP layer's policy for every account
# (elt_platform.http.retry, DEFAULT_TIMEOUT in elt_platform.http.client): a page of 250 leads with embedded
# contacts is ~0.5 MB, well within its read timeout.
#: The token endpoint is retried less: a refresh token the server consumed before the connection broke
#: is gone either way, and a short failure beats a long stall under the token lock.
TOKEN_MAX_RETRIES = 2

#: Connection ``extra.auth`` values; without it, a connection with a ``login`` (client id) is OAuth.
AUTH_LONG_LIVED = "long_lived_token"
AUTH_OAUTH = "oauth2"


def custom_fields_path(entity: str) -> str:
    """The custom-field definitions endpoint of ``entity`` (``leads`` → ``leads/custom_fields``)."""
    return f"{entity}/custom_fields"

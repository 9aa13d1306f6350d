"""Constants for the Alaqan source: connection id, endpoints, politeness and retry defaults.

Values here are defaults; the client takes each of them as a keyword argument and the Airflow
connection's ``extra`` may override the request rate. Secrets never live here: the API key is
the password of the ``alaqan_default`` connection.
"""

CONN_ID = "alaqan_default"

DEFAULT_BASE_URL = "https://api.hub.alaqan.kz/api/astanahub/"
# Used when a connection's host carries no path (e.g. just ``api.hub.alaqan.kz``).
DEFAULT_API_PATH = "/api/astanahub/"
API_KEY_HEADER = "X-Api-Key"

BY_DATE_PATH = "employees/byDate"
BY_IIN_PATH = "employees/byIin"

# Rate limits are undocumented (spec §1.7 question 5): stay polite by default.
DEFAULT_REQUESTS_PER_SECOND = 5.0
DEFAULT_BURST = 1

CONNECT_TIMEOUT_SECONDS = 10.0
# A byDate body for a busy day is a few hundred KB; a minute covers a slow backend without hanging a task.
READ_TIMEOUT_SECONDS = 60.0

DEFAULT_MAX_RETRIES = 6
DEFAULT_BACKOFF_BASE_SECONDS = 1.0
DEFAULT_BACKOFF_MAX_SECONDS = 60.0
# A Retry-After beyond this is capped: a task slot should not sleep for hours on one header.
MAX_RETRY_AFTER_SECONDS = 300.0

# What the shared HTTP layer retries (401/403 never are: a wrong key does not heal by waiting).
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

EVENTS = ("entry", "exit")

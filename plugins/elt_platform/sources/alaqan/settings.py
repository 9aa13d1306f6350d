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

# Timeouts, retries, backoff and the statuses retried are the HTTP layer's policy for every account
# (elt_platform.http.retry, DEFAULT_TIMEOUT in elt_platform.http.client): a byDate body for a busy day is a
# few hundred KB, well within its read timeout; 401/403 are never retried (a wrong key does not heal).

EVENTS = ("entry", "exit")

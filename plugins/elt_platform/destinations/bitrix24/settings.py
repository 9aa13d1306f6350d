"""Constants of the Bitrix24 destination: connection id, batch and page sizes, the portal's request limits.

Values here are defaults; the client takes the tunable ones as keyword arguments and the Airflow
connection's ``extra`` may override the request rate (``requests_per_second``, ``burst``). Secrets never
live here: the incoming-webhook URL is the ``crm_bitrix24`` connection (see ``README.md``).
"""

CONN_ID = "crm_bitrix24"
#: Prefix of the account key (``bitrix24:<portal host>``) that keys the shared request budget and breaker.
ACCOUNT_PREFIX = "bitrix24"

#: ``batch`` runs at most 50 commands per call (docs: "в один пакет входит не более 50 подзапросов"); the
#: commands beyond it fail with ``ERROR_BATCH_LENGTH_EXCEEDED``.
BATCH_SIZE = 50
#: Old-style ``crm.*.list`` methods return 50 records per page, fixed (``start`` = 0, 50, 100, …).
PAGE_SIZE = 50
#: ``crm.duplicate.findbycomm`` accepts at most 20 values per call. The client sends one value per command
#: (ids of several values come back merged, see ``README.md``), so this is also the size at which one
#: entity type's answer may be cut short: the method stops after 20 duplicates of one type.
FINDBYCOMM_MAX_VALUES = 20
#: A page walk longer than this is a pagination bug (a ``next`` that never ends), not data.
MAX_PAGES = 100_000

#: The portal's leaky bucket (docs ``limits.md``): blocked after X requests, the counter drains Y per second.
#: Every plan but Enterprise: X = 50, Y = 2. Exceeding it answers 503 ``QUERY_LIMIT_EXCEEDED``, which the HTTP
#: layer retries with backoff; the budget keeps a well-behaved client from getting there.
PORTAL_BURST = 50
DEFAULT_REQUESTS_PER_SECOND = 2.0
#: Calls the client's bucket keeps below the portal's. A client bucket as large as the portal's leaves no
#: margin: the portal's bucket fills from the moment each request *arrives*, a little after the client's
#: budget let it go, so once both are drained the request the client sends at the very instant its budget
#: allows finds the portal's bucket a hair short (the reverse-ETL benchmark saw one 503 each time the
#: client first drained its bucket). Two spare calls absorb a second of delay between the two, at the same
#: sustained 2 requests/s. The amoCRM extract keeps the same margin (its burst 1 below the server's 7).
BURST_MARGIN = 2
#: The client's default burst (``extra.burst`` overrides it; give the portal's bucket minus the margin).
DEFAULT_BURST = PORTAL_BURST - BURST_MARGIN
#: Enterprise plans: X = 250, Y = 5: set ``extra.burst`` to :data:`ENTERPRISE_BURST` (the margin below the
#: portal's 250) and ``extra.requests_per_second`` to 5.
ENTERPRISE_PORTAL_BURST = 250
ENTERPRISE_BURST = ENTERPRISE_PORTAL_BURST - BURST_MARGIN
ENTERPRISE_REQUESTS_PER_SECOND = 5.0

#: A method whose execution time passed 480 s in 10 minutes is blocked for 10 minutes (429
#: ``OPERATION_TIME_LIMIT``; other methods keep working). Without a ``Retry-After`` header the client waits
#: this long before its one retry of the method, then gives up.
OPERATION_LIMIT_PAUSE_SECONDS = 600.0
OPERATION_LIMIT_RETRIES = 1

#: Deal and lead dictionaries in ``crm.status.list``: ``DEAL_STAGE`` is the default pipeline (category 0),
#: ``DEAL_STAGE_<id>`` the others; ``STATUS`` holds the lead statuses.
DEAL_STAGE_ENTITY = "DEAL_STAGE"
LEAD_STATUS_ENTITY = "STATUS"
#: ``crm.category.list`` entity type of deals (the "smart" CRM numbering: 1 lead, 2 deal, 3 contact).
DEAL_ENTITY_TYPE_ID = 2
#: Entity types ``crm.duplicate.findbycomm`` searches by default (companies are not matched by phone).
DEFAULT_MATCH_ENTITY_TYPES = ("CONTACT", "LEAD")

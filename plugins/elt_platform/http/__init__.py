"""The shared HTTP layer: one client, one error taxonomy, pluggable auth, budgets and breakers.

Every call to an external API goes through :class:`elt_platform.http.client.HttpClient`; sources add their
endpoints, pagination and quirks on top of it. Modules: ``client`` (I/O and retries), ``retry`` (what is
retried and how long to wait), ``auth``, ``limits`` (in-memory request budget and circuit breaker),
``errors``, ``decoding`` (JSON bodies) and ``redaction`` (secrets and PII out of messages and logs).
"""

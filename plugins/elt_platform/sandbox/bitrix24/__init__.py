"""Local stand-in for a Bitrix24 portal reached through an incoming webhook (``/rest/<user>/<token>/``).

Modules: the portal's configuration (``configuration``: deal funnels and stages, lead statuses, user
fields), PHP's request and JSON conventions (``php``), the real error bodies (``errors``), phone
normalisation for duplicate search (``phones``), entity storage with filters and indexes
(``records``), the stateful CRM (``portal``), the REST methods and ``batch`` (``methods``),
Bitrix24-specific fault switches (``faults``), the HTTP app (``app``), the server runner (``server``),
seeded content (``generator``) and a CLI.

Import the modules by full path; this file imports nothing so the portal stays usable without FastAPI.
``python -m elt_platform.sandbox.bitrix24 --help`` starts a server.
"""

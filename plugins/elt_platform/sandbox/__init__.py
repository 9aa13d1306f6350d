"""Sandboxes: local servers behaving like the external APIs we call (tests, benchmarks, ``make run``).

The generic half lives here (``faults``, ``state``, ``rate_limits``, ``admin``, ``app``, ``server``,
``cli``); one package per API (``alaqan/``, ``amocrm/``; ``ident/`` is a database, not an HTTP server)
holds its routes, auth, error bodies and data generator; ``launch`` starts them for ``elt run``.
Nothing in the runtime path may import this package (``tests/plugins/sandbox/test_isolation.py``).
See ``README.md``.
"""

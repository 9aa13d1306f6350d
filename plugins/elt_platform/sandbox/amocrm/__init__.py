"""Local stand-in for the amoCRM API v4: account reference data (``account``), per-entity life scripts
(``scripts``), the dataset with its simulated clock and ground truth (``generator``), OAuth tokens
(``oauth``), the HTTP app (``app``), the server runner (``server``) and a CLI.

Import the modules by full path; this file imports nothing so the pure generator stays usable without
FastAPI or uvicorn. ``python -m elt_platform.sandbox.amocrm --help`` starts a server.
"""

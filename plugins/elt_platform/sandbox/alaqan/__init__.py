"""Local stand-in for the Alaqan API: deterministic data (``generator``), HTTP app (``app``), server runner.

Import the modules by full path; this file imports nothing so that the pure generator stays usable
without FastAPI or uvicorn. ``python -m elt_platform.sandbox.alaqan --help`` starts a server.
"""

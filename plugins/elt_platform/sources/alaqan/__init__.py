"""Alaqan (Astana Hub access control) source: settings, HTTP client, pure parsing and IIN helpers.

Modules are imported by their full path (``from elt_platform.sources.alaqan.client import AlaqanClient``);
this file re-exports nothing so that importing the pure parser never pulls in ``requests``.
"""

"""Fixtures of the HTTP-layer tests: one scripted server per module, its script cleared before each test."""

from tests.plugins.http.scripted_server import fresh_script, server

__all__ = ["fresh_script", "server"]  # fixtures: pytest finds them as this conftest's names

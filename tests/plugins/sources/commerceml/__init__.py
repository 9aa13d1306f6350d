"""Tests for the CommerceML source (parser and exchange packages)."""

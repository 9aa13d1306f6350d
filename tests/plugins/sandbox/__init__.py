"""Tests of the local API sandboxes (a package so that test module basenames may repeat elsewhere)."""

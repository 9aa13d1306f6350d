"""Tests of the shared bronze load path (a package so that test module basenames may repeat)."""

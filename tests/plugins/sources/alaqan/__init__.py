"""Tests of the Alaqan source package (a package so that test module basenames may repeat across sources)."""

"""The one bronze load path every source shares.

``arrow`` turns parser records into Arrow in a declaration's schema; ``slices`` is the
fetch → land → parse → replace loop of API sources (slices = days); ``transaction`` replaces one slice
in several tables all-or-nothing (1C packages, iDent intervals). The writer they all go through
(:mod:`elt_platform.iceberg.writer`) stamps the lineage columns on every row.
"""

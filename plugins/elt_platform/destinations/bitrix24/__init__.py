"""Bitrix24 as a reverse-ETL destination: the REST client (``client``), its errors, batch command helpers,
phone normalisation and constants (``settings``). The sync logic (matching, planning, stage rules) builds on
:class:`~elt_platform.destinations.bitrix24.client.Bitrix24Client`; see this package's ``README.md``.
"""

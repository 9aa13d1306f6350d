"""The iDent sandbox: a real PostgreSQL database shaped like iDent's SQL Server ``dbo`` schema, over ODBC.

See ``plugins/elt_platform/sandbox/README.md`` (section "iDent").
"""

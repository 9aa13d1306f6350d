"""amoCRM (API v4) source: settings, OAuth-aware HTTP client, extract into bronze.amocrm_*.

Modules are imported by their full path; this file re-exports nothing.
"""

"""Reverse-ETL destinations: one package per CRM the platform writes to (client, mapping, README)."""

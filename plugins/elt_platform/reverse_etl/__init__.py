"""Reverse ETL: outbound rows (dbt ``models/outbound/``) pushed to CRMs: plan → approve → execute → report.

The engine here is destination-agnostic; each CRM is an adapter under ``elt_platform.destinations``
(matching rules, payload mapping, batched writes). The outbox — what was sent, the CRM ids, retries and
dead letters — lives in the state store (:mod:`elt_platform.state.outbox`); analysts read its exports in
``ops.reverse_etl_*``. See README.md beside this file.
"""

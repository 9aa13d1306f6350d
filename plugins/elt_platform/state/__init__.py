"""The platform's transactional state store (the OLTP side; Iceberg stays the analytical store).

OAuth token pairs, per-account request budgets and circuit breakers, incremental watermarks and the
transform ledger live in one SQLAlchemy database selected by ``ELT_STATE_DB_URL`` (SQLite under
``$ELT_HOME`` by default, Postgres in production), migrated by Alembic on first open. See README.md.
"""

from __future__ import annotations

from elt_platform.state.breaker import CircuitBreaker, CircuitOpenError, list_breakers
from elt_platform.state.budget import RequestBudget, list_budgets
from elt_platform.state.ledger import LedgerEntry, TransformLedger, list_ledger
from elt_platform.state.store import StateStore, default_url, open_state_store
from elt_platform.state.tokens import (
    TokenDecryptionError,
    TokenNotFoundError,
    TokenPair,
    TokenStore,
    list_tokens,
)
from elt_platform.state.watermarks import get_watermark, list_watermarks, set_watermark

__all__ = [
    "CircuitBreaker",
    "CircuitOpenError",
    "LedgerEntry",
    "RequestBudget",
    "StateStore",
    "TokenDecryptionError",
    "TokenNotFoundError",
    "TokenPair",
    "TokenStore",
    "TransformLedger",
    "default_url",
    "get_watermark",
    "list_breakers",
    "list_budgets",
    "list_ledger",
    "list_tokens",
    "list_watermarks",
    "open_state_store",
    "set_watermark",
]

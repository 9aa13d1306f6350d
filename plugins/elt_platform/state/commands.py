"""Command-line views of the state store: breakers, budgets, ledger, watermarks, tokens; ``state upgrade``.

:func:`register` adds them to the platform CLI (``elt_platform/cli.py``). Output is one concise line per
row and never shows a token value: the token table is listed as account and expiry only.
"""

from __future__ import annotations

import argparse
from datetime import datetime

from elt_platform.state.breaker import CircuitBreaker, list_breakers
from elt_platform.state.budget import list_budgets
from elt_platform.state.ledger import list_ledger
from elt_platform.state.migrations import head_revision
from elt_platform.state.store import open_state_store
from elt_platform.state.tokens import list_tokens
from elt_platform.state.watermarks import list_watermarks


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the state-store commands to a CLI.

    Args:
        subparsers: the result of ``parser.add_subparsers()``; each command sets ``func`` (taking the
            parsed namespace, returning an exit code).
    """
    breaker = subparsers.add_parser("breaker", help="circuit breakers per external account")
    breaker_sub = breaker.add_subparsers(dest="breaker_command", required=True)
    breaker_sub.add_parser("list", help="every breaker and its state").set_defaults(func=cmd_breaker_list)
    reset = breaker_sub.add_parser("reset", help="close an account's breaker after fixing the cause")
    reset.add_argument("account")
    reset.set_defaults(func=cmd_breaker_reset)

    budget = subparsers.add_parser("budget", help="request budgets per external account")
    budget_sub = budget.add_subparsers(dest="budget_command", required=True)
    budget_sub.add_parser("list", help="rate, burst and current balance").set_defaults(func=cmd_budget_list)

    ledger = subparsers.add_parser("ledger", help="bronze slices awaiting transformation")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", required=True)
    ledger_list = ledger_sub.add_parser("list", help="ledger entries")
    ledger_list.add_argument("--domain", help="only this domain")
    ledger_list.set_defaults(func=cmd_ledger_list)

    watermark = subparsers.add_parser("watermark", help="incremental extraction watermarks")
    watermark_sub = watermark.add_subparsers(dest="watermark_command", required=True)
    watermark_sub.add_parser("list", help="every watermark").set_defaults(func=cmd_watermark_list)

    token = subparsers.add_parser("token", help="stored OAuth token pairs (account and expiry only)")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    token_sub.add_parser("list", help="accounts with a token pair").set_defaults(func=cmd_token_list)

    state = subparsers.add_parser("state", help="the state database itself")
    state_sub = state.add_subparsers(dest="state_command", required=True)
    state_sub.add_parser("upgrade", help="apply pending migrations (also done on first use)").set_defaults(
        func=cmd_state_upgrade
    )


def cmd_breaker_list(_args: argparse.Namespace) -> int:
    """``breaker list``: one line per breaker, open ones with since-when and why."""
    rows = list_breakers(open_state_store())
    if not rows:
        print("no circuit breakers")
    for row in rows:
        if row["state"] == "open":
            print(f"{row['account']}  OPEN since {_when(row['opened_at'])}: {row['reason']}")
        else:
            print(f"{row['account']}  closed (reset {_when(row['reset_at'])})")
    return 0


def cmd_breaker_reset(args: argparse.Namespace) -> int:
    """``breaker reset ACCOUNT``: close the breaker (saying whether it was open)."""
    if CircuitBreaker(open_state_store(), args.account).reset():
        print(f"closed the circuit breaker of {args.account}")
    else:
        print(f"the circuit breaker of {args.account} was not open")
    return 0


def cmd_budget_list(_args: argparse.Namespace) -> int:
    """``budget list``: rate, burst and balance per account."""
    rows = list_budgets(open_state_store())
    if not rows:
        print("no request budgets")
    for row in rows:
        print(
            f"{row['account']}  rate {row['rate']:g}/s  burst {row['burst']}  "
            f"balance {row['tokens']:.2f}  last used {_when(row['updated_at'])}"
        )
    return 0


def cmd_ledger_list(args: argparse.Namespace) -> int:
    """``ledger list [--domain D]``: one line per slice with its status and claim."""
    entries = list_ledger(open_state_store(), domain=args.domain)
    if not entries:
        print("no ledger entries")
    for entry in entries:
        span = f"{entry.start}..{entry.end}" if entry.start or entry.end else "-"
        claim = f" by {entry.claimed_by}" if entry.claimed_by else ""
        print(
            f"{entry.domain}  {entry.source}  {entry.slice_key}  {span}  {entry.status}{claim}  "
            f"run {entry.run_id}"
        )
    return 0


def cmd_watermark_list(_args: argparse.Namespace) -> int:
    """``watermark list``: key, value and last update."""
    rows = list_watermarks(open_state_store())
    if not rows:
        print("no watermarks")
    for row in rows:
        print(f"{row['key']} = {row['value']}  (updated {_when(row['updated_at'])})")
    return 0


def cmd_token_list(_args: argparse.Namespace) -> int:
    """``token list``: accounts holding a token pair and its expiry; never a token value."""
    rows = list_tokens(open_state_store())
    if not rows:
        print("no token pairs")
    for row in rows:
        print(f"{row['account']}  expires {_when(row['expires_at'])}  (saved {_when(row['updated_at'])})")
    return 0


def cmd_state_upgrade(_args: argparse.Namespace) -> int:
    """``state upgrade``: apply pending migrations and print the revision."""
    store = open_state_store()
    revision = store.upgrade()
    print(f"state store {store.display_url} at revision {revision} (head {head_revision()})")
    return 0


def _when(value: datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M:%S} UTC"

"""HTTP client for Bitrix24 REST (incoming webhook) on top of the shared HTTP layer.

The only module of the destination that calls Bitrix24. Session, retries with backoff, the per-account
request budget (the portal's leaky bucket of 50 drained at 2 requests/s; the client bursts 48), the
breaker, secret masking and the error taxonomy come from :class:`~elt_platform.http.client.HttpClient`;
this module adds:

* :meth:`Bitrix24Client.call`: one method, ``POST <webhook>/<method>.json`` with a JSON body. An error body
  (``{"error", "error_description"}``, often with an empty code) raises a
  :class:`~elt_platform.destinations.bitrix24.errors.Bitrix24Error` naming the method;
* the portal's limits: 503 ``QUERY_LIMIT_EXCEEDED`` is retried by the HTTP layer with backoff; 429
  ``OPERATION_TIME_LIMIT`` (one method blocked for ~10 minutes) is *not* retried there — the client waits
  the announced ``Retry-After`` or a configured pause (10 minutes), tries the method once more, then gives
  up with :class:`~elt_platform.destinations.bitrix24.errors.Bitrix24OperationLimitError` and refuses further
  calls of that method until the pause is over. 503 ``OVERLOAD_LIMIT`` (REST blocked by Bitrix24 support)
  and 500 ``PORTAL_DELETED`` open the account's breaker: every task calling the portal stops;
* :meth:`Bitrix24Client.batch`: any number of commands in calls of at most 50 (:mod:`.batch`);
* :meth:`Bitrix24Client.list_all`: old-style ``crm.*.list`` pagination, the later pages fetched 50 pages
  per ``batch`` call;
* the look-ups the sync needs: :meth:`~Bitrix24Client.find_by_phone`,
  :meth:`~Bitrix24Client.deals_by_field`, pipelines, stages, lead statuses and deal user fields.

No decision about records is taken here: the client reports what Bitrix24 holds and sends what it is given.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Unpack

import requests

from elt_platform.destinations.bitrix24.batch import (
    Command,
    CommandResult,
    encode_command,
    failed_all,
    plan_chunks,
    read_chunk,
)
from elt_platform.destinations.bitrix24.connection import ConnectionConfig, account_for
from elt_platform.destinations.bitrix24.errors import (
    AUTH_HINTS,
    NOT_EXECUTED,
    OPERATION_TIME_LIMIT,
    STATUS_HINTS,
    Bitrix24AuthError,
    Bitrix24BatchInterrupted,
    Bitrix24OperationLimitError,
    command_error,
    describe,
)
from elt_platform.destinations.bitrix24.settings import (
    BATCH_SIZE,
    CONN_ID,
    DEAL_ENTITY_TYPE_ID,
    DEAL_STAGE_ENTITY,
    DEFAULT_BURST,
    DEFAULT_MATCH_ENTITY_TYPES,
    DEFAULT_REQUESTS_PER_SECOND,
    FINDBYCOMM_MAX_VALUES,
    LEAD_STATUS_ENTITY,
    MAX_PAGES,
    OPERATION_LIMIT_PAUSE_SECONDS,
    OPERATION_LIMIT_RETRIES,
    PAGE_SIZE,
)
from elt_platform.http.auth import WebhookUrl
from elt_platform.http.client import HttpClient, HttpOptions, HttpResponse
from elt_platform.http.decoding import ErrorBody, parse_error_body
from elt_platform.http.errors import AuthError, HttpError, PayloadError, RequestError
from elt_platform.http.limits import Breaker, Budget, LocalBudget
from elt_platform.http.retry import DEFAULT_RETRY_STATUSES, parse_retry_after
from elt_platform.reverse_etl.phones import e164

logger = logging.getLogger(__name__)

#: Codes after which nothing sent to the portal can succeed until a human acts (docs ``system-errors.md``):
#: they open the account's breaker instead of being retried.
STOP_CODES = {
    "OVERLOAD_LIMIT": "REST API blocked by Bitrix24 due to overload (a manual block: ask Bitrix24 support)",
    "PORTAL_DELETED": "the portal was deleted or its public part is closed",
}


def _json_default(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot send a {type(value).__name__} to Bitrix24 (str, numbers, dates, maps, lists)")


def _page_items(result: Any, items_key: str | None, what: str) -> list[Any]:
    """The records of one list page: ``result`` itself, or ``result[items_key]`` (``crm.category.list``'s
    ``categories``, ``crm.item.list``'s ``items``); PHP's ``[]`` is an empty page either way."""
    if items_key is not None and isinstance(result, Mapping):
        result = result.get(items_key)
    if result is None or result == []:
        return []
    if isinstance(result, list):
        return result
    hint = (
        f" (no {items_key!r} list in it)"
        if items_key
        else " (does the method wrap its records? pass items_key)"
    )
    raise PayloadError(
        f"{what}: expected a list of records, got a JSON {type(result).__name__}{hint}", what=what
    )


def _ids(value: Any) -> list[int]:
    """Record ids as integers (``crm.duplicate.findbycomm`` sends integers, list methods strings)."""
    return [int(item) for item in value] if isinstance(value, list) else []


class Bitrix24Client:
    """Bitrix24 REST through one incoming webhook of one portal.

    Example:
        >>> client = Bitrix24Client.from_connection()  # doctest: +SKIP
        >>> matches = client.find_by_phone(["+77011234567"])  # doctest: +SKIP
        >>> results = client.batch({"c": add("contact", {...}), "d": add("deal", {"CONTACT_ID": ref("c")})})
        ...  # doctest: +SKIP
        >>> deal_id = results["d"].unwrap()  # doctest: +SKIP
    """

    def __init__(
        self,
        webhook_url: str,
        *,
        account: str | None = None,
        limits: tuple[Budget | None, Breaker | None] | None = None,
        requests_per_second: float | None = DEFAULT_REQUESTS_PER_SECOND,
        burst: int = DEFAULT_BURST,
        operation_limit_pause: float = OPERATION_LIMIT_PAUSE_SECONDS,
        operation_limit_retries: int = OPERATION_LIMIT_RETRIES,
        batch_size: int = BATCH_SIZE,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        **options: Unpack[HttpOptions],
    ) -> None:
        """Create a client.

        Args:
            webhook_url: ``https://<portal>/rest/<user id>/<token>/`` (the token is masked everywhere).
            account: The account charged (default ``bitrix24:<portal host>``): keys the budget and breaker.
            limits: ``(budget, breaker)`` of the account, e.g. the state store's shared ones
                (:func:`~elt_platform.http.accounts.shared_limits`); default: an in-process token bucket at
                ``requests_per_second``/``burst`` and no breaker.
            requests_per_second: Rate of the default budget (None: unlimited). Ignored with ``limits``.
            burst: Burst of the default budget. Ignored with ``limits``.
            operation_limit_pause: Seconds to wait after a 429 ``OPERATION_TIME_LIMIT`` without
                ``Retry-After`` (the method is blocked for 10 minutes).
            operation_limit_retries: Tries of a blocked method after the first (then the error is raised).
            batch_size: Commands per ``batch`` call (50, Bitrix24's maximum).
            session: A ``requests`` session (not closed by :meth:`close`); default: one of the client's own.
            clock: Monotonic seconds, to know when a blocked method may be called again (tests inject it).
            **options: Timeouts and retries of :class:`~elt_platform.http.client.HttpClient` (``max_retries``,
                ``timeout``, ``sleep`` between attempts…); default: the HTTP layer's policy. ``sleep`` also
                waits out ``OPERATION_TIME_LIMIT``.

        Raises:
            ValueError: ``webhook_url`` is not a webhook URL (the message names the host only), or
                ``batch_size`` is not within 1…50.
        """
        if not 1 <= batch_size <= BATCH_SIZE:
            raise ValueError(f"batch_size must be within 1..{BATCH_SIZE}, got {batch_size}")
        self._auth = WebhookUrl(webhook_url)
        self.account = account or account_for(self._auth.base_url)
        self.operation_limit_pause = operation_limit_pause
        self.operation_limit_retries = operation_limit_retries
        self.batch_size = batch_size
        http_options: dict[str, Any] = dict(options)
        self._sleep: Callable[[float], None] = http_options.get("sleep", time.sleep)
        self._clock = clock
        self._lock = threading.Lock()
        self._blocked_until: dict[str, float] = {}
        self._last_error = threading.local()
        budget, breaker = limits if limits is not None else (LocalBudget(requests_per_second, burst), None)
        # 429 is OPERATION_TIME_LIMIT: the method stays blocked for minutes, so the layer's short backoff
        # would only spend requests; the client waits it out itself (see _post).
        retry_statuses = frozenset(http_options.pop("retry_statuses", DEFAULT_RETRY_STATUSES)) - {429}
        self._http = HttpClient(
            self._auth.base_url,
            auth=self._auth,
            account=self.account,
            budget=budget,
            breaker=breaker,
            classify=self._inspect,
            retry_statuses=retry_statuses,
            session=session,
            **http_options,
        )

    @classmethod
    def from_connection(
        cls,
        conn_id: str = CONN_ID,
        *,
        connection: Any = None,
        store: Any = None,
        limits: tuple[Budget | None, Breaker | None] | None = None,
        **overrides: Any,
    ) -> Bitrix24Client:
        """Build a client from the ``crm_bitrix24`` connection (see :mod:`.connection` for its fields).

        Requests draw from the portal's budget and breaker in the state store (``bitrix24:<portal host>``,
        the connection's ``requests_per_second``/``burst``; 2/s and 48 by default, the portal's 50 minus a
        margin), shared by every task and process calling the portal.

        Args:
            conn_id: The Airflow connection id, read with ``BaseHook.get_connection`` unless ``connection``
                is given.
            connection: An already read connection (or anything with ``host``, ``password``, ``port``,
                ``schema``, ``extra_dejson``).
            store: The state store of the shared limits (default: ``open_state_store()``).
            limits: ``(budget, breaker)`` to use instead of the state store's.
            **overrides: Keyword arguments of :class:`Bitrix24Client` (``sleep``, ``max_retries``…).

        Returns:
            A configured client.

        Raises:
            ValueError: The connection is incomplete (no host, no token; messages never quote the token).
        """
        if connection is None:
            from airflow.sdk import BaseHook

            connection = BaseHook.get_connection(conn_id)
        config = ConnectionConfig.from_connection(connection)
        if limits is None:
            from elt_platform.http.accounts import shared_limits

            limits = shared_limits(config.account, config.requests_per_second, config.burst, store=store)
        if config.max_retries is not None:
            overrides.setdefault("max_retries", config.max_retries)
        return cls(config.webhook_url, account=config.account, limits=limits, **overrides)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._auth!r}, account={self.account!r})"

    __str__ = __repr__

    @property
    def redact(self) -> Callable[[str], str]:
        """The client's redactor (masks the webhook token, phones and e-mails), for callers' messages."""
        return self._http.redact

    def close(self) -> None:
        """Close the session if the client created it."""
        self._http.close()

    def __enter__(self) -> Bitrix24Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- one method -----------------------------------------------------------------------------------

    def _inspect(self, response: HttpResponse) -> str | None:
        """The HTTP layer's ``classify`` hook, asked about every response.

        Keeps the last error body of this thread (its code names auth failures; a 429's ``Retry-After``
        sets the pause), and calls the codes of :data:`STOP_CODES` an account stop (the breaker opens).
        """
        if response.status < 400:
            return None
        body = parse_error_body(response.content, response.content_type)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        self._last_error.value = (response.status, body, retry_after)
        return STOP_CODES.get(body.code or "")

    def _error_said(self, status: int | None) -> tuple[ErrorBody | None, float | None]:
        said = getattr(self._last_error, "value", None)
        if said is None or said[0] != status:
            return None, None
        return said[1], said[2]

    def _check_not_blocked(self, method: str) -> None:
        with self._lock:
            until = self._blocked_until.get(method)
        remaining = 0.0 if until is None else until - self._clock()
        if remaining > 0:
            raise Bitrix24OperationLimitError(
                f"{method}: blocked by Bitrix24 ({OPERATION_TIME_LIMIT}) for another {remaining:.0f}s; "
                "not sent",
                code=OPERATION_TIME_LIMIT,
                method=method,
                status=429,
                what=method,
                account=self.account,
                attempts=0,
                last_error="HTTP 429",
                redactor=self._http.redact,
            )

    def _post(
        self, method: str, payload: Mapping[str, Any], *, what: str, idempotent: bool = True
    ) -> Mapping[str, Any]:
        """Send one method call and return its whole body (``result``, ``total``, ``next``, ``time``).

        Raises:
            Bitrix24AuthError: 401/403 (not retried), with a hint naming what to check.
            Bitrix24OperationLimitError: The method is (still) blocked by ``OPERATION_TIME_LIMIT``.
            Bitrix24MethodError: Another error body (4xx, or a 200 carrying ``error``).
            BannedError: ``OVERLOAD_LIMIT``/``PORTAL_DELETED``: the breaker is open now.
            ServerError: Still 5xx/``QUERY_LIMIT_EXCEEDED``/timeouts after the HTTP layer's retries.
            PayloadError: The body is not a JSON object.
        """
        data = json.dumps(payload, default=_json_default, ensure_ascii=False).encode()
        tries = 0
        while True:
            self._check_not_blocked(method)
            tries += 1
            self._last_error.value = None  # what _inspect keeps must be this request's
            try:
                response = self._http.request(
                    "POST",
                    f"{method}.json",
                    data=data,
                    headers={"Content-Type": "application/json"},
                    what=what,
                    idempotent=idempotent,
                )
            except AuthError as error:
                if type(error) is not AuthError:  # BannedError: the breaker says it all
                    raise
                raise self._auth_error(error, method) from None
            except RequestError as error:
                if error.status != 429:
                    raise command_error(
                        error.code or "",
                        error.detail or error.excerpt,
                        method=method,
                        key=None,
                        account=self.account,
                        status=error.status,
                        redactor=self._http.redact,
                    ) from None
                body, retry_after = self._error_said(429)
                pause = retry_after if retry_after is not None else self.operation_limit_pause
                if tries > self.operation_limit_retries:
                    with self._lock:
                        self._blocked_until[method] = self._clock() + pause
                    said = describe(body.code or "", body.detail or "") if body else OPERATION_TIME_LIMIT
                    raise Bitrix24OperationLimitError(
                        f"{what}: HTTP 429 ({said}) after {tries} tries; Bitrix24 blocks a method whose "
                        "execution time passed 480 s in 10 minutes; calls of it are refused here for "
                        f"{pause:.0f}s",
                        code=(body.code or "") if body else OPERATION_TIME_LIMIT,
                        description=(body.detail or "") if body else "",
                        method=method,
                        status=429,
                        what=what,
                        account=self.account,
                        attempts=tries,
                        last_error="HTTP 429",
                        redactor=self._http.redact,
                    ) from None
                logger.warning(
                    "%s -> 429 %s: the method is blocked; waiting %.0fs before try %d of %d",
                    what,
                    OPERATION_TIME_LIMIT,
                    pause,
                    tries + 1,
                    self.operation_limit_retries + 1,
                )
                self._sleep(pause)
                continue
            body = response.json()
            if not isinstance(body, Mapping):
                raise PayloadError(
                    f"{what}: expected a JSON object, got {type(body).__name__}",
                    status=response.status,
                    what=what,
                    account=self.account,
                    redactor=self._http.redact,
                )
            if "error" in body and "result" not in body:
                code, description = body.get("error"), body.get("error_description")
                raise command_error(
                    code if isinstance(code, str) else "",
                    description if isinstance(description, str) else "",
                    method=method,
                    key=None,
                    account=self.account,
                    status=response.status,
                    redactor=self._http.redact,
                )
            return body

    def _auth_error(self, error: AuthError, method: str) -> Bitrix24AuthError:
        body, _ = self._error_said(error.status)
        code = (body.code or "") if body else ""
        hint = AUTH_HINTS.get(code) or STATUS_HINTS.get(error.status or 0, "")
        return Bitrix24AuthError(
            f"{error}; {hint}" if hint else str(error),
            code=code,
            description=(body.detail or "") if body else "",
            method=method,
            status=error.status,
            what=error.what,
            account=error.account,
            redactor=self._http.redact,
        )

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call one REST method.

        Args:
            method: E.g. ``"crm.deal.fields"``.
            params: The method's parameters, sent as a JSON body (dates as ISO 8601, decimals as strings).

        Returns:
            The body's ``result`` as Bitrix24 sent it (PHP's ``[]`` for an empty map included).

        Raises:
            Bitrix24AuthError: 401/403: the webhook token, its scopes or its user's rights (not retried).
            Bitrix24OperationLimitError: 429 ``OPERATION_TIME_LIMIT`` after the pause and retry.
            Bitrix24MethodError: Another error body, e.g. ``""`` + ``"Parameter 'filter' must be array."``.
            BannedError: ``OVERLOAD_LIMIT``/``PORTAL_DELETED``; the account's breaker is open now.
            CircuitOpenError: The account's breaker is open (a stop seen by any task).
            ServerError: Still 503 ``QUERY_LIMIT_EXCEEDED``/5xx/timeouts after the HTTP layer's retries.
            PayloadError: The body is not a JSON object.
        """
        return self._post(method, params or {}, what=method).get("result")

    # --- batch ----------------------------------------------------------------------------------------

    def batch(self, commands: Mapping[str, Command], *, halt: bool = False) -> dict[str, CommandResult]:
        """Run commands through ``batch``, at most ``batch_size`` (50) per call.

        Commands referencing an earlier command's result (``$result[<key>]``, see
        :func:`~.commands.ref`) are kept in the same call; the others keep their order. Every command is
        encoded before the first call is sent, so a bad parameter sends nothing.

        Args:
            commands: ``key -> (method, params)`` in execution order (:mod:`.commands` builds them). Keys:
                letters, digits and ``_.:-``.
            halt: Stop at the first failure: later commands of the call are not run (``NOT_EXECUTED``),
                later calls are not sent.

        Returns:
            ``key -> CommandResult`` in the order of ``commands``: each ok with its result (and ``total``/
            ``next`` for list methods) or failed with its :class:`~.errors.Bitrix24Error`.

        Raises:
            ValueError: A bad key, a reference to no earlier command, too many linked commands, a bad
                method name.
            TypeError: A parameter of a type that cannot be sent.
            Bitrix24BatchInterrupted: A call failed after earlier calls ran; ``results`` has every
                command's outcome (the failure is its ``__cause__``).
            HttpError: The first call failed (see :meth:`call`): nothing ran, except that a timeout or a
                5xx may come after Bitrix24 executed the call (the HTTP layer retries them).
        """
        if not commands:
            return {}
        encoded = {key: encode_command(method, params) for key, (method, params) in commands.items()}
        chunks = plan_chunks(commands, self.batch_size)
        results: dict[str, CommandResult] = {}
        stopped = False
        for number, keys in enumerate(chunks, 1):
            chunk = {key: commands[key] for key in keys}
            if stopped:
                why = "not sent: a command of an earlier call failed and halt is set"
                results.update(self._failed_all(chunk, NOT_EXECUTED, why))
                continue
            methods = Counter(method for method, _ in chunk.values())
            what = f"batch {number}/{len(chunks)} ({', '.join(f'{m} x{n}' for m, n in methods.items())})"
            # A batch adding or updating records is a write: a timeout or 5xx may come after it ran, so
            # it is not repeated (the reverse-ETL outbox looks records up before trying again).
            writes = any(not m.endswith((".get", ".list", ".findbycomm")) for m, _ in chunk.values())
            try:
                body = self._post(
                    "batch",
                    {"halt": int(halt), "cmd": {key: encoded[key] for key in keys}},
                    what=what,
                    idempotent=not writes,
                )
            except HttpError as error:
                if number == 1:
                    raise
                raise self._interrupted(commands, chunks, number, results, error) from error
            answered = read_chunk(body, chunk, halt=halt, account=self.account, redactor=self._http.redact)
            failed = [result for result in answered.values() if not result.ok]
            logger.info("%s: %d ok, %d failed", what, len(answered) - len(failed), len(failed))
            results.update(answered)
            stopped = halt and bool(failed)
        return {key: results[key] for key in commands}

    def _failed_all(self, chunk: Mapping[str, Command], code: str, why: str) -> dict[str, CommandResult]:
        return failed_all(chunk, code, why, account=self.account, redactor=self._http.redact)

    def _interrupted(
        self,
        commands: Mapping[str, Command],
        chunks: list[list[str]],
        number: int,
        results: dict[str, CommandResult],
        error: HttpError,
    ) -> Bitrix24BatchInterrupted:
        """The error of call ``number`` failing after the calls before it ran, with every outcome so far."""
        failed_call = {key: commands[key] for key in chunks[number - 1]}
        results.update(self._failed_all(failed_call, "", f"the batch call failed ({error}); it may have run"))
        for keys in chunks[number:]:
            never = "not sent: an earlier call of the batch failed"
            results.update(self._failed_all({key: commands[key] for key in keys}, NOT_EXECUTED, never))
        ran = sum(len(keys) for keys in chunks[: number - 1])
        return Bitrix24BatchInterrupted(
            f"batch call {number}/{len(chunks)} failed after {number - 1} call(s) with {ran} command(s) ran: "
            f"{type(error).__name__}; the results of those are in .results",
            results={key: results[key] for key in commands},
            status=error.status,
            what=error.what,
            account=self.account,
            redactor=self._http.redact,
        )

    # --- lists ----------------------------------------------------------------------------------------

    def list_all(
        self,
        method: str,
        *,
        filter: Mapping[str, Any] | None = None,  # noqa: A002 - Bitrix24's parameter name
        select: Sequence[str] | None = None,
        order: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        items_key: str | None = None,
        batch_pages: bool = True,
    ) -> Iterator[Any]:
        """Every record of an old-style list method (``crm.deal.list``, ``crm.status.list``…).

        Pages hold 50 records; ``start`` = the previous page's ``next``; the page without ``next`` is the
        last. With ``batch_pages`` the first page's ``total`` tells which pages remain and they are fetched
        as list commands, 50 pages (2,500 records) per ``batch`` call (the pattern of real integrations);
        a ``next`` on the last of them (records added meanwhile) is followed page by page. Order by ``ID``
        for a stable walk: offsets shift when records are deleted during it.

        Args:
            method: The list method.
            filter: ``filter`` (operators as key prefixes: ``>=DATE_MODIFY``, ``@ID``…).
            select: ``select`` (default of the method: every standard field).
            order: ``order``, e.g. ``{"ID": "ASC"}``.
            params: Further parameters (e.g. ``{"entityTypeId": 2}``).
            items_key: The key of the record list when the method wraps it (``categories``, ``items``).
            batch_pages: Fetch the pages after the first through ``batch``.

        Yields:
            The records, as Bitrix24 sends them (old-style methods: string ids, money as strings).

        Raises:
            PayloadError: A page is not a list of records, or the walk passes ``MAX_PAGES``.
            HttpError: See :meth:`call` (a failed page command raises its :class:`~.errors.Bitrix24Error`).
        """
        base = dict(params or {})
        for name, value in (("filter", filter), ("select", select), ("order", order)):
            if value:
                base[name] = dict(value) if isinstance(value, Mapping) else list(value)
        first = self._post(method, {**base, "start": 0}, what=f"{method} page 1")
        yield from _page_items(first.get("result"), items_key, f"{method} page 1")
        start, total = first.get("next"), first.get("total")
        if batch_pages and isinstance(start, int) and isinstance(total, int):
            starts = list(range(start, total, PAGE_SIZE))
            start = None
            for offset in range(0, len(starts), self.batch_size):
                commands = {
                    f"page_{s}": (method, {**base, "start": s})
                    for s in starts[offset : offset + self.batch_size]
                }
                for result in self.batch(commands).values():
                    yield from _page_items(result.unwrap(), items_key, f"{method} from {result.key}")
                    start = result.next
        yield from self._pages_from(method, base, start, items_key)

    def _pages_from(
        self, method: str, params: Mapping[str, Any], start: Any, items_key: str | None
    ) -> Iterator[Any]:
        """The records of the pages from ``start`` on, one request each, until a page has no ``next``.

        Raises:
            PayloadError: Still a ``next`` after ``MAX_PAGES`` pages (a pagination loop, not data).
        """
        pages = 0
        while isinstance(start, int):
            pages += 1
            if pages > MAX_PAGES:
                raise PayloadError(
                    f"{method}: still a next page after {MAX_PAGES} pages; stopping (pagination loop?)",
                    what=method,
                    account=self.account,
                )
            body = self._post(method, {**params, "start": start}, what=f"{method} from {start}")
            yield from _page_items(body.get("result"), items_key, f"{method} from {start}")
            start = body.get("next")

    # --- look-ups the sync needs ----------------------------------------------------------------------

    def find_by_phone(
        self, phones: Iterable[str], *, entity_types: Sequence[str] = DEFAULT_MATCH_ENTITY_TYPES
    ) -> dict[str, dict[str, list[int]]]:
        """Which contacts and leads hold each phone (``crm.duplicate.findbycomm``).

        One command per phone and entity type: the method merges the ids of all the values of one call
        (so they cannot be told apart by phone), and it stops after 20 matches of one type, leaving the
        other types out; commands of one type and one value avoid both. Phones are sent in E.164.

        Args:
            phones: Phone numbers (see :func:`elt_platform.reverse_etl.phones.e164` for the accepted forms).
            entity_types: ``CONTACT``, ``LEAD`` and/or ``COMPANY``.

        Returns:
            ``phone as given -> {entity type -> ids}`` (integers, ascending; ``[]`` when none).

        Raises:
            ValueError: A value is not a KZ/RU phone number (the message gives its position, not the
                value), or no entity type.
            Bitrix24Error: A search command failed.
            HttpError: See :meth:`call`.
        """
        if not entity_types:
            raise ValueError("find_by_phone needs at least one entity type")
        given = list(phones)
        normalised: dict[str, str] = {}
        for position, phone in enumerate(given):
            value = e164(phone) if isinstance(phone, str) else None
            if value is None:
                raise ValueError(f"phone #{position} of {len(given)} is not a KZ/RU phone number")
            normalised[phone] = value
        unique = list(dict.fromkeys(normalised.values()))
        commands = {
            f"p{index}_{entity_type}": (
                "crm.duplicate.findbycomm",
                {"type": "PHONE", "values": [phone], "entity_type": entity_type},
            )
            for index, phone in enumerate(unique)
            for entity_type in entity_types
        }
        results = self.batch(commands)
        found: dict[str, dict[str, list[int]]] = {}
        for index, phone in enumerate(unique):
            matches: dict[str, list[int]] = {}
            for entity_type in entity_types:
                result = results[f"p{index}_{entity_type}"].unwrap()
                ids = sorted(_ids(result.get(entity_type)) if isinstance(result, Mapping) else [])
                if len(ids) >= FINDBYCOMM_MAX_VALUES:
                    logger.warning(
                        "duplicate search: a phone matches %d %s records, the most Bitrix24 returns; "
                        "there may be more",
                        len(ids),
                        entity_type,
                    )
                matches[entity_type] = ids
            found[phone] = matches
        logger.info("duplicate search: %d phone(s), %d command(s)", len(unique), len(commands))
        return {phone: found[normalised[phone]] for phone in given}

    def deals_by_field(
        self, field: str, values: Iterable[Any], *, select: Sequence[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """Deals whose ``field`` equals each value (e.g. the external-id user field ``UF_CRM_…``).

        ``crm.deal.list`` with the ``@`` (in) filter: one command looks up 50 values (a page holds 50
        deals; a command whose values match more deals has its further pages fetched one by one), the
        commands go through ``batch`` — 2,500 values per call instead of 50.

        Args:
            field: The field compared for equality (no filter prefix).
            values: The values looked up; keys of the answer are ``str(value)``.
            select: Fields of each deal (``ID`` and ``field`` are added).

        Returns:
            ``str(value) -> deals`` ordered by ``ID`` (``[]`` when none).

        Raises:
            Bitrix24Error: A list command failed.
            HttpError: See :meth:`call`.
        """
        unique = list(dict.fromkeys(str(value) for value in values))
        chunks = [unique[i : i + PAGE_SIZE] for i in range(0, len(unique), PAGE_SIZE)]
        fields = list(dict.fromkeys(["ID", field, *select]))

        def params(chunk: list[str]) -> dict[str, Any]:
            return {"filter": {f"@{field}": chunk}, "select": fields, "order": {"ID": "ASC"}}

        results = self.batch(
            {f"v{index}": ("crm.deal.list", params(chunk)) for index, chunk in enumerate(chunks)}
        )
        deals: dict[str, list[dict[str, Any]]] = {value: [] for value in unique}
        for index, chunk in enumerate(chunks):
            result = results[f"v{index}"]
            found = list(_page_items(result.unwrap(), None, f"crm.deal.list {field}"))
            found.extend(self._pages_from("crm.deal.list", params(chunk), result.next, None))
            for deal in found:
                key = str(deal.get(field))
                if key in deals:
                    deals[key].append(deal)
        return deals

    def deal_categories(self) -> list[dict[str, Any]]:
        """Deal pipelines (``crm.category.list``, entity type 2): ``id`` (int; 0 = the default pipeline),
        ``name``, ``sort``, ``isDefault``."""
        return list(
            self.list_all(
                "crm.category.list", params={"entityTypeId": DEAL_ENTITY_TYPE_ID}, items_key="categories"
            )
        )

    def deal_stages(self, category_id: int) -> list[dict[str, Any]]:
        """The stages of one pipeline (``crm.status.list``, ``ENTITY_ID`` ``DEAL_STAGE`` or
        ``DEAL_STAGE_<id>``), by ``SORT``.

        Each has ``STATUS_ID`` (bare in the default pipeline, ``C<id>:`` prefixed in the others), ``NAME``,
        ``SORT`` (a string), ``SEMANTICS`` (``S`` won, ``F`` lost, null in progress) and ``EXTRA.SEMANTICS``.
        """
        entity = DEAL_STAGE_ENTITY if category_id == 0 else f"{DEAL_STAGE_ENTITY}_{category_id}"
        return list(self.list_all("crm.status.list", filter={"ENTITY_ID": entity}, order={"SORT": "ASC"}))

    def lead_statuses(self) -> list[dict[str, Any]]:
        """Lead statuses (``crm.status.list``, ``ENTITY_ID`` ``STATUS``), by ``SORT``; ``CONVERTED`` is the
        default success status (there is no REST method converting a lead)."""
        return list(
            self.list_all("crm.status.list", filter={"ENTITY_ID": LEAD_STATUS_ENTITY}, order={"SORT": "ASC"})
        )

    def deal_userfields(self) -> list[dict[str, Any]]:
        """Custom deal fields (``crm.deal.userfield.list``): ``FIELD_NAME`` (``UF_CRM_…``), ``USER_TYPE_ID``,
        ``XML_ID``, ``LIST`` (enumeration items)…"""
        return list(self.list_all("crm.deal.userfield.list", order={"ID": "ASC"}))

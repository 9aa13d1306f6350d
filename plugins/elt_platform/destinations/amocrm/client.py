"""The write side of amoCRM API v4 for reverse ETL: search, batched creates and updates, account setup.

:class:`AmoCrmDestination` sits on the extract's :class:`~elt_platform.sources.amocrm.client.AmoCrmClient`:
the same ``amocrm_default`` connection, the same OAuth token store (single-use refresh tokens rotated under
the store's lock; a 401 refreshes once and resends, writes included) and the same per-account request
budget and breaker from the state store — the extract and the sync draw from one 7 requests/s bucket,
there is no second limiter.

Writes go in requests of :data:`~.settings.BATCH_SIZE` entities. Each entity is sent with
``request_id`` = its position in the call's input, and the answer's ids are put back in input order by
it, so the caller never relies on the order of the answer. amoCRM validates a request whole: one invalid
entity and nothing of that request is written; the client raises :class:`AmoCrmValidationError` with
the errors per entity (input index, ``code``, ``path``, ``detail``; values are never quoted, phones and
e-mails in the API's text are masked). A call of several requests is not atomic: when a later request
fails, the error's ``written`` maps the input indexes already written to their ids
(:class:`PartialWriteError` wraps the other failures then).

Retries are the HTTP layer's, with ``Retry-After``. Reads and updates (setting a field twice sets it
once) are retried on 429, 5xx and timeouts; creates (``add_*``) are sent as non-idempotent: retried only
when amoCRM refused them before running them (429, 503, no connection), while a timeout or another 5xx
fails at once (``ServerError`` "may have run"): search before adding again (the sync's search-first
hierarchy does). Search (``query``) is fuzzy on amoCRM's side: check the value you searched for in what
comes back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from elt_platform.destinations.amocrm.settings import (
    BATCH_SIZE,
    CONN_ID,
    ENDPOINTS,
    PAGE_SIZE,
)
from elt_platform.http.errors import HttpError, PayloadError, RequestError
from elt_platform.http.limits import Breaker, Budget
from elt_platform.reverse_etl.phones import e164
from elt_platform.sources.amocrm.client import AmoCrmClient, Page
from elt_platform.sources.amocrm.parsing import PageShapeError, page_records

logger = logging.getLogger(__name__)


def phone_query(text: str) -> str:
    """A search query for a phone: ``7`` and the ten national digits when ``text`` is a KZ/RU number.

    ``8 (701) 123-45-67``, ``+7 701 123 45 67``, ``87011234567`` and ``7011234567`` all become
    ``77011234567`` (the forms :func:`~elt_platform.reverse_etl.phones.e164` accepts); anything else (a
    short or foreign number, a name) is returned stripped, unchanged.

    Args:
        text: What the caller searches for.

    Returns:
        The query to send.
    """
    phone = e164(text)
    return phone[1:] if phone else text.strip()


@dataclass(frozen=True)
class FieldError:
    """One validation error of an entity, as amoCRM words it.

    Attributes:
        code: ``NotSupportedChoice``, ``InvalidType``…
        path: Dot path inside the entity (``custom_fields_values.0.values.0.value``).
        detail: amoCRM's message (``The value you selected is not a valid choice.``).
    """

    code: str
    path: str
    detail: str


@dataclass(frozen=True)
class EntityErrors:
    """The validation errors of one entity of a refused request.

    Attributes:
        index: Its position in the caller's input (None when amoCRM named a request_id the client never sent,
            e.g. "0" for a problem with the request as a whole).
        request_id: The ``request_id`` amoCRM named.
        errors: Its errors.
    """

    index: int | None
    request_id: str
    errors: tuple[FieldError, ...]


class AmoCrmValidationError(RequestError):
    """amoCRM refused a write request (400 ``validation-errors``): nothing of that request was written.

    Attributes:
        entities: The errors per entity, by input index.
        written: Input index → id of the entities earlier requests of the same call wrote.
    """

    def __init__(self, message: str, *, entities: list[EntityErrors], written: dict[int, int], **kwargs: Any):
        super().__init__(message, **kwargs)
        self.entities = entities
        self.written = written


class PartialWriteError(HttpError):
    """A write call of several requests failed after earlier requests had written their entities.

    Attributes:
        written: Input index → id of the entities written before the failure.
        cause: The failure (its class says what to do: ``RateLimitedError``, ``ServerError``, ``AuthError``…).
    """

    def __init__(self, message: str, *, written: dict[int, int], cause: HttpError, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.written = written
        self.cause = cause


@dataclass(frozen=True)
class ComplexIds:
    """What ``leads/complex`` made of one input item.

    Attributes:
        lead_id: The lead.
        contact_id: The contact linked or created, None without one.
        company_id: The company linked or created, None without one.
        merged: amoCRM's duplicate control merged the lead into an existing one.
    """

    lead_id: int
    contact_id: int | None
    company_id: int | None
    merged: bool


class _Answer(Protocol):
    def __call__(self, data: Any, what: str) -> dict[str, Any]: ...


class AmoCrmDestination:
    """amoCRM API v4 for one account, as the reverse-ETL sync uses it.

    Example:
        >>> with AmoCrmDestination.from_connection(conn, budget=budget) as amo:  # doctest: +SKIP
        ...     found = amo.search_contacts("+7 701 123 45 67")
        ...     ids = amo.add_leads([{"name": "Приём 1", "pipeline_id": 7100001}])
    """

    def __init__(self, client: AmoCrmClient, *, batch_size: int = BATCH_SIZE) -> None:
        """Wrap an extract client (its connection, auth, budget and breaker are used as they are).

        Args:
            client: The account's client; closed by :meth:`close`.
            batch_size: Entities per write request (1…50).

        Raises:
            ValueError: ``batch_size`` outside 1…50.
        """
        if not 1 <= batch_size <= BATCH_SIZE:
            raise ValueError(f"batch_size must be 1..{BATCH_SIZE}, got {batch_size}")
        self.client = client
        self.batch_size = batch_size

    @classmethod
    def from_connection(
        cls,
        conn: Any,
        *,
        budget: Budget | None = None,
        breaker: Breaker | None = None,
        store: Any = None,
        batch_size: int = BATCH_SIZE,
        **overrides: Any,
    ) -> AmoCrmDestination:
        """Build the destination from the ``amocrm_default`` connection, exactly as the extract's client.

        Args:
            conn: An Airflow connection (or anything with its attributes; see ``sources.amocrm.connection``).
            budget: The account's shared budget (the extract's; default: in-process at the connection's rate).
            breaker: The account's shared breaker.
            store: OAuth only: the state store holding the token pair.
            batch_size: Entities per write request.
            **overrides: Keyword arguments of :class:`AmoCrmClient` (``sleep``, ``max_retries``…).

        Returns:
            The destination.
        """
        client = AmoCrmClient.from_connection(conn, budget=budget, breaker=breaker, store=store, **overrides)
        return cls(client, batch_size=batch_size)

    @classmethod
    def from_airflow(cls, conn_id: str = CONN_ID, *, store: Any = None) -> AmoCrmDestination:
        """Airflow entry: the connection, with the account's budget and breaker from the state store.

        The budget is keyed by the account (``amocrm:<host>``) at the connection's rate, so the extract and
        the sync of one account share it.
        """
        from airflow.sdk import BaseHook

        from elt_platform.http.accounts import shared_limits
        from elt_platform.sources.amocrm.connection import ConnectionConfig
        from elt_platform.state.store import open_state_store

        connection = BaseHook.get_connection(conn_id)
        config = ConnectionConfig.from_connection(connection)
        store = store or open_state_store()
        budget, breaker = shared_limits(config.account, config.requests_per_second, config.burst, store=store)
        return cls.from_connection(connection, budget=budget, breaker=breaker, store=store)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.client!r}, batch_size={self.batch_size})"

    def close(self) -> None:
        """Close the client (and its token endpoint)."""
        self.client.close()

    def __enter__(self) -> AmoCrmDestination:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- reads -----------------------------------------------------------------------------------------

    def _records(self, path: str, key: str, params: Mapping[str, Any], what: str) -> list[dict[str, Any]]:
        """Every record of a list (all pages; 204 is an empty result)."""
        return list(self._walk(path, key, params, what))

    def _walk(self, path: str, key: str, params: Mapping[str, Any], what: str) -> Iterator[dict[str, Any]]:
        for page in self.client.iter_pages(path, params, limit=PAGE_SIZE, what=what):
            yield from self._page_records(page, key)

    def _listed(
        self, path: str, key: str, params: Mapping[str, Any], what: str, max_pages: int | None
    ) -> Iterator[dict[str, Any]] | None:
        """The records of a list, page by page as they are iterated, or None when it has more than
        ``max_pages`` pages (asked at once)."""
        if max_pages is not None:
            if max_pages < 1:
                return None
            beyond = max_pages + 1
            params_beyond = {**params, "page": beyond, "limit": PAGE_SIZE}
            response = self.client.get(path, params_beyond, what=f"{what} page {beyond} (its length)")
            if self._page_records(Page(beyond, response), key):
                return None
        return self._walk(path, key, params, what)

    def _page_records(self, page: Page, key: str) -> list[dict[str, Any]]:
        try:
            return page_records(page.json(), key, page.what)
        except PageShapeError as error:
            raise PayloadError(
                str(error), status=page.status, what=page.what, account=self.client.account
            ) from None

    def search_leads(
        self,
        query: str,
        *,
        pipeline_ids: Iterable[int] | None = None,
        statuses: Iterable[tuple[int, int]] | None = None,
        with_contacts: bool = True,
    ) -> list[dict[str, Any]]:
        """Leads amoCRM finds for ``query`` (``GET /api/v4/leads?query=…``), every page.

        Args:
            query: Searched in names and custom-field values (a reception id, a patient number…).
            pipeline_ids: Only leads of these pipelines (``filter[pipeline_id][]``).
            statuses: Only leads in these ``(pipeline_id, status_id)`` stages (``filter[statuses]``): pass
                the open stages to leave out won (142) and lost (143) leads.
            with_contacts: Embed the linked contacts (``with=contacts``).

        Returns:
            The leads as amoCRM lists them (empty when it answers 204). Fuzzy: check the field you searched.

        Raises:
            HttpError: As :meth:`AmoCrmClient.get`; PayloadError for a body that is not a list page.
        """
        params = {"query": query.strip(), **_lead_filters(pipeline_ids, statuses, with_contacts)}
        return self._records(ENDPOINTS["leads"], "leads", params, "leads search")

    def list_leads(
        self,
        *,
        pipeline_ids: Iterable[int] | None = None,
        statuses: Iterable[tuple[int, int]] | None = None,
        with_contacts: bool = True,
        max_pages: int | None = None,
    ) -> Iterator[dict[str, Any]] | None:
        """Every lead of these pipelines or stages (``GET /api/v4/leads`` without ``query``, 250 a page).

        Args:
            pipeline_ids, statuses, with_contacts: As :meth:`search_leads`.
            max_pages: Read the list only when it fits in this many pages (one request for page
                ``max_pages + 1`` first: amoCRM answers 204 past the last page); None reads it whatever
                its length.

        Returns:
            The leads in amoCRM's order, read page by page as the iterator is consumed (keep what you
            need: an account's list may be long), or None when the list is longer than ``max_pages``
            pages (nothing else is read then).

        Raises:
            HttpError: As :meth:`AmoCrmClient.get`; PayloadError for a body that is not a list page.
        """
        params = _lead_filters(pipeline_ids, statuses, with_contacts)
        return self._listed(ENDPOINTS["leads"], "leads", params, "leads list", max_pages)

    def leads_by_ids(self, ids: Iterable[int], *, with_contacts: bool = True) -> list[dict[str, Any]]:
        """The leads of these ids that exist now (``GET leads?filter[id][]=…``, 250 ids a request).

        Args:
            ids: Lead ids (e.g. the ones the outbox recorded).
            with_contacts: Embed the linked contacts (``with=contacts``).

        Returns:
            The leads found, by id; deleted or unknown ids are simply absent.
        """
        unique = sorted(set(ids))
        leads: list[dict[str, Any]] = []
        for start in range(0, len(unique), PAGE_SIZE):
            params: dict[str, Any] = {"filter[id][]": unique[start : start + PAGE_SIZE]}
            if with_contacts:
                params["with"] = "contacts"
            leads += self._records(ENDPOINTS["leads"], "leads", params, "leads by id")
        return leads

    def search_contacts(self, query: str, *, with_leads: bool = True) -> list[dict[str, Any]]:
        """Contacts amoCRM finds for ``query`` (``GET /api/v4/contacts?query=…``), every page.

        A full KZ/RU phone number is sent as ``7`` + its ten digits (:func:`phone_query`), which the
        shared HTTP layer's redactor masks in its log lines.

        Args:
            query: A phone, a name, an e-mail.
            with_leads: Embed the linked leads (``with=leads``).

        Returns:
            The contacts (empty on 204). Fuzzy: compare the phone's digits with what you searched for.
        """
        params: dict[str, Any] = {"query": phone_query(query)}
        if with_leads:
            params["with"] = "leads"
        return self._records(ENDPOINTS["contacts"], "contacts", params, "contacts search")

    def list_contacts(
        self, *, with_leads: bool = False, max_pages: int | None = None
    ) -> Iterator[dict[str, Any]] | None:
        """Every contact of the account (``GET /api/v4/contacts`` without ``query``, 250 a page).

        Args:
            with_leads: Embed the linked leads (``with=leads``).
            max_pages: As :meth:`list_leads`.

        Returns:
            The contacts, page by page, or None when there are more than ``max_pages`` pages of them.
        """
        params = {"with": "leads"} if with_leads else {}
        return self._listed(ENDPOINTS["contacts"], "contacts", params, "contacts list", max_pages)

    def pipelines(self) -> list[dict[str, Any]]:
        """The account's pipelines with their statuses (``_embedded.statuses``)."""
        return self._records(ENDPOINTS["pipelines"], "pipelines", {}, "pipelines")

    def lead_custom_fields(self) -> list[dict[str, Any]]:
        """Custom-field definitions of leads (``id``, ``name``, ``type``, ``code``, ``enums``)."""
        return self._records(ENDPOINTS["lead_fields"], "custom_fields", {}, "lead custom fields")

    def contact_custom_fields(self) -> list[dict[str, Any]]:
        """Custom-field definitions of contacts (the PHONE field has ``code`` ``PHONE``)."""
        return self._records(ENDPOINTS["contact_fields"], "custom_fields", {}, "contact custom fields")

    def users(self) -> list[dict[str, Any]]:
        """The account's users (to check a configured responsible user)."""
        return self._records(ENDPOINTS["users"], "users", {}, "users")

    # --- writes ----------------------------------------------------------------------------------------

    def add_leads(self, leads: Sequence[Mapping[str, Any]]) -> list[int]:
        """Create leads (``POST /api/v4/leads``).

        Args:
            leads: Leads in amoCRM's write shape (``name``, ``pipeline_id``, ``status_id``, ``price``,
                ``responsible_user_id``, ``custom_fields_values``, ``_embedded.contacts``/``tags``…).

        Returns:
            Their ids, in input order.

        Raises:
            AmoCrmValidationError: amoCRM refused a request (``written``: what earlier requests wrote).
            PartialWriteError: Another failure after earlier requests had written.
            ServerError: A timeout or 5xx other than 503: the request may have been written, not repeated.
            HttpError: Another failure of the first request.
        """
        return self._write("POST", "leads", leads, _embedded_ids("leads"), idempotent=False)

    def update_leads(self, leads: Sequence[Mapping[str, Any]]) -> list[int]:
        """Update leads (``PATCH /api/v4/leads``); each needs its ``id``. Fields left out stay as they are.

        Returns:
            The ids amoCRM answered, in input order.

        Raises:
            ValueError: An entity has no integer ``id``.
            AmoCrmValidationError, PartialWriteError, HttpError: As :meth:`add_leads`.
        """
        _require_ids(leads)
        return self._write("PATCH", "leads", leads, _embedded_ids("leads"))

    def add_contacts(self, contacts: Sequence[Mapping[str, Any]]) -> list[int]:
        """Create contacts (``POST /api/v4/contacts``); see :meth:`add_leads`."""
        return self._write("POST", "contacts", contacts, _embedded_ids("contacts"), idempotent=False)

    def update_contacts(self, contacts: Sequence[Mapping[str, Any]]) -> list[int]:
        """Update contacts (``PATCH /api/v4/contacts``); see :meth:`update_leads`."""
        _require_ids(contacts)
        return self._write("PATCH", "contacts", contacts, _embedded_ids("contacts"))

    def add_complex(self, items: Sequence[Mapping[str, Any]]) -> list[ComplexIds]:
        """Create leads each with its contact (and company) in one request (``POST /api/v4/leads/complex``).

        Args:
            items: Leads with ``_embedded.contacts`` (one: a new contact's fields, or ``{"id": …}`` of an
                existing one) and optionally ``_embedded.companies`` (one).

        Returns:
            Per item, in input order, the lead, contact and company ids.

        Raises:
            AmoCrmValidationError, PartialWriteError, HttpError: As :meth:`add_leads`.
        """
        answered = self._write("POST", "complex", items, _complex_ids, idempotent=False)
        return [ComplexIds(**entry) for entry in answered]

    def _write(
        self,
        method: str,
        endpoint: str,
        entities: Sequence[Mapping[str, Any]],
        read: _Answer,
        *,
        idempotent: bool = True,
    ) -> list[Any]:
        """Send ``entities`` in requests of ``batch_size``, ``request_id`` = input index; answers by it."""
        path = ENDPOINTS[endpoint]
        answers: dict[int, Any] = {}
        chunks = [
            range(start, min(start + self.batch_size, len(entities)))
            for start in range(0, len(entities), self.batch_size)
        ]
        for number, chunk in enumerate(chunks, start=1):
            what = f"{method} {path} ({len(chunk)} entities, request {number}/{len(chunks)})"
            body = [{**entities[i], "request_id": str(i)} for i in chunk]
            try:
                response = self.client.request(method, path, json=body, what=what, idempotent=idempotent)
            except RequestError as error:
                raise self._refused(error, chunk, answers) from None
            except HttpError as error:
                if not answers:
                    raise
                raise PartialWriteError(
                    f"{what} failed after {len(answers)} of {len(entities)} entities were written: {error}",
                    written=_ids(answers),
                    cause=error,
                    status=error.status,
                    what=error.what,
                    account=error.account,
                    redactor=self.client.redact,
                ) from error
            by_request_id = read(response.json(), what)
            missing = [i for i in chunk if str(i) not in by_request_id]
            if missing:
                raise PayloadError(
                    f"{what}: the answer names {len(by_request_id)} request_ids, {len(missing)} of the "
                    f"{len(chunk)} sent are missing (first: {missing[0]})",
                    status=response.status,
                    what=what,
                    account=self.client.account,
                )
            answers.update((i, by_request_id[str(i)]) for i in chunk)
        logger.info("amocrm: %s %s: %d entities in %d requests", method, path, len(entities), len(chunks))
        return [answers[i] for i in range(len(entities))]

    def _refused(self, error: RequestError, chunk: range, answers: dict[int, Any]) -> HttpError:
        """The error to raise for a refused request: per-entity validation errors when amoCRM gave them."""
        if not error.validation_errors:
            if not answers:
                return error
            return PartialWriteError(
                f"{error}; {len(answers)} entities were written by earlier requests",
                written=_ids(answers),
                cause=error,
                status=error.status,
                what=error.what,
                account=error.account,
                redactor=self.client.redact,
            )
        sent = {str(i) for i in chunk}
        entities = [
            EntityErrors(
                index=int(item["request_id"]) if str(item.get("request_id")) in sent else None,
                request_id=str(item.get("request_id")),
                errors=tuple(
                    FieldError(str(e.get("code")), str(e.get("path")), str(e.get("detail")))
                    for e in item.get("errors") or []
                    if isinstance(e, dict)
                ),
            )
            for item in error.validation_errors
            if isinstance(item, dict)
        ]
        summary = "; ".join(
            f"#{entity.index if entity.index is not None else entity.request_id}: "
            + ", ".join(f"{e.path or '(request)'} {e.code}" for e in entity.errors)
            for entity in entities[:10]
        )
        return AmoCrmValidationError(
            f"{error.what}: amoCRM refused {len(entities)} entities, nothing of this request was written "
            f"({summary}){f'; {len(answers)} written by earlier requests' if answers else ''}",
            entities=entities,
            written=_ids(answers),
            status=error.status,
            what=error.what,
            account=error.account,
            excerpt=error.excerpt,
            title=error.title,
            detail=error.detail,
            validation_errors=error.validation_errors,
            redactor=self.client.redact,
        )


def _lead_filters(
    pipeline_ids: Iterable[int] | None, statuses: Iterable[tuple[int, int]] | None, with_contacts: bool
) -> dict[str, Any]:
    """The query parameters of the lead filters (pipelines, stages) and ``with=contacts``."""
    params: dict[str, Any] = {}
    if pipeline_ids is not None:
        params["filter[pipeline_id][]"] = sorted(set(pipeline_ids))
    for k, (pipeline_id, status_id) in enumerate(sorted(set(statuses or ()))):
        params[f"filter[statuses][{k}][pipeline_id]"] = pipeline_id
        params[f"filter[statuses][{k}][status_id]"] = status_id
    if with_contacts:
        params["with"] = "contacts"
    return params


def _ids(answers: Mapping[int, Any]) -> dict[int, int]:
    """Input index → the (lead) id written, for ``written`` of the errors."""
    return {
        i: answer["lead_id"] if isinstance(answer, dict) else answer for i, answer in sorted(answers.items())
    }


def _require_ids(entities: Sequence[Mapping[str, Any]]) -> None:
    bad = [
        i
        for i, entity in enumerate(entities)
        if not isinstance(entity.get("id"), int) or isinstance(entity.get("id"), bool)
    ]
    if bad:
        raise ValueError(
            f"an update needs the id of every entity: {len(bad)} without one (first at index {bad[0]})"
        )


def _embedded_ids(key: str) -> _Answer:
    """Reads ``{"_embedded": {key: [{"id", "request_id"}, ...]}}`` into ``{request_id: id}``."""

    def read(data: Any, what: str) -> dict[str, Any]:
        try:
            items = page_records(data, key, what)
        except PageShapeError as error:
            raise PayloadError(str(error), what=what) from None
        return {
            str(item["request_id"]): item["id"] for item in items if isinstance(item, dict) and "id" in item
        }

    return read


def _complex_ids(data: Any, what: str) -> dict[str, Any]:
    """Reads ``leads/complex``'s plain array; an item answers every request_id in its list (a merge may
    answer several with one lead)."""
    if not isinstance(data, list):
        raise PayloadError(f"{what}: expected a JSON array, got {type(data).__name__}", what=what)
    found: dict[str, Any] = {}
    for item in data:
        if not isinstance(item, dict) or "id" not in item:
            continue
        request_ids = item.get("request_id")
        for request_id in request_ids if isinstance(request_ids, list) else [request_ids]:
            found[str(request_id)] = {
                "lead_id": item["id"],
                "contact_id": item.get("contact_id"),
                "company_id": item.get("company_id"),
                "merged": bool(item.get("merged")),
            }
    return found

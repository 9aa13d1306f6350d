"""The amoCRM adapter of the reverse-ETL engine (spec ident-amocrm-reception-sync).

Search hierarchy, won (142) and lost (143) leads never matched:

1. the lead the outbox already knows for the row (its id from an earlier run), read by id;
2. **reception id** — leads in the open statuses of both pipelines whose "ID Приёма" field holds the
   reception id and whose branch field the branch (a reception id is unique in one database only);
3. **patient number** — open leads whose patient-number field holds it and whose reception id is empty
   (a lead a manager opened before the patient's first reception: it gets the reception);
4. **phone** — contacts with the phone (compared in E.164): one → a new lead for it; several → review.

Steps 2–4 ask amoCRM per key (``query`` search, one request each) or, when the plan has more keys than
the candidates take list pages (a first sync), read the open leads of the two pipelines and the contacts
once through the list endpoints and answer from a local index (:mod:`.lookup`); the plan is the same.

Nothing found → the contact and the lead in one ``leads/complex`` call. Pipeline by the row's funnel
(primary = no completed reception before). Writes are batched (≤ 50 entities per request) through the
account's shared 7 req/s budget — the extract's — with the OAuth refresh of the kernel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from elt_platform.destinations.amocrm.client import AmoCrmDestination, ComplexIds
from elt_platform.destinations.amocrm.lookup import ContactIndex, LeadIndex, contact_phones, number_key
from elt_platform.destinations.amocrm.mapping import (
    Account,
    SyncConfig,
    contact_payload,
    flat_lead,
    flatten,
    lead_payload,
    load_config,
    resolve,
)
from elt_platform.http.errors import HttpError
from elt_platform.reverse_etl.phones import e164
from elt_platform.reverse_etl.plan import (
    CREATE_CONTACT_AND_DEAL,
    CREATE_DEAL_FOR_CONTACT,
    REVIEW_ACTION,
    SKIP_PROTECTED,
    SKIP_UNCHANGED,
    UPDATE_DEAL,
    Candidate,
    Decision,
    Outcome,
    person_key,
)
from elt_platform.reverse_etl.protection import StageRules, changes_for_update

log = logging.getLogger(__name__)

CHUNK_SIZE = 50


#: How the plan looks rows up: ``auto`` (the lists when they cost fewer requests than the searches),
#: ``search`` (one search per key), ``list`` (the lists whatever their length).
LOOKUPS = ("auto", "search", "list")


class AmoCrmSync:
    """Leads of one amoCRM account: :class:`~elt_platform.reverse_etl.adapter.DestinationAdapter`."""

    chunk_size = CHUNK_SIZE

    def __init__(self, destination: AmoCrmDestination, config: SyncConfig, *, lookup: str = "auto") -> None:
        """The adapter over one account's client.

        Args:
            destination: The account's client.
            config: The sync configuration (names or ids).
            lookup: One of :data:`LOOKUPS`; tests and benchmarks pin a path, the DAG uses ``auto``.
        """
        if lookup not in LOOKUPS:
            raise ValueError(f"lookup must be one of {LOOKUPS}, not {lookup!r}")
        self.destination = destination
        self.config = config
        self.lookup = lookup
        self._account: Account | None = None
        self._created: dict[str, int] = {}  # external id → contact created for it in this execution
        self._searches: dict[tuple[str, str], list[dict[str, Any]]] = {}  # one resolve's search answers
        self._leads: LeadIndex | None = None  # one resolve's listed leads (None: search per key)
        self._contacts: ContactIndex | None = None  # one resolve's listed contacts (None: search per phone)

    def __repr__(self) -> str:
        return f"AmoCrmSync({self.destination!r})"

    def close(self) -> None:
        self.destination.close()

    @property
    def account(self) -> Account:
        if self._account is None:
            self.validate()
        assert self._account is not None
        return self._account

    def validate(self) -> None:
        """Resolve pipelines, statuses and fields by name against the account."""
        self._account = resolve(
            self.config, self.destination.pipelines(), self.destination.lead_custom_fields()
        )

    # --- matching -------------------------------------------------------------------------------------

    def resolve(self, candidates: list[Candidate]) -> list[Decision]:
        account = self.account
        known_ids = [
            int(c.record.crm_ids["deal"]) for c in candidates if c.record and c.record.crm_ids.get("deal")
        ]
        known = (
            {int(lead["id"]): lead for lead in self.destination.leads_by_ids(known_ids)} if known_ids else {}
        )
        ordered = sorted(candidates, key=lambda c: c.external_id)
        searching = [c for c in ordered if _lead_id(c) not in known]
        self._searches.clear()
        self._leads = self._list_leads(searching)
        found = {c.external_id: self._search(c, account) for c in searching}
        phones = {phone for c in searching if not found[c.external_id][0] and (phone := _phone(c.row))}
        self._contacts = self._list_contacts(phones)
        decisions: list[Decision] = []
        creator: dict[str, str] = {}
        for candidate in ordered:
            lead_id = _lead_id(candidate)
            if lead_id in known:
                decisions.append(self._update(candidate, known[lead_id], "outbox"))
                continue
            leads, rule = found[candidate.external_id]
            if len(leads) > 1:
                ids = [lead["id"] for lead in leads]
                note = f"{len(leads)} open leads match by {rule}: {ids}"
                decisions.append(Decision(candidate, REVIEW_ACTION, rule, note=note))
            elif leads:
                decisions.append(self._update(candidate, leads[0], rule))
            elif (person := person_key(candidate.row)) in creator:
                decisions.append(
                    self._create(
                        candidate,
                        CREATE_DEAL_FOR_CONTACT,
                        "phone:same-run",
                        {"contact_from": creator[person]},
                    )
                )
            else:
                decision = self._by_phone(candidate)
                if decision.action == CREATE_CONTACT_AND_DEAL:
                    creator[person] = candidate.external_id
                decisions.append(decision)
        self._leads = self._contacts = None
        return decisions

    # Where the answers come from (see lookup.py): a first sync reads the candidates once through the
    # lists; a plan of a few rows searches per key. A plan is read-only, so within one ``resolve`` an
    # answer cannot change: the receptions of one patient share their patient-number and phone searches.
    # Listing costs one request to learn the list's length (page ``max_pages + 1``) plus its pages, so
    # it is worth it when it fits in two pages fewer than the searches it replaces.

    def _list_leads(self, searching: list[Candidate]) -> LeadIndex | None:
        fields = self.account.fields
        receptions = {str(c.row["reception_id"]) for c in searching}
        numbers = (
            {str(c.row["patient_number"]) for c in searching if c.row.get("patient_number")}
            if "patient_number" in fields
            else set()
        )
        # What a new row searches (its reception id, then its patient number); a search's key is its query.
        searches = len(receptions | numbers)
        leads = self._listed(
            searches, "leads", self.destination.list_leads, statuses=self.account.open_statuses
        )
        if leads is None:
            return None
        return LeadIndex.build(
            leads,
            reception_field=fields["reception_id"].id,
            number_field=fields["patient_number"].id if "patient_number" in fields else None,
            receptions={key for r in receptions if (key := number_key(r)) is not None},
            numbers=numbers,
        )

    def _list_contacts(self, phones: set[str]) -> ContactIndex | None:
        contacts = self._listed(len(phones), "contacts", self.destination.list_contacts)
        return None if contacts is None else ContactIndex.build(contacts, phones)

    def _listed(
        self, searches: int, what: str, read: Callable[..., Iterator[dict[str, Any]] | None], **filters: Any
    ) -> Iterator[dict[str, Any]] | None:
        """What ``read`` lists when the lookup reads lists and this one is worth it, else None."""
        if self.lookup == "search" or not searches:
            return None
        records = read(max_pages=None if self.lookup == "list" else searches - 2, **filters)
        if records is None:
            log.info("amocrm: %d %s searches (fewer requests than the list)", searches, what)
        else:
            log.info("amocrm: %s read through the list in place of %d searches", what, searches)
        return records

    def _leads_for(self, field: str, value: str) -> list[dict[str, Any]]:
        """Open leads that may hold ``value`` in ``field`` (``reception_id`` or ``patient_number``)."""
        if self._leads is not None:
            return self._leads.find(field, value)
        if ("leads", value) not in self._searches:
            found = self.destination.search_leads(value, statuses=self.account.open_statuses)
            self._searches["leads", value] = found
        return self._searches["leads", value]

    def _contacts_for(self, phone: str) -> list[dict[str, Any]]:
        """Contacts that may hold ``phone`` (E.164)."""
        if self._contacts is not None:
            return self._contacts.by_phone.get(phone, [])
        if ("contacts", phone) not in self._searches:
            self._searches["contacts", phone] = self.destination.search_contacts(phone, with_leads=False)
        return self._searches["contacts", phone]

    def _search(self, candidate: Candidate, account: Account) -> tuple[list[dict[str, Any]], str]:
        row = candidate.row
        reception = account.fields["reception_id"].id
        branch_field = account.fields["branch_name"]
        branch = branch_field.enums.get(str(row.get("branch_name")))
        leads = self._leads_for("reception_id", str(row["reception_id"]))
        found = [
            lead
            for lead in leads
            if _same_number(flatten(lead).get(f"cf:{reception}"), row["reception_id"])
            and flatten(lead).get(f"cf:{branch_field.id}") in (branch, None)
        ]
        if found or not row.get("patient_number") or "patient_number" not in account.fields:
            return found, "reception-id"
        number = account.fields["patient_number"].id
        leads = self._leads_for("patient_number", str(row["patient_number"]))
        found = [
            lead
            for lead in leads
            if str(flatten(lead).get(f"cf:{number}") or "") == str(row["patient_number"])
            and flatten(lead).get(f"cf:{reception}") in (None, "")
        ]
        return found, "patient-number"

    def _by_phone(self, candidate: Candidate) -> Decision:
        if not candidate.row.get("phone"):
            return self._create(candidate, CREATE_CONTACT_AND_DEAL, "none (no phone)", {})
        phone = _phone(candidate.row)
        found = self._contacts_for(phone) if phone else []
        contacts = [contact for contact in found if phone in contact_phones(contact)]
        if len(contacts) > 1:
            note = f"{len(contacts)} contacts have the patient's phone: {[c['id'] for c in contacts]}"
            return Decision(candidate, REVIEW_ACTION, "phone:contact", note=note)
        if contacts:
            return self._create(
                candidate, CREATE_DEAL_FOR_CONTACT, "phone:contact", {"contact": int(contacts[0]["id"])}
            )
        return self._create(candidate, CREATE_CONTACT_AND_DEAL, "none", {})

    def _pipeline(self, row: dict[str, Any]) -> int:
        return self.account.pipelines["primary" if row.get("funnel") == "primary" else "repeat"]

    def _create(self, candidate: Candidate, action: str, rule: str, ids: dict[str, Any]) -> Decision:
        pipeline = self._pipeline(candidate.row)
        fields = {**flat_lead(candidate.row, self.account, pipeline), "pipeline_id": pipeline}
        if self.account.responsible_user_id is not None:
            fields["responsible_user_id"] = self.account.responsible_user_id
        diff: dict[str, list[Any]] = {k: [None, v] for k, v in fields.items()}
        return Decision(candidate, action, rule, fields, diff, crm_ids=ids)

    def _update(self, candidate: Candidate, lead: dict[str, Any], rule: str) -> Decision:
        pipeline = int(lead["pipeline_id"])
        if pipeline not in self.account.order:  # moved to another pipeline by a person: leave the stage
            desired = {
                k: v
                for k, v in flat_lead(candidate.row, self.account, self._pipeline(candidate.row)).items()
                if k != "status_id"
            }
            stages = None
        else:
            desired = flat_lead(candidate.row, self.account, pipeline)
            stages = StageRules("status_id", self.account.order[pipeline], self.account.manual)
        last = candidate.record.sent_fields if candidate.record else {}
        changes = changes_for_update(
            desired, flatten(lead), last, protected_fields=self.account.protected, stages=stages
        )
        action = UPDATE_DEAL if changes.fields else (SKIP_PROTECTED if changes.protected else SKIP_UNCHANGED)
        ids: dict[str, Any] = {"deal": int(lead["id"])}
        contacts = (lead.get("_embedded") or {}).get("contacts") or []
        if contacts:
            ids["contact"] = int(contacts[0]["id"])
        return Decision(candidate, action, rule, changes.fields, changes.diff, changes.protected, ids)

    # --- writes ---------------------------------------------------------------------------------------

    def execute(self, decisions: list[Decision]) -> list[Outcome]:
        """Updates (one PATCH), then complex creates (contact + lead), then leads for existing contacts —
        so a lead for a contact another row of this chunk creates finds that contact's id."""
        outcomes: dict[str, Outcome] = {}
        account = self.account
        updates = [d for d in decisions if d.action == UPDATE_DEAL]
        complex_ = [d for d in decisions if d.action == CREATE_CONTACT_AND_DEAL]
        for_contact = [d for d in decisions if d.action == CREATE_DEAL_FOR_CONTACT]
        if updates:
            payloads = [{**lead_payload(d.fields, account), "id": d.crm_ids["deal"]} for d in updates]
            self._write(updates, lambda: self.destination.update_leads(payloads), outcomes, "deal")
        if complex_:
            payloads = [
                {
                    **lead_payload(d.fields, account),
                    "_embedded": {"contacts": [contact_payload(d.candidate.row)]},
                }
                for d in complex_
            ]
            self._write(complex_, lambda: self.destination.add_complex(payloads), outcomes, "complex")
        ready: list[tuple[Decision, int]] = []
        waiting: list[Decision] = []
        for d in for_contact:
            contact = d.crm_ids.get("contact") or self._created.get(d.crm_ids.get("contact_from", ""))
            if contact:
                ready.append((d, int(contact)))
            else:
                waiting.append(d)
        for d in waiting:
            source = d.crm_ids.get("contact_from")
            outcomes[d.external_id] = Outcome(
                d.external_id,
                ok=False,
                error=f"the contact of {source} was not created (it failed): retried later",
            )
        if ready:
            payloads = [
                {**lead_payload(d.fields, account), "_embedded": {"contacts": [{"id": contact}]}}
                for d, contact in ready
            ]
            done = [d for d, _ in ready]
            contacts = {d.external_id: contact for d, contact in ready}
            self._write(done, lambda: self.destination.add_leads(payloads), outcomes, "deal", contacts)
        return [outcomes[d.external_id] for d in decisions]

    def _write(
        self,
        decisions: list[Decision],
        send: Any,
        outcomes: dict[str, Outcome],
        kind: str,
        contacts: dict[str, int] | None = None,
    ) -> None:
        try:
            answers = send()
        except HttpError as error:
            written = getattr(error, "written", {}) or {}
            for index, d in enumerate(decisions):
                if index in written:
                    outcomes[d.external_id] = Outcome(
                        d.external_id, ok=True, crm_ids={"deal": written[index]}, written=d.fields
                    )
                else:
                    outcomes[d.external_id] = Outcome(
                        d.external_id, ok=False, error=f"{type(error).__name__}: {error}"
                    )
            return
        for d, answer in zip(decisions, answers, strict=True):
            ids: dict[str, Any] = {}
            if isinstance(answer, ComplexIds):
                ids = {"deal": answer.lead_id, "contact": answer.contact_id}
                if answer.contact_id is not None:
                    self._created[d.external_id] = answer.contact_id
            else:
                ids = {"deal": int(answer)}
                if contacts and d.external_id in contacts:
                    ids["contact"] = contacts[d.external_id]
                    self._created[d.external_id] = contacts[d.external_id]
            outcomes[d.external_id] = Outcome(d.external_id, ok=True, crm_ids=ids, written=d.fields)


def _same_number(value: Any, wanted: Any) -> bool:
    key = number_key(value)
    return key is not None and key == number_key(wanted)


def _lead_id(candidate: Candidate) -> int | None:
    """The lead the outbox recorded for the row (an earlier run's), if any."""
    lead_id = candidate.record.crm_ids.get("deal") if candidate.record else None
    return None if lead_id is None else int(lead_id)


def _phone(row: dict[str, Any]) -> str | None:
    """The row's phone in E.164 (how contacts' phones are compared), None without a KZ/RU number."""
    return e164(str(row["phone"])) if row.get("phone") else None


def adapter_from_connection() -> AmoCrmSync:
    """The adapter for the amoCRM connection the extract uses (one account, one budget) and the mapping."""
    return AmoCrmSync(AmoCrmDestination.from_airflow(), load_config())

"""The amoCRM adapter of the reverse-ETL engine (spec ident-amocrm-reception-sync).

Search hierarchy, won (142) and lost (143) leads never matched:

1. the lead the outbox already knows for the row (its id from an earlier run), read by id;
2. **reception id** — leads in the open statuses of both pipelines whose "ID Приёма" field holds the
   reception id and whose branch field the branch (a reception id is unique in one database only);
3. **patient number** — open leads whose patient-number field holds it and whose reception id is empty
   (a lead a manager opened before the patient's first reception: it gets the reception);
4. **phone** — contacts with the phone: one → a new lead for it; several → review.

Nothing found → the contact and the lead in one ``leads/complex`` call. Pipeline by the row's funnel
(primary = no completed reception before). Writes are batched (≤ 50 entities per request) through the
account's shared 7 req/s budget — the extract's — with the OAuth refresh of the kernel.
"""

from __future__ import annotations

import logging
from typing import Any

from elt_platform.destinations.amocrm.client import AmoCrmDestination, ComplexIds, phone_query
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


class AmoCrmSync:
    """Leads of one amoCRM account: :class:`~elt_platform.reverse_etl.adapter.DestinationAdapter`."""

    chunk_size = CHUNK_SIZE

    def __init__(self, destination: AmoCrmDestination, config: SyncConfig) -> None:
        self.destination = destination
        self.config = config
        self._account: Account | None = None
        self._created: dict[str, int] = {}  # external id → contact created for it in this execution
        self._searches: dict[tuple[str, str], list[dict[str, Any]]] = {}  # one resolve's search answers

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
        decisions: list[Decision] = []
        creator: dict[str, str] = {}
        self._searches.clear()
        for candidate in sorted(candidates, key=lambda c: c.external_id):
            lead_id = candidate.record.crm_ids.get("deal") if candidate.record else None
            if lead_id is not None and int(lead_id) in known:
                decisions.append(self._update(candidate, known[int(lead_id)], "outbox"))
                continue
            found, rule = self._search(candidate, account)
            if len(found) > 1:
                ids = [lead["id"] for lead in found]
                note = f"{len(found)} open leads match by {rule}: {ids}"
                decisions.append(Decision(candidate, REVIEW_ACTION, rule, note=note))
            elif found:
                decisions.append(self._update(candidate, found[0], rule))
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
        return decisions

    # A plan is read-only, so within one ``resolve`` a query's answer cannot change: the receptions of
    # one patient share their patient-number and phone searches (one request each per run, at 7 req/s).

    def _search_leads(self, query: str) -> list[dict[str, Any]]:
        if ("leads", query) not in self._searches:
            found = self.destination.search_leads(query, statuses=self.account.open_statuses)
            self._searches["leads", query] = found
        return self._searches["leads", query]

    def _search_contacts(self, phone: str) -> list[dict[str, Any]]:
        if ("contacts", phone) not in self._searches:
            self._searches["contacts", phone] = self.destination.search_contacts(phone, with_leads=False)
        return self._searches["contacts", phone]

    def _search(self, candidate: Candidate, account: Account) -> tuple[list[dict[str, Any]], str]:
        row = candidate.row
        reception = account.fields["reception_id"].id
        branch_field = account.fields["branch_name"]
        branch = branch_field.enums.get(str(row.get("branch_name")))
        leads = self._search_leads(str(row["reception_id"]))
        found = [
            lead
            for lead in leads
            if _same_number(flatten(lead).get(f"cf:{reception}"), row["reception_id"])
            and flatten(lead).get(f"cf:{branch_field.id}") in (branch, None)
        ]
        if found or not row.get("patient_number") or "patient_number" not in account.fields:
            return found, "reception-id"
        number = account.fields["patient_number"].id
        leads = self._search_leads(str(row["patient_number"]))
        found = [
            lead
            for lead in leads
            if str(flatten(lead).get(f"cf:{number}") or "") == str(row["patient_number"])
            and flatten(lead).get(f"cf:{reception}") in (None, "")
        ]
        return found, "patient-number"

    def _by_phone(self, candidate: Candidate) -> Decision:
        phone = candidate.row.get("phone")
        if not phone:
            return self._create(candidate, CREATE_CONTACT_AND_DEAL, "none (no phone)", {})
        contacts = [
            contact
            for contact in self._search_contacts(phone)
            if any(
                phone_query(str(value.get("value") or "")) == phone_query(phone)
                for item in contact.get("custom_fields_values") or []
                if item.get("field_code") == "PHONE"
                for value in item.get("values") or []
            )
        ]
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
    try:
        return value is not None and float(value) == float(wanted)
    except (TypeError, ValueError):
        return False


def adapter_from_connection() -> AmoCrmSync:
    """The adapter for the amoCRM connection the extract uses (one account, one budget) and the mapping."""
    return AmoCrmSync(AmoCrmDestination.from_airflow(), load_config())

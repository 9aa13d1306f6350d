"""The Bitrix24 adapter of the reverse-ETL engine: match each deal row in the portal, decide, batch writes.

Matching (spec ident-bitrix24-sync "Поиск клиента"), in this order:

1. **external id** — a deal whose external-id user field holds ``F<branch>_<ID>``: update it (manual
   stages and protected fields respected); two such deals → review.
2. **phone → contact** — ``crm.duplicate.findbycomm``: one contact → a new deal for it; several →
   review (ambiguity never creates).
3. **phone → lead** — one lead → convert it: Bitrix24 has no REST method for that, so the contact and
   the deal are created with ``LEAD_ID`` and the lead is moved to its converted status; several → review.
4. nothing → a new contact and deal.

Writes of one engine chunk go in one ``batch`` call (≤ 50 commands; a contact and its deal are linked
with ``$result[…]`` inside the call), through the shared request budget of the portal's account.
"""

from __future__ import annotations

import logging
from typing import Any

from elt_platform.destinations.bitrix24.client import Bitrix24Client
from elt_platform.destinations.bitrix24.commands import add, ref, update
from elt_platform.destinations.bitrix24.mapping import (
    SyncConfig,
    contact_fields,
    deal_fields,
    load_config,
    new_deal_fields,
)
from elt_platform.reverse_etl.adapter import ConfigurationError
from elt_platform.reverse_etl.plan import (
    CONVERT_LEAD,
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

#: Decisions per engine chunk: 50 updates are one full ``batch`` call; 50 creates (contact + deal) are two
#: — the client splits a chunk into calls of ≤ 50 commands, keeping linked commands together.
CHUNK_SIZE = 50


class Bitrix24Sync:
    """Deals of one portal: :class:`~elt_platform.reverse_etl.adapter.DestinationAdapter`."""

    chunk_size = CHUNK_SIZE

    def __init__(self, client: Bitrix24Client, config: SyncConfig) -> None:
        self.client = client
        self.config = config
        self._stages: StageRules | None = None
        #: external id → the contact its decision created in this execution (see ``contact_from``).
        self._created: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"Bitrix24Sync({self.client!r}, category={self.config.category_id})"

    def close(self) -> None:
        self.client.close()

    # --- configuration --------------------------------------------------------------------------------

    def validate(self) -> None:
        """Check stage ids and deal fields against the portal; learn the funnel order (``SORT``)."""
        config = self.config
        stages = self.client.deal_stages(config.category_id)
        known = [str(s["STATUS_ID"]) for s in sorted(stages, key=lambda s: int(s.get("SORT") or 0))]
        if not known:
            raise ConfigurationError(f"Bitrix24: deal category {config.category_id} has no stages")
        for setting, ids in (("stages", config.stages.values()), ("manual_stages", config.manual_stages)):
            unknown = sorted(set(ids) - set(known))
            if unknown:
                raise ConfigurationError(
                    f"Bitrix24 sync configuration: {setting} names stage ids {unknown} that category "
                    f"{config.category_id} does not have (it has {known})"
                )
        declared = {str(f["FIELD_NAME"]) for f in self.client.deal_userfields()}
        missing = sorted(f for f in config.deal_fields.values() if f.startswith("UF_") and f not in declared)
        if missing:
            raise ConfigurationError(f"Bitrix24 sync configuration: deal user fields {missing} do not exist")
        self._stages = StageRules("STAGE_ID", tuple(known), config.manual_stages)

    # --- matching -------------------------------------------------------------------------------------

    def resolve(self, candidates: list[Candidate]) -> list[Decision]:
        if not candidates:
            return []
        config = self.config
        select = ["ID", "STAGE_ID", "CATEGORY_ID", "CONTACT_ID", *config.deal_fields.values()]
        deals = self.client.deals_by_field(
            config.external_id_field, [c.external_id for c in candidates], select=select
        )
        unmatched = [c for c in candidates if not deals.get(c.external_id)]
        phones = sorted({c.row["phone"] for c in unmatched if c.row.get("phone")})
        by_phone = self.client.find_by_phone(phones) if phones else {}
        decisions = []
        #: person → the external id whose decision creates that person's contact in this run: a patient's
        #: other receptions get their deals on that contact instead of a duplicate contact.
        creator: dict[str, str] = {}
        for candidate in sorted(candidates, key=lambda c: c.external_id):
            found = deals.get(candidate.external_id) or []
            phone = candidate.row.get("phone") or ""
            person = person_key(candidate.row)
            if found:
                decisions.append(self._update(candidate, found))
            elif person in creator:
                fields = new_deal_fields(candidate.row, self.config)
                diff: dict[str, list[Any]] = {name: [None, value] for name, value in fields.items()}
                ids = {"contact_from": creator[person]}
                decisions.append(
                    Decision(candidate, CREATE_DEAL_FOR_CONTACT, "phone:same-run", fields, diff, crm_ids=ids)
                )
            else:
                decision = self._create(candidate, by_phone.get(phone, {}))
                if decision.action in (CREATE_CONTACT_AND_DEAL, CONVERT_LEAD):
                    creator[person] = candidate.external_id
                decisions.append(decision)
        return decisions

    def _update(self, candidate: Candidate, found: list[dict[str, Any]]) -> Decision:
        if len(found) > 1:
            found_ids = [d["ID"] for d in found]
            return Decision(
                candidate, REVIEW_ACTION, "external-id", note=f"{len(found)} deals carry it: {found_ids}"
            )
        deal = found[0]
        last = candidate.record.sent_fields if candidate.record else {}
        changes = changes_for_update(
            deal_fields(candidate.row, self.config),
            deal,
            last,
            protected_fields=self.config.protected_fields,
            stages=self._stages,
        )
        action = UPDATE_DEAL if changes.fields else (SKIP_PROTECTED if changes.protected else SKIP_UNCHANGED)
        ids: dict[str, Any] = {"deal": int(deal["ID"])}
        if deal.get("CONTACT_ID"):
            ids["contact"] = int(deal["CONTACT_ID"])
        return Decision(
            candidate, action, "external-id", changes.fields, changes.diff, changes.protected, ids
        )

    def _create(self, candidate: Candidate, matches: dict[str, list[int]]) -> Decision:
        fields = new_deal_fields(candidate.row, self.config)
        diff: dict[str, list[Any]] = {name: [None, value] for name, value in fields.items()}
        contacts, leads = matches.get("CONTACT", []), matches.get("LEAD", [])
        if len(contacts) > 1:
            note = f"{len(contacts)} contacts have the patient's phone: {contacts}"
            return Decision(candidate, REVIEW_ACTION, "phone:contact", note=note)
        if contacts:
            return Decision(
                candidate,
                CREATE_DEAL_FOR_CONTACT,
                "phone:contact",
                fields,
                diff,
                crm_ids={"contact": contacts[0]},
            )
        if len(leads) > 1:
            return Decision(
                candidate,
                REVIEW_ACTION,
                "phone:lead",
                note=f"{len(leads)} leads have the patient's phone: {leads}",
            )
        if leads:
            return Decision(candidate, CONVERT_LEAD, "phone:lead", fields, diff, crm_ids={"lead": leads[0]})
        rule = "none" if candidate.row.get("phone") else "none (no phone)"
        return Decision(candidate, CREATE_CONTACT_AND_DEAL, rule, fields, diff)

    # --- writes ---------------------------------------------------------------------------------------

    def execute(self, decisions: list[Decision]) -> list[Outcome]:
        """Write one chunk in one ``batch`` call. Decisions are in external-id order, so the decision
        creating a phone's contact comes before those adding deals to it (same call or an earlier one)."""
        commands: dict[str, Any] = {}
        in_chunk = {d.external_id: index for index, d in enumerate(decisions)}
        unresolved: dict[int, str] = {}
        for index, decision in enumerate(decisions):
            source = decision.crm_ids.get("contact_from")
            if source is not None and source not in in_chunk and source not in self._created:
                unresolved[index] = f"the contact of {source} was not created (it failed): retried later"
                continue
            commands.update(self._commands(index, decision, in_chunk))
        try:
            results = self.client.batch(commands)
        except Exception as exc:  # the whole call failed: every row of the chunk is retried later
            error = f"{type(exc).__name__}: {exc}"
            return [Outcome(d.external_id, ok=False, error=error) for d in decisions]
        outcomes = []
        for index, decision in enumerate(decisions):
            if index in unresolved:
                outcomes.append(Outcome(decision.external_id, ok=False, error=unresolved[index]))
                continue
            keys = [k for k in commands if k.endswith(f"_{index}")]
            failed = [results[k] for k in keys if not results[k].ok]
            ids: dict[str, Any] = {}
            if f"contact_{index}" in results and results[f"contact_{index}"].ok:
                ids["contact"] = int(results[f"contact_{index}"].result)
            if f"deal_{index}" in results and results[f"deal_{index}"].ok:
                ids["deal"] = int(results[f"deal_{index}"].result)
            source = decision.crm_ids.get("contact_from")
            if source is not None and "contact" not in ids:
                ids["contact"] = self._created.get(source)
            if ids.get("contact") is not None:
                self._created[decision.external_id] = ids["contact"]
            if failed:
                error = "; ".join(f"{r.method}: {r.error}" for r in failed)
                outcomes.append(Outcome(decision.external_id, ok=False, crm_ids=ids, error=error))
            else:
                outcomes.append(Outcome(decision.external_id, ok=True, crm_ids=ids, written=decision.fields))
        return outcomes

    def _commands(self, index: int, decision: Decision, in_chunk: dict[str, int]) -> dict[str, Any]:
        row, fields, ids = decision.candidate.row, dict(decision.fields), decision.crm_ids
        if decision.action == UPDATE_DEAL:
            return {f"update_{index}": update("deal", ids["deal"], fields)}
        commands: dict[str, Any] = {}
        if decision.action in (CREATE_CONTACT_AND_DEAL, CONVERT_LEAD):
            contact = contact_fields(row)
            if decision.action == CONVERT_LEAD:
                contact["LEAD_ID"] = ids["lead"]
                fields["LEAD_ID"] = ids["lead"]
            commands[f"contact_{index}"] = add("contact", contact)
            fields["CONTACT_ID"] = ref(f"contact_{index}")
        elif "contact_from" in ids:
            source = ids["contact_from"]
            created = self._created.get(source)
            fields["CONTACT_ID"] = created if created is not None else ref(f"contact_{in_chunk[source]}")
        else:
            fields["CONTACT_ID"] = ids["contact"]
        commands[f"deal_{index}"] = add("deal", fields)
        if decision.action == CONVERT_LEAD:
            commands[f"lead_{index}"] = update(
                "lead", ids["lead"], {"STATUS_ID": self.config.lead_converted_status}
            )
        return commands


def adapter_from_connection() -> Bitrix24Sync:
    """The adapter for the ``crm_bitrix24`` connection and the configured mapping (the registry's entry)."""
    return Bitrix24Sync(Bitrix24Client.from_connection(), load_config())

"""The plan's indexes over listed leads and contacts: keyed as the sync compares, only the keys asked for."""

from elt_platform.destinations.amocrm.lookup import ContactIndex, LeadIndex

RECEPTION, NUMBER = 801, 802


def lead(lead_id: int, **fields: object) -> dict:
    ids = {"reception": RECEPTION, "number": NUMBER}
    values = [{"field_id": ids[name], "values": [{"value": value}]} for name, value in fields.items()]
    return {"id": lead_id, "custom_fields_values": values}


def contact(contact_id: int, *phones: str) -> dict:
    values = [{"value": phone, "enum_code": "MOB"} for phone in phones]
    return {"id": contact_id, "custom_fields_values": [{"field_code": "PHONE", "values": values}]}


def test_leads_are_found_by_reception_id_as_a_number_and_by_patient_number_as_text() -> None:
    leads = [
        lead(1, reception="9003"),
        lead(2, reception=9003.0),
        lead(3, number="77004"),
        lead(4, reception=1),
    ]

    index = LeadIndex.build(
        leads, reception_field=RECEPTION, number_field=NUMBER, receptions={9003.0}, numbers={"77004"}
    )

    assert [x["id"] for x in index.find("reception_id", "9003")] == [1, 2]
    assert [x["id"] for x in index.find("patient_number", "77004")] == [3]
    assert index.find("reception_id", "1") == []  # not asked for: not kept
    assert index.find("reception_id", "garbage") == []


def test_contacts_are_found_by_each_phone_in_e164_once_per_phone() -> None:
    contacts = [
        contact(1, "8 701 000 0005", "+7 (701) 000-00-05"),  # one phone written twice
        contact(2, "87010000005", "+77010000009"),
        contact(3, "not a phone", "+77010000001"),
    ]

    index = ContactIndex.build(contacts, {"+77010000005", "+77010000009"})

    assert {phone: [c["id"] for c in found] for phone, found in index.by_phone.items()} == {
        "+77010000005": [1, 2],
        "+77010000009": [2],
    }

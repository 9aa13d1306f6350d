"""Bitrix24Client against the Bitrix24 sandbox (``plugins/elt_platform/sandbox/bitrix24/``): a live portal.

Expected values come from what the test seeded and from the sandbox portal's own state and configuration,
never from the client. Unmarked like the amoCRM client's sandbox tests: the sandbox runs in-process on
127.0.0.1 and the module takes about a second; it skips while the sandbox is not there.
"""

import pytest

from elt_platform.destinations.bitrix24.client import Bitrix24Client
from elt_platform.destinations.bitrix24.commands import add, ref, update
from elt_platform.destinations.bitrix24.errors import Bitrix24MethodError, Bitrix24OperationLimitError

sandbox_server = pytest.importorskip(
    "elt_platform.sandbox.bitrix24.server", reason="the Bitrix24 sandbox server is not there yet"
)
from elt_platform.sandbox.bitrix24.configuration import CLINIC, PortalConfig  # noqa: E402 - after the skip
from elt_platform.sandbox.bitrix24.faults import CommandFailure  # noqa: E402

TOKEN = "sandbox-wh-5c1e9d2a7b"
EXTERNAL_ID = "UF_CRM_IDENT_ID"


@pytest.fixture
def portal():
    """A fresh sandbox portal (empty CRM, the default funnels and user fields)."""
    with sandbox_server.Bitrix24SandboxServer(token=TOKEN) as running:
        yield running


@pytest.fixture
def client(portal):
    with Bitrix24Client(portal.webhook_url, sleep=lambda _: None) as made:
        yield made


def test_find_by_phone_attributes_matches_to_each_phone(portal, client) -> None:
    contact = portal.seed_contact(NAME="Айгерим", PHONE=[{"VALUE": "+7 701 123 45 67", "VALUE_TYPE": "WORK"}])
    lead = portal.seed_lead(TITLE="Заявка", PHONE=[{"VALUE": "8 702 555 00 11", "VALUE_TYPE": "MOBILE"}])
    both = portal.seed_contact(NAME="Ерлан", PHONE=[{"VALUE": "87025550011", "VALUE_TYPE": "WORK"}])

    found = client.find_by_phone(["87011234567", "+77025550011", "+77030000000"])

    assert found == {
        "87011234567": {"CONTACT": [contact], "LEAD": []},
        "+77025550011": {"CONTACT": [both], "LEAD": [lead]},
        "+77030000000": {"CONTACT": [], "LEAD": []},
    }


def test_a_batch_links_a_new_deal_to_the_contact_created_before_it(portal, client) -> None:
    results = client.batch(
        {
            "contact": add(
                "contact", {"NAME": "Айгерим", "PHONE": [{"VALUE": "+77011234567", "VALUE_TYPE": "WORK"}]}
            ),
            "deal": add("deal", {"TITLE": "Приём", "CATEGORY_ID": CLINIC, "CONTACT_ID": ref("contact")}),
            "touch": update("deal", ref("deal"), {EXTERNAL_ID: "F1_42"}),
        }
    )

    contact_id, deal_id = results["contact"].unwrap(), results["deal"].unwrap()
    assert results["touch"].unwrap() is True
    deal = portal.portal.record("deal", deal_id)
    assert (deal["CONTACT_ID"], deal["CATEGORY_ID"], deal[EXTERNAL_ID]) == (
        str(contact_id),
        str(CLINIC),
        "F1_42",
    )
    assert portal.stats()["requests"] == 1  # three commands, one request


def test_deals_by_field_finds_every_deal_of_each_value(portal, client) -> None:
    for number in range(57):
        portal.seed_deal(
            TITLE=f"#{number}", CATEGORY_ID=CLINIC, **{EXTERNAL_ID: "F1_1" if number < 55 else "F1_2"}
        )

    found = client.deals_by_field(EXTERNAL_ID, ["F1_1", "F1_2", "F1_3"], select=["ID", EXTERNAL_ID])

    expected = {
        value: [d["ID"] for d in portal.portal.find("deal", **{EXTERNAL_ID: value})] for value in found
    }
    assert {value: [d["ID"] for d in deals] for value, deals in found.items()} == expected
    assert [len(deals) for deals in found.values()] == [55, 2, 0]  # 55: a second page, fetched by start


def test_list_all_reads_every_deal_in_two_requests(portal, client) -> None:
    seeded = [portal.seed_deal(TITLE=f"#{number}") for number in range(120)]
    portal.reset_stats()

    deals = list(client.list_all("crm.deal.list", select=["ID"], order={"ID": "ASC"}))

    assert [int(deal["ID"]) for deal in deals] == seeded
    assert portal.stats()["requests"] == 2  # the first page, then one batch of the other two
    assert portal.command_counts()["batch_commands"] == {"crm.deal.list": 2}


def test_dictionaries_match_the_portals_configuration(client) -> None:
    config = PortalConfig()
    clinic = config.category(CLINIC)

    stages = client.deal_stages(CLINIC)

    assert [s["STATUS_ID"] for s in stages] == [stage.status_id for stage in clinic.stages]
    assert {f["FIELD_NAME"] for f in client.deal_userfields()} == {
        f.field_name for f in config.user_fields("deal")
    }
    assert "CONVERTED" in {s["STATUS_ID"] for s in client.lead_statuses()}


def test_batch_errors_as_a_list_still_fail_the_right_command(portal, client) -> None:
    failure = CommandFailure(method="crm.lead.add", text="broken", error_description="Не заполнено поле")
    portal.set_bitrix_faults(batch_errors_as_list=True, fail_commands=[failure])

    results = client.batch({"good": add("lead", {"TITLE": "ok"}), "bad": add("lead", {"TITLE": "broken"})})

    assert results["good"].ok and portal.portal.record("lead", results["good"].result)["TITLE"] == "ok"
    error = results["bad"].error
    assert isinstance(error, Bitrix24MethodError) and error.code == ""
    assert failure.error_description in error.description  # unattributed, yet on the only command left


def test_operation_time_limit_is_waited_once_then_reported(portal) -> None:
    portal.set_bitrix_faults(operation_time_limit=["crm.deal.list"])
    slept: list[float] = []

    with Bitrix24Client(portal.webhook_url, sleep=slept.append, operation_limit_pause=7) as client:
        with pytest.raises(Bitrix24OperationLimitError):
            client.call("crm.deal.list")
        assert client.call("crm.lead.list") == []  # other methods keep working

    assert slept == [7]
    assert portal.stats()["requests"] == 3  # two tries of the blocked method, one of the other


def test_the_default_burst_drains_the_portals_bucket_without_a_503() -> None:
    # The portal's bucket is the standard plan's 50 calls, drained 10 times faster than 2/s so that the
    # test sends the bucket and 2 seconds' worth of calls in about 2 seconds; the client runs at the same
    # rate with its default burst. A client bucket as large as the portal's (burst=50) met one 503 here on
    # every run, when it first ran dry.
    drain = 20.0
    calls = 50 + int(2 * drain)
    with (
        sandbox_server.Bitrix24SandboxServer(token=TOKEN, burst=50, drain_per_second=drain) as portal,
        Bitrix24Client(portal.webhook_url, requests_per_second=drain, max_retries=0) as client,
    ):
        for _ in range(calls):
            client.call("crm.deal.list")
        stats = portal.stats()

    assert stats["by_status"] == {"200": calls}
    assert stats["faults"] == {}

"""The batch protocol without a server: PHP query encoding, packing commands into calls, reading answers."""

from datetime import date
from decimal import Decimal

import pytest
from tests.plugins.destinations.bitrix24.conftest import DOCS, REAL, recorded

from elt_platform.destinations.bitrix24.batch import encode_command, php_query, plan_chunks, read_chunk
from elt_platform.destinations.bitrix24.commands import add, get, ref, update
from elt_platform.destinations.bitrix24.errors import (
    NOT_EXECUTED,
    Bitrix24AuthError,
    Bitrix24MethodError,
)
from elt_platform.http.errors import PayloadError


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"fields": {"PHONE": [{"VALUE": "+77011234567", "VALUE_TYPE": "WORK"}]}},
            "fields%5BPHONE%5D%5B0%5D%5BVALUE%5D=%2B77011234567&fields%5BPHONE%5D%5B0%5D%5BVALUE_TYPE%5D=WORK",
        ),
        (
            {"fields": {"TITLE": "Приём & план ~"}},
            "fields%5BTITLE%5D=%D0%9F%D1%80%D0%B8%D1%91%D0%BC+%26+%D0%BF%D0%BB%D0%B0%D0%BD+%7E",
        ),
        (
            {"id": 42, "fields": {"OPENED": True, "CLOSED": False}},
            "id=42&fields%5BOPENED%5D=1&fields%5BCLOSED%5D=0",
        ),
        ({"fields": {"COMMENTS": None, "UF_CRM_1": "", "TAGS": [], "X": {}}}, "fields%5BUF_CRM_1%5D="),
        (
            {"fields": {"OPPORTUNITY": Decimal("19999.99"), "BEGINDATE": date(2024, 3, 1), "P": 0.5}},
            "fields%5BOPPORTUNITY%5D=19999.99&fields%5BBEGINDATE%5D=2024-03-01&fields%5BP%5D=0.5",
        ),
        ({"filter": {">=DATE_MODIFY": "2024-03-01"}}, "filter%5B%3E%3DDATE_MODIFY%5D=2024-03-01"),
        ({"fields": {"CONTACT_ID": ref("contact")}}, "fields%5BCONTACT_ID%5D=%24result%5Bcontact%5D"),
    ],
    ids=[
        "nested-multifield",
        "utf8-space-ampersand-tilde",
        "bool-int",
        "null-and-empty",
        "decimal-date-float",
        "filter-operator",
        "reference",
    ],
)
def test_php_query_writes_what_phps_http_build_query_writes(params: dict, expected: str) -> None:
    assert php_query(params) == expected


def test_encode_command_joins_method_and_query() -> None:
    assert encode_command(*get("deal", 42)) == "crm.deal.get?id=42"
    assert encode_command("crm.deal.fields") == "crm.deal.fields"


@pytest.mark.parametrize(
    ("method", "params", "error"),
    [
        ("crm.deal.add?x=1", {}, ValueError),
        ("crm.deal.add", {"fields": {"TITLE": object()}}, TypeError),
        ("crm.deal.add", {"fields": {"OPPORTUNITY": float("nan")}}, ValueError),
    ],
    ids=["method-with-query", "unsupported-type", "nan"],
)
def test_encode_command_refuses_what_would_corrupt_the_command(
    method: str, params: dict, error: type
) -> None:
    with pytest.raises(error):
        encode_command(method, params)


def test_120_commands_make_three_calls_in_order() -> None:
    commands = {f"lead{i}": add("lead", {"TITLE": f"#{i}"}) for i in range(120)}

    chunks = plan_chunks(commands, 50)

    assert [len(chunk) for chunk in chunks] == [50, 50, 20]
    assert [key for chunk in chunks for key in chunk] == list(commands)


def test_commands_that_reference_each_other_stay_in_one_call() -> None:
    commands = {f"lead{i}": add("lead", {"TITLE": f"#{i}"}) for i in range(49)}
    commands["contact"] = add("contact", {"NAME": "Айгуль"})
    commands["deal"] = add("deal", {"CONTACT_ID": ref("contact")})
    commands["touch"] = update("deal", ref("deal"), {"COMMENTS": "x"})
    commands["last"] = add("lead", {"TITLE": "last"})

    chunks = plan_chunks(commands, 50)

    # The linked three do not fit beside the first 49: they open the next call, and no command runs
    # before one that precedes it.
    assert chunks == [[f"lead{i}" for i in range(49)], ["contact", "deal", "touch", "last"]]


@pytest.mark.parametrize(
    ("commands", "message"),
    [
        (
            {"deal": add("deal", {"CONTACT_ID": ref("contact")}), "contact": add("contact", {})},
            "does not run",
        ),
        ({"deal": add("deal", {"CONTACT_ID": ref("typo")})}, "no such command"),
        ({"a key": get("deal", 1)}, "letters, digits"),
    ],
    ids=["forward-reference", "unknown-reference", "key-with-space"],
)
def test_plan_chunks_refuses_what_bitrix24_could_not_substitute(commands: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_chunks(commands, 50)


def test_a_linked_group_larger_than_a_call_is_refused() -> None:
    commands = {"c0": add("contact", {})}
    commands.update({f"c{i}": update("contact", ref(f"c{i - 1}"), {}) for i in range(1, 51)})

    with pytest.raises(ValueError, match="51 batch commands reference each other"):
        plan_chunks(commands, 50)


def _errors(body: dict) -> list[tuple[str, str]]:
    """The (code, description) pairs of a recorded ``result_error``, whatever its shape."""
    raw = body["result"]["result_error"]
    items = raw.values() if isinstance(raw, dict) else raw
    return [(item["error"], item["error_description"]) for item in items]


def test_success_with_php_empty_maps_keeps_results_and_totals() -> None:
    body = recorded(f"{DOCS}/batch.200.json")
    chunk = {"get_user": ("user.current", {}), "get_department": ("department.get", {"ID": 1})}

    results = read_chunk(body, chunk, halt=False)

    assert body["result"]["result_error"] == [] and body["result"]["result_next"] == []
    assert [r.ok for r in results.values()] == [True, True]
    assert results["get_user"].result == body["result"]["result"]["get_user"]
    assert results["get_department"].total == body["result"]["result_total"]["get_department"]
    assert results["get_department"].next is None


def test_result_error_keyed_by_command_fails_each_command_with_its_own_error() -> None:
    body = recorded(f"{DOCS}/batch.error.halt0.json")
    chunk = {"get_user": ("user.current", {}), "get_department": ("department.get", {})}

    results = read_chunk(body, chunk, halt=False)

    assert body["result"]["result"] == []  # PHP's empty map: nothing succeeded
    for key, result in results.items():
        expected = body["result"]["result_error"][key]
        assert isinstance(result.error, Bitrix24AuthError)  # insufficient_scope names the webhook's scopes
        assert (result.error.code, result.error.description) == (
            expected["error"],
            expected["error_description"],
        )
        assert result.error.key == key


@pytest.mark.parametrize(
    ("fixture", "keys"),
    [
        ("crm_get_batch_mix_success_and_errors.json", ["0", "1", "35943"]),
        ("crm_get_batch_of_two_error.json", ["0", "1"]),
        ("crm_lead_get_batch_error.json", ["0"]),
    ],
    ids=["mixed", "all-failed", "one-failed"],
)
def test_result_error_as_a_list_is_placed_by_position_when_the_keys_are_0_to_n(
    fixture: str, keys: list
) -> None:
    # fast_bitrix24 keyed these commands by record id (get_by_ID([0, 1, 35943])): PHP's json_encode turned
    # the error map {0: …, 1: …} into a list.
    body = recorded(f"{REAL}/{fixture}")
    chunk = {key: ("crm.lead.get", {"ID": key}) for key in keys}

    results = read_chunk(body, chunk, halt=False)

    expected_errors = _errors(body)
    failed = {key: (r.error.code, r.error.description) for key, r in results.items() if r.error}
    assert failed == {str(index): pair for index, pair in enumerate(expected_errors)}
    succeeded = {key: r.result for key, r in results.items() if r.ok}
    assert succeeded == (body["result"]["result"] or {})
    assert all(
        isinstance(r.error, Bitrix24MethodError) and r.error.code == "" for r in results.values() if r.error
    )


def test_result_error_list_that_fits_no_key_fails_every_command_without_a_result() -> None:
    body = recorded(f"{REAL}/crm_get_batch_mix_success_and_errors.json")
    chunk = {key: ("crm.lead.get", {"ID": key}) for key in ("first", "second", "35943")}

    results = read_chunk(body, chunk, halt=False)

    assert results["35943"].result == body["result"]["result"]["35943"]
    descriptions = [description for _, description in _errors(body)]
    for key in ("first", "second"):
        error = results[key].error
        assert error is not None and error.code == ""
        assert all(description in error.description for description in descriptions)


@pytest.mark.parametrize(
    ("fixture", "key"),
    [("batch_list_empty.json", "order0000000000"), ("crm_contact_add_batch.json", "order0000000000")],
    ids=["empty-list-page", "add-returns-int-id"],
)
def test_real_successes_read_as_recorded(fixture: str, key: str) -> None:
    body = recorded(f"{REAL}/{fixture}")

    (result,) = read_chunk(body, {key: ("crm.x.list", {})}, halt=False).values()

    assert result.ok and result.result == body["result"]["result"][key]
    assert result.total == (body["result"]["result_total"] or {}).get(key)


def test_results_as_a_list_belong_to_keys_0_to_n() -> None:
    body = recorded(f"{REAL}/crm_dealcategory_stage_list_batch_of_one.json")
    request = recorded(f"{REAL}/crm_dealcategory_stage_list_batch_of_one.request.json")
    chunk = {key: ("crm.dealcategory.stage.list", {"ID": 0}) for key in request["cmd"]}

    results = read_chunk(body, chunk, halt=False)

    assert list(results) == ["0"]
    assert [s["STATUS_ID"] for s in results["0"].result] == [
        s["STATUS_ID"] for s in body["result"]["result"][0]
    ]


def test_halt_marks_commands_after_the_failure_as_not_executed() -> None:
    body = recorded(f"{DOCS}/batch.error.halt1.json")
    chunk = {"get_user": ("user.current", {}), "get_department": ("department.get", {})}

    results = read_chunk(body, chunk, halt=True)

    assert results["get_user"].error.code == body["result"]["result_error"]["get_user"]["error"]
    assert results["get_department"].error.code == NOT_EXECUTED


def test_unwrap_raises_the_commands_error() -> None:
    body = recorded(f"{REAL}/crm_lead_get_batch_error.json")

    (result,) = read_chunk(body, {"0": ("crm.lead.get", {"ID": 0})}, halt=False).values()

    with pytest.raises(Bitrix24MethodError, match="ID is not defined or invalid"):
        result.unwrap()


@pytest.mark.parametrize("body", [{"result": [1, 2]}, {"error": "x"}, [], {"result": {"result": "x"}}])
def test_an_answer_that_is_no_batch_answer_is_a_payload_error(body: object) -> None:
    with pytest.raises(PayloadError):
        read_chunk(body, {"a": ("crm.deal.get", {})}, halt=False)

"""decode_json, as_mapping and error-body parsing on real recorded amoCRM and Bitrix24 bodies."""

import json
import re

import pytest
from tests.plugins.http.scripted_server import fixture_bytes

from elt_platform.http.decoding import as_mapping, decode_json, is_json_type, parse_error_body, text_excerpt
from elt_platform.http.errors import NonJsonError, PayloadError

BOM = b"\xef\xbb\xbf"
REAL_BODIES = [
    "amocrm/ogi4i_amocrm-client/leads.list.page2.json",
    "amocrm/ogi4i_amocrm-client/contact.get.json",
    "amocrm/ogi4i_amocrm-client/pipelines.list.json",
    "bitrix24/b24-rest-docs/crm.deal.list.200.json",
    "bitrix24/b24-rest-docs/batch.error.halt0.json",
    "bitrix24/fast_bitrix24_real_responses/crm_dealcategory_stage_list.json",
]


@pytest.mark.parametrize("fixture", REAL_BODIES)
@pytest.mark.parametrize(
    "encode",
    [
        lambda raw: raw,
        lambda raw: BOM + raw,
        lambda raw: json.dumps(json.loads(raw), ensure_ascii=True).encode(),
        lambda raw: BOM + json.dumps(json.loads(raw), ensure_ascii=True).encode(),
    ],
    ids=["plain", "bom", "u-escapes", "bom-u-escapes"],
)
def test_real_bodies_decode_to_the_same_value(fixture: str, encode) -> None:
    raw = fixture_bytes(fixture)

    decoded = decode_json(encode(raw), status=200, content_type="application/hal+json", what=fixture)

    assert decoded == json.loads(raw)


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"", 204), (b"", 200), (b" \r\n", 200), (b"ignored", 204)],
    ids=["204", "200", "ws", "204b"],
)
def test_no_content_is_none(body: bytes, status: int) -> None:
    assert decode_json(body, status=status, content_type=None, what="x") is None


@pytest.mark.parametrize(
    ("body", "content_type", "error_class", "message"),
    [
        (
            b"<html><head><title>403 Forbidden</title><style>h1{}</style></head>"
            b"<body><h1>403 Forbidden</h1><hr>nginx &amp; co</body></html>",
            "text/html",
            NonJsonError,
            "leads: HTTP 403 returned text/html, not JSON: '403 Forbidden 403 Forbidden nginx & co'",
        ),
        (
            b"<html><body>Account blocked</body></html>",
            "application/json",  # a proxy that lies about the type
            NonJsonError,
            "leads: HTTP 403 returned application/json, not JSON: 'Account blocked'",
        ),
        (b"Service Unavailable", None, NonJsonError, "leads: HTTP 403 returned no Content-Type, not JSON: "),
        (
            b'{"_embedded": {"leads": [',
            "application/hal+json",
            PayloadError,
            "leads: HTTP 403 body is not valid JSON (JSONDecodeError: Expecting value); 25 bytes received",
        ),
    ],
    ids=["nginx-html", "html-as-json", "plain-text", "truncated-json"],
)
def test_unusable_bodies_raise_a_named_error_without_a_traceback_chain(
    body: bytes, content_type: str | None, error_class: type[PayloadError], message: str
) -> None:
    with pytest.raises(PayloadError) as caught:
        decode_json(body, status=403, content_type=content_type, what="leads")

    assert type(caught.value) is error_class
    assert str(caught.value).startswith(message)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert "Traceback" not in str(caught.value)


def test_excerpt_masks_personal_data_and_is_short() -> None:
    body = ("<p>Contact ann@example.kz, IIN 650727300949</p>" + "x" * 500).encode()

    with pytest.raises(NonJsonError) as caught:
        decode_json(body, status=500, content_type="text/html", what="x")

    assert "***@example.kz" in caught.value.excerpt and "6507******49" in caught.value.excerpt
    assert "ann@" not in str(caught.value) and "650727300949" not in str(caught.value)
    assert len(caught.value.excerpt) == 160 and caught.value.excerpt.endswith("…")


@pytest.mark.parametrize(
    ("fixture", "path", "expected"),
    [
        ("bitrix24/fast_bitrix24_real_responses/batch_list_empty.json", ["result", "result_error"], {}),
        ("bitrix24/fast_bitrix24_real_responses/batch_list_empty.json", ["result", "result_next"], {}),
        ("bitrix24/b24-rest-docs/batch.error.halt0.json", ["result", "result"], {}),
        ("bitrix24/b24-rest-docs/batch.error.halt0.json", ["result", "result_total"], {}),
        (
            "bitrix24/b24-rest-docs/batch.error.halt0.json",
            ["result", "result_error"],
            {
                "get_user": {"error": "insufficient_scope", "error_description": ""},
                "get_department": {"error": "insufficient_scope", "error_description": ""},
            },
        ),
    ],
)
def test_as_mapping_reads_php_empty_arrays_as_empty_maps(
    fixture: str, path: list[str], expected: dict
) -> None:
    value = json.loads(fixture_bytes(fixture))
    for key in path:
        value = value[key]

    assert as_mapping(value, what=".".join(path)) == expected


@pytest.mark.parametrize(
    ("value", "shape"),
    [([{"error": "", "error_description": "x"}], "a list of 1 item(s)"), ("x", "str"), (None, "NoneType")],
)
def test_as_mapping_rejects_everything_else(value: object, shape: str) -> None:
    with pytest.raises(PayloadError, match=re.escape(f"result_error: expected a JSON object, got {shape}")):
        as_mapping(value, what="result_error")


@pytest.mark.parametrize(
    ("fixture", "content_type", "title", "detail", "code"),
    [
        (
            "amocrm/github_issues/error.401.unauthorized.json",
            "application/problem+json",
            "Unauthorized",
            "Неверный логин или пароль",
            None,
        ),
        (
            "bitrix24/b24-rest-docs/crm.deal.list.400.json",
            "application/json",
            None,
            "Parameter 'filter' must be array.",
            "",
        ),
        (
            "bitrix24/b24-rest-docs/crm.duplicate.findbycomm.400.json",
            "application/json",
            None,
            "Parameter 'type' is required.",
            "Communication type is not defined",
        ),
        (
            "bitrix24/b24-rest-docs/oauth.error.payment_required.json",
            "application/json",
            None,
            "Payment required",
            "PAYMENT_REQUIRED",
        ),
    ],
)
def test_error_bodies_yield_the_apis_own_words(
    fixture: str, content_type: str, title: str | None, detail: str, code: str | None
) -> None:
    parsed = parse_error_body(fixture_bytes(fixture), content_type)

    assert (parsed.title, parsed.detail, parsed.code) == (title, detail, code)


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", True),
        ("application/hal+json", True),
        ("application/problem+json; charset=utf-8", True),
        ("text/json", True),
        ("text/html; charset=utf-8", False),
        ("application/jsonp", False),
        (None, False),
    ],
)
def test_is_json_type(content_type: str | None, expected: bool) -> None:
    assert is_json_type(content_type) is expected


def test_text_excerpt_uses_the_declared_charset() -> None:
    assert (
        text_excerpt("<b>Доступ закрыт</b>".encode("cp1251"), "text/html; charset=windows-1251")
        == "Доступ закрыт"
    )

"""What the redactor masks (secrets, raw or URL-encoded; IINs, e-mails, phones) and what it leaves alone."""

import logging

import pytest

from elt_platform.http.redaction import Redactor, redact_pii, redact_third_party_logs

KEY = "Zx9+/key=="  # base64 alphabet: its URL-encoded forms differ from the raw one


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("iin=650727300949&x=1", "iin=6507******49&x=1"),
        ("IINs 650727300949,910505350319.", "IINs 6507******49,9105******19."),
        ("id 1234567890123 is 13 digits", "id 1234567890123 is 13 digits"),
        ("mail ann.lee@example.kz now", "mail ***@example.kz now"),
        ("email=ann.lee%40example.kz", "email=***@example.kz"),
        ("call +7 701 123 45 67 or", "call ***67 or"),
        ("call +77011234567", "call ***67"),
        ("tel 8 (701) 123-45-67", "tel ***67"),
        ("tel 87011234567", "tel ***67"),
        ("intl +49 30 1234 5678", "intl ***78"),
        ("created_at=1582117331&id=504141", "created_at=1582117331&id=504141"),
        ("2024-03-04 08:45:00 took 0.25s", "2024-03-04 08:45:00 took 0.25s"),
        ("lead 19999.99 KZT", "lead 19999.99 KZT"),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 30 else None,
)
def test_personal_data_is_masked_and_ordinary_numbers_are_not(text: str, expected: str) -> None:
    assert redact_pii(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"X-Api-Key: {KEY}", "X-Api-Key: ***"),
        ("url ?key=Zx9%2B%2Fkey%3D%3D&a=1", "url ?key=***&a=1"),
        ("form key=Zx9%2B%2Fkey%3D%3D", "form key=***"),
        (f"twice {KEY}{KEY}", "twice ******"),
    ],
)
def test_secrets_are_masked_raw_and_url_encoded(text: str, expected: str) -> None:
    assert Redactor([KEY])(text) == expected


def test_short_secrets_are_masked_only_as_whole_tokens() -> None:
    redact = Redactor(["k1"])

    assert redact("backoff k1 /rest/1/k1/x k10") == "backoff *** /rest/1/***/x k10"


def test_secrets_are_asked_for_at_each_use() -> None:
    current = ["first-token-abc"]
    redact = Redactor(lambda: current)
    current.append("rotated-token-xyz")

    assert redact("first-token-abc then rotated-token-xyz") == "*** then ***"


def test_url_is_decoded_before_masking() -> None:
    redact = Redactor(["webhooktoken42"])

    assert (
        redact.url(
            "https://b24.kz/rest/1/webhooktoken42/crm.contact.list.json?filter%5BEMAIL%5D=ann%40x.kz&q=a+b"
        )
        == "https://b24.kz/rest/1/***/crm.contact.list.json?filter[EMAIL]=***@x.kz&q=a b"
    )


def test_urllib3_debug_lines_are_redacted_while_the_client_lives(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")
    redactor = Redactor(["webhooktoken42"])
    redact_third_party_logs(redactor)

    logging.getLogger("urllib3.connectionpool").debug(
        '"GET /rest/1/%s/x.json?iin=%s HTTP/1.1"', "webhooktoken42", "650727300949"
    )

    assert caplog.records[-1].getMessage() == '"GET /rest/1/***/x.json?iin=6507******49 HTTP/1.1"'

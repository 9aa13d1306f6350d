"""The error taxonomy: redaction at construction, attributes, pickling, and the Alaqan counterparts."""

import pickle

import pytest

from elt_platform.http.errors import (
    AuthError,
    BannedError,
    CircuitOpenError,
    HttpError,
    NonJsonError,
    PayloadError,
    RateLimitedError,
    RequestError,
    ServerError,
    UnavailableError,
)
from elt_platform.http.redaction import Redactor
from elt_platform.sources.alaqan.errors import (
    AlaqanAuthError,
    AlaqanError,
    AlaqanNonJsonError,
    AlaqanPayloadError,
    AlaqanRateLimitedError,
    AlaqanRequestError,
    AlaqanServerError,
    AlaqanUnavailableError,
    as_alaqan_error,
)

SECRET = "tok-3b8e1f0a9c"


def test_message_and_attributes_are_redacted_when_the_error_is_made() -> None:
    error = RequestError(
        f"refused {SECRET} for ann@example.kz",
        what=f"GET /rest/1/{SECRET}/x",
        excerpt=f"echo {SECRET} 650727300949",
        detail="phone +7 701 123 45 67",
        validation_errors=[{"path": "email", "detail": f"ann@example.kz {SECRET}"}],
        redactor=Redactor([SECRET]),
        status=400,
    )

    assert error.args == ("refused *** for ***@example.kz",)
    assert (error.what, error.excerpt, error.detail) == (
        "GET /rest/1/***/x",
        "echo *** 6507******49",
        "phone ***67",
    )
    assert error.validation_errors == [{"path": "email", "detail": "***@example.kz ***"}]


@pytest.mark.parametrize(
    "error",
    [
        AuthError("a", status=401, what="w", account="acct"),
        BannedError("b", status=403, reason="ban", account="acct"),
        CircuitOpenError("c", reason="ban"),
        ServerError("d", status=503, attempts=7, last_error="HTTP 503"),
        RequestError("e", status=400, detail="bad", code=""),
        NonJsonError("f", status=200, content_type="text/html", excerpt="x"),
        AlaqanServerError("g", status=None, attempts=3, last_error="ReadTimeout"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_errors_survive_pickling(error: HttpError) -> None:
    copy = pickle.loads(pickle.dumps(error))

    assert (type(copy), copy.args, copy.__dict__) == (type(error), error.args, error.__dict__)


@pytest.mark.parametrize(
    ("http_error", "alaqan_class", "http_base"),
    [
        (AuthError("a", status=401), AlaqanAuthError, AuthError),
        (RateLimitedError("b", status=429, attempts=3), AlaqanRateLimitedError, RateLimitedError),
        (ServerError("c", status=None, attempts=3), AlaqanServerError, ServerError),
        (RequestError("d", status=422), AlaqanRequestError, RequestError),
        (NonJsonError("e", status=200), AlaqanNonJsonError, NonJsonError),
        (PayloadError("f", status=200), AlaqanPayloadError, PayloadError),
    ],
)
def test_alaqan_counterparts_keep_message_attributes_and_both_families(
    http_error: HttpError, alaqan_class: type[HttpError], http_base: type[HttpError]
) -> None:
    converted = as_alaqan_error(http_error)

    assert type(converted) is alaqan_class
    assert isinstance(converted, http_base) and isinstance(converted, AlaqanError)
    assert (converted.args, converted.__dict__) == (http_error.args, http_error.__dict__)


@pytest.mark.parametrize("alaqan_class", [AlaqanRateLimitedError, AlaqanServerError])
def test_alaqan_unavailable_keeps_its_old_attribute_names(alaqan_class: type[UnavailableError]) -> None:
    error = alaqan_class("x", status=503, what="byDate 2024-03-01", attempts=7, last_error="HTTP 503")

    assert isinstance(error, AlaqanUnavailableError)
    assert (error.what, error.last_status, error.last_error, error.attempts) == (
        "byDate 2024-03-01",
        503,
        "HTTP 503",
        7,
    )


def test_errors_without_an_alaqan_counterpart_pass_through() -> None:
    error = CircuitOpenError("open", reason="ban")

    assert as_alaqan_error(error) is error


def test_parser_style_construction_still_works() -> None:
    error = AlaqanPayloadError("byDate 2024-03-01: response body is not valid JSON")

    assert (str(error), error.status, error.what) == (
        "byDate 2024-03-01: response body is not valid JSON",
        None,
        "",
    )

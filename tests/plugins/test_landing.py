"""Landing area: content-addressed, idempotent storage of raw responses, and reading them back."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import pytest

from elt_platform.landing import land, read_landed

KEY = "byDate/visit_date=2025-03-03"
BODY = b'{"data":{"910505350319":[{"event":"entry","time":"09:00:15"}]}}'


def _path(uri: str) -> Path:
    assert uri.startswith("file://"), uri
    return Path(uri[len("file://") :])


def test_uri_is_source_key_and_content_hash_under_the_landing_root(lakehouse_env):
    uri = land(BODY, source="alaqan", key=KEY)
    digest = hashlib.sha256(BODY).hexdigest()[:16]
    assert uri == f"{lakehouse_env.landing_uri}/alaqan/{KEY}/{digest}.json.gz"


def test_file_holds_the_gzipped_body(lakehouse_env):
    path = _path(land(BODY, source="alaqan", key=KEY))
    assert gzip.decompress(path.read_bytes()) == BODY


def test_explicit_base_uri_and_extension(lakehouse_env, tmp_path):
    base = (tmp_path / "elsewhere").as_uri()
    uri = land(b"<xml/>", source="commerceml", key="import", extension="xml", base_uri=base + "/")
    assert uri == f"{base}/commerceml/import/{hashlib.sha256(b'<xml/>').hexdigest()[:16]}.xml.gz"
    assert _path(uri).is_file()


def test_landing_the_same_bytes_again_writes_nothing(lakehouse_env):
    first = land(BODY, source="alaqan", key=KEY)
    path = _path(first)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))

    assert land(BODY, source="alaqan", key=KEY) == first
    assert path.stat().st_mtime_ns == 1_000_000_000
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_a_changed_response_is_kept_beside_the_earlier_one(lakehouse_env):
    first = _path(land(BODY, source="alaqan", key=KEY))
    second = _path(land(BODY.replace(b"09:00:15", b"09:00:16"), source="alaqan", key=KEY))
    assert first != second
    assert sorted(first.parent.iterdir()) == sorted([first, second])


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(BODY, id="json"),
        pytest.param('{"name":"Әлия Жұмабекқызы"}'.encode(), id="utf8"),
        pytest.param(bytes(range(256)) * 4096, id="binary-1MiB"),
    ],
)
def test_round_trip(lakehouse_env, body):
    assert read_landed(land(body, source="alaqan", key=KEY)) == body

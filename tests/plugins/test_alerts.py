"""Platform alerts: always logged; also POSTed to the configured webhook, whose secret path never shows."""

from __future__ import annotations

import json
import logging

import pytest
from tests.plugins.http.scripted_server import Reply, ScriptedServer

from elt_platform import alerts
from elt_platform.alerts import PlatformNotifier
from elt_platform.reverse_etl.runs import ErrorRateExceeded

SECRET = "T000/B000/XXXXsecretXXXX"


class _TI:
    dag_id, task_id, run_id = "reverse_etl_bitrix24", "alert", "scheduled__2026-12-01"


def _context(error: str) -> dict:
    return {"ti": _TI(), "run_id": _TI.run_id, "exception": RuntimeError(error)}


def test_an_alert_is_logged_and_posted_to_the_webhook_without_its_secret(monkeypatch, caplog):
    with ScriptedServer() as server:
        server.script(Reply(200, b"ok", content_type="text/plain"))
        monkeypatch.setenv("ELT_ALERT_WEBHOOK_URL", f"{server.url}services/{SECRET}")
        with caplog.at_level(logging.INFO):
            PlatformNotifier().notify(_context("Bitrix24: 3 of 20 operations failed in the last hour"))

    (request,) = server.received
    assert json.loads(request.body) == {
        "text": "ALERT reverse_etl_bitrix24.alert (scheduled__2026-12-01): "
        "Bitrix24: 3 of 20 operations failed in the last hour"
    }
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR][0].startswith("ALERT ")
    assert SECRET not in caplog.text and "XXXXsecretXXXX" not in caplog.text


def test_a_failing_channel_does_not_hide_the_alert(monkeypatch, caplog):
    monkeypatch.setenv("ELT_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/services/" + SECRET)  # nothing listens
    with caplog.at_level(logging.INFO):
        PlatformNotifier().notify(_context("boom"))
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors[0] == "ALERT reverse_etl_bitrix24.alert (scheduled__2026-12-01): boom"
    assert any(e.startswith("alert channel _webhook failed") for e in errors)
    assert SECRET not in caplog.text


@pytest.mark.parametrize("variable", ["ELT_ALERT_SLACK_CONN_ID", "ELT_ALERT_EMAIL"])
def test_an_unavailable_provider_is_reported_not_raised(monkeypatch, caplog, variable):
    monkeypatch.setenv(variable, "x")
    with caplog.at_level(logging.INFO):
        PlatformNotifier().notify(_context("boom"))
    assert "ALERT reverse_etl_bitrix24.alert" in caplog.text


@pytest.mark.parametrize(
    ("exception", "sent"),
    [
        # The check alerted this breach when it opened; failing again on every run must not repeat it.
        (ErrorRateExceeded("Bitrix24: 3 of 20 operations failed in the last hour"), 0),
        (RuntimeError("state store unreachable"), 1),
    ],
)
def test_the_failure_notifier_leaves_open_breaches_to_their_check(monkeypatch, exception, sent):
    texts: list[str] = []
    monkeypatch.setattr(alerts, "_channels", lambda: [lambda context, text: texts.append(text)])
    PlatformNotifier().notify({"ti": _TI(), "run_id": _TI.run_id, "exception": exception})
    assert len(texts) == sent

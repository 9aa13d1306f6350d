"""Where platform alerts go: Airflow notifiers built from settings (log always; webhook/Slack/e-mail opt-in).

Alerts are events that mean a person should look, each at most once per breach
(:mod:`elt_platform.state.breaches`): the reverse-ETL error rate over 10 % in an hour
(:func:`elt_platform.reverse_etl.runs.check_error_rate`, which also fails its task while the breach
lasts) and a stale source (:mod:`elt_platform.freshness`) are sent by :func:`send_alert` from the
checking task when the breach opens. The ``on_failure_callback`` of :func:`platform_notifiers` alerts
any other failure of an alert task (the check itself broke) and skips
:class:`~elt_platform.state.breaches.OpenBreach`, already alerted. Settings (``.env``):

* ``ELT_ALERT_WEBHOOK_URL`` — POST a JSON ``{"text": …}`` (Slack/Teams/Mattermost incoming webhooks
  accept it) through the platform's HTTP layer; the URL is a secret and never logged;
* ``ELT_ALERT_SLACK_CONN_ID`` — Airflow's ``SlackNotifier`` (needs ``apache-airflow-providers-slack``);
* ``ELT_ALERT_EMAIL`` — Airflow's ``SmtpNotifier`` to these comma-separated addresses (needs the SMTP
  provider and an ``smtp_default`` connection).

The settings are read when an alert fires, not when a DAG file is parsed.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from airflow.sdk import Context
from airflow.sdk.bases.notifier import BaseNotifier

log = logging.getLogger(__name__)


def _message(context: Context) -> str:
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    run_id = context.get("run_id") or getattr(ti, "run_id", "?")
    exception = context.get("exception")
    return f"ALERT {dag_id}.{task_id} ({run_id}): {exception or 'failed'}"


class PlatformNotifier(BaseNotifier):
    """Logs every alert, then forwards it to the channels configured in the environment."""

    template_fields = ()

    def notify(self, context: Context) -> None:
        from elt_platform.state.breaches import OpenBreach

        exception = context.get("exception")
        if isinstance(exception, OpenBreach):
            # Alerted by the check when the breach opened; every later failing run would repeat it.
            log.info("not alerted again (alerted when the breach opened): %s", exception)
            return
        send_alert(_message(context), context)


def send_alert(text: str, context: Context | None = None) -> None:
    """Log ``text`` as an alert and forward it to every configured channel.

    For rules alerted once per breach by their check (the task passes its own context for the
    channels that template with it).

    Args:
        text: the alert, one line without personal data.
        context: the running task's context (channels that need one get an empty context otherwise).
    """
    log.error("%s", text)
    for channel in _channels():
        try:
            channel(context if context is not None else Context(), text)
        except Exception as exc:  # an alert channel must never hide the alert itself
            log.error("alert channel %s failed: %s", getattr(channel, "__name__", channel), exc)


def _webhook(context: Context, text: str) -> None:
    from urllib.parse import urlsplit

    from elt_platform.http.auth import NoAuth
    from elt_platform.http.client import HttpClient

    url = os.environ["ELT_ALERT_WEBHOOK_URL"]

    class _SecretPath(NoAuth):
        # An incoming-webhook URL carries its token in the path: the redactor masks it everywhere.
        def secrets(self) -> tuple[str, ...]:
            parts = urlsplit(url)
            return tuple(p for p in (parts.path.strip("/"), parts.query) if p)

    with HttpClient(url, auth=_SecretPath(), account=None, max_retries=2) as client:
        client.request("POST", "", json={"text": text})


def _slack(context: Context, text: str) -> None:
    from airflow.providers.slack.notifications.slack import SlackNotifier

    SlackNotifier(slack_conn_id=os.environ["ELT_ALERT_SLACK_CONN_ID"], text=text).notify(context)


def _email(context: Context, text: str) -> None:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    to = [a.strip() for a in os.environ["ELT_ALERT_EMAIL"].split(",") if a.strip()]
    SmtpNotifier(to=to, subject=text[:120], html_content=f"<pre>{text}</pre>").notify(context)


def _channels() -> list[Any]:
    configured = {
        "ELT_ALERT_WEBHOOK_URL": _webhook,
        "ELT_ALERT_SLACK_CONN_ID": _slack,
        "ELT_ALERT_EMAIL": _email,
    }
    return [channel for variable, channel in configured.items() if os.environ.get(variable)]


def platform_notifiers() -> list[BaseNotifier]:
    """The notifiers a failing alert task calls (one: it fans out to the configured channels).

    A failure raising :class:`~elt_platform.state.breaches.OpenBreach` is not alerted again.
    """
    return [PlatformNotifier()]

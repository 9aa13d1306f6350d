"""Every 15 minutes: is each source fresh against its schedule? A stale source alerts once per breach.

A source is stale (red on the Platform page) when its newest load that passed the bronze quality gate
is older than twice its schedule's period plus grace (``elt_platform/freshness.py``). The alert goes
through the platform notifiers (log; webhook/Slack/e-mail when configured in ``.env``) when the breach
opens, and again only after the source has recovered and gone stale anew.
"""

from datetime import datetime, timedelta

from airflow.sdk import dag, get_current_context, task


@dag(
    dag_id="check_freshness",
    schedule="*/15 * * * *",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "data-platform", "retries": 1, "retry_delay": timedelta(minutes=1)},
    tags=["maintenance", "alerts"],
    doc_md=__doc__,
)
def check_freshness():
    @task
    def check_sources() -> dict:
        from elt_platform.alerts import send_alert
        from elt_platform.freshness import check_freshness

        context = get_current_context()
        return check_freshness(lambda text: send_alert(text, context))

    check_sources()


check_freshness()

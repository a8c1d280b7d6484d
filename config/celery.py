"""Celery: JSON only, late acks, prefetch 1, named queues (default, runs, ingest)."""

import os

from celery import Celery
from celery.signals import task_prerun, worker_process_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("AGNO_TELEMETRY", "false")

app = Celery("agentos")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def _fresh_connections(task: object = None, **kwargs: object) -> None:
    """What Django does at the start of a request: drop connections that are broken or past
    CONN_MAX_AGE, keep the rest (Celery's own per-task close is turned off by CELERY_DB_REUSE_MAX).
    Not for eager tasks: they run inside the caller's transaction."""
    from django.db import close_old_connections

    if getattr(getattr(task, "request", None), "is_eager", False):
        return

    close_old_connections()


@worker_ready.connect
@worker_process_init.connect
def _settle_heap(**kwargs: object) -> None:
    from config.heap import settle

    settle()

"""Celery: JSON only, late acks, prefetch 1, named queues (default, runs, ingest)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("AGNO_TELEMETRY", "false")

app = Celery("agentos")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

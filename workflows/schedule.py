"""Schedule triggers: a cron line and a timezone, kept as django-celery-beat periodic tasks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from workflows.models import Workflow

TASK_NAME = "workflows.tasks.scheduled_run"


def _fields(cron: str) -> list[str]:
    return cron.split()


def cron_error(cron: str, tz: str) -> str | None:
    """None when `cron` (five fields: minute hour day month weekday) and the timezone are valid."""
    from celery.schedules import crontab

    parts = _fields(cron)
    if len(parts) != 5:
        return "A schedule is a cron line of five fields: minute hour day-of-month month day-of-week."
    try:
        crontab(
            minute=parts[0],
            hour=parts[1],
            day_of_month=parts[2],
            month_of_year=parts[3],
            day_of_week=parts[4],
        )
    except (ValueError, TypeError, IndexError) as exc:
        return f"The cron line {cron!r} is not valid: {exc}."
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return f"Unknown timezone {tz!r}."
    return None


def task_name(workflow_id: int, node_id: str) -> str:
    return f"workflow:{workflow_id}:{node_id}"


def sync(workflow: Workflow, schedules: list[dict[str, Any]]) -> None:
    """Make the periodic tasks match the published schedule triggers (and none when not active)."""
    import json

    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    wanted = {task_name(workflow.pk, s["node"]): s for s in schedules}
    PeriodicTask.objects.filter(name__startswith=f"workflow:{workflow.pk}:").exclude(name__in=wanted).delete()
    for name, s in wanted.items():
        minute, hour, day, month, weekday = _fields(s["cron"])
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_month=day,
            month_of_year=month,
            day_of_week=weekday,
            timezone=s.get("timezone") or "UTC",
        )
        PeriodicTask.objects.update_or_create(
            name=name,
            defaults={
                "task": TASK_NAME,
                "crontab": crontab,
                "interval": None,
                "args": json.dumps([workflow.pk, s["node"]]),
                "enabled": True,
                "queue": "runs",
            },
        )

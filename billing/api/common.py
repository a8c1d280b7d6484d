"""Shared plumbing for the billing API: roles, service errors and date ranges.

Reads need any membership; buying credits and changing the plan need an admin or the owner."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from accounts.models import Role
from accounts.permissions import OrgContext
from agents.api.common import ERRORS, acting_user, call, doc, org_for, paginate  # noqa: F401 - shared helpers
from config.api import ErrorEnvelopeSerializer

ERRORS_PAY = {
    **ERRORS,
    409: ErrorEnvelopeSerializer,
    502: ErrorEnvelopeSerializer,
    503: ErrorEnvelopeSerializer,
}
MAX_RANGE_DAYS = 366
DATE_PARAMS = [
    OpenApiParameter("start_date", str, description="First day, YYYY-MM-DD (inclusive)."),
    OpenApiParameter("end_date", str, description="Last day, YYYY-MM-DD (inclusive)."),
]


def reader(request: Request) -> OrgContext:
    return org_for(request, Role.VIEWER)


def payer(request: Request) -> OrgContext:
    """Spending the organization's money: admins and the owner."""
    return org_for(request, Role.ADMIN)


def _day(request: Request, name: str) -> date | None:
    raw = (request.query_params.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        raise ValidationError({name: ["Use a date like 2025-01-31."]})


def date_range(request: Request, *, default_days: int | None = 30) -> tuple[date | None, date | None]:
    """start_date and end_date (inclusive days). With default_days, a missing range is the last N days."""
    start, end = _day(request, "start_date"), _day(request, "end_date")
    if default_days is not None:
        end = end or timezone.localdate()
        start = start or end - timedelta(days=default_days - 1)
    if start and end:
        if start > end:
            raise ValidationError({"start_date": ["Must not be after end_date."]})
        if (end - start).days >= MAX_RANGE_DAYS:
            raise ValidationError({"start_date": [f"The range is at most {MAX_RANGE_DAYS} days."]})
    return start, end


def full_range(request: Request, days: int = 30) -> tuple[date, date]:
    """Like date_range, with both ends filled in: the last `days` days by default."""
    start, end = date_range(request, default_days=days)
    end = end or timezone.localdate()
    return start or end - timedelta(days=days - 1), end


def day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def filter_days(queryset: Any, start: date | None, end: date | None) -> Any:
    if start:
        queryset = queryset.filter(created_at__gte=day_start(start))
    if end:
        queryset = queryset.filter(created_at__lt=day_start(end + timedelta(days=1)))
    return queryset


def query_id(request: Request, name: str) -> int | None:
    raw = (request.query_params.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise ValidationError({name: ["Must be a positive integer."]})
    return int(raw)

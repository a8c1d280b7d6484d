"""Usage: the org's usage entries in a date range, added up by day, agent, model and user, for the
charts of the billing page (embedded in it, and as JSON at /billing/usage.json)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from accounts.decorators import org_role_required
from accounts.types import AuthedHttpRequest
from billing.forms import UsageRangeForm, today
from billing.ledger import q
from billing.models import CreditTransaction
from billing.views.common import day_bounds

TOP = 10  # rows a breakdown shows; the rest is added up as one


def _credits(amount: Decimal | None) -> Decimal:
    """Usage entries are negative: the credits spent are the opposite."""
    return q(-(amount or Decimal(0)))


def _breakdown(rows: list[tuple[str, Decimal]], rest_label: str) -> dict[str, list[Any]]:
    rows = sorted(rows, key=lambda r: r[1], reverse=True)
    if len(rows) > TOP:
        rest = sum((r[1] for r in rows[TOP - 1 :]), Decimal(0))
        rows = [*rows[: TOP - 1], (rest_label, rest)]
    return {"labels": [r[0] for r in rows], "credits": [float(r[1]) for r in rows]}


def usage_summary(org_id: int, start: date, end: date) -> dict[str, Any]:
    """Credits spent between `start` and `end` (both included), in total and broken down."""
    usage = CreditTransaction.objects.for_org(org_id).filter(
        type=CreditTransaction.Type.USAGE, **day_bounds(start, end)
    )
    totals = usage.aggregate(credits=Sum("amount"), entries=Count("id"))

    per_day = {
        row["day"]: _credits(row["credits"])
        for row in usage.annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .order_by()
        .values("day")
        .annotate(credits=Sum("amount"))
    }
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]

    def grouped(*fields: str) -> list[dict[str, Any]]:
        return list(usage.order_by().values(*fields).annotate(credits=Sum("amount")))

    agents = [
        (row["agent__name"] or "No agent (embeddings, tools)", _credits(row["credits"]))
        for row in grouped("agent_id", "agent__name")
    ]
    models = [(row["model"] or "Unknown model", _credits(row["credits"])) for row in grouped("model")]
    users = [
        (row["user__email"] or "No user (API key, schedule or webhook)", _credits(row["credits"]))
        for row in grouped("user_id", "user__email")
    ]
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "total": float(_credits(totals["credits"])),
        "entries": totals["entries"],
        "by_day": {
            "labels": [d.isoformat() for d in days],
            "credits": [float(per_day.get(d, Decimal(0))) for d in days],
        },
        "by_agent": _breakdown(agents, "Other agents"),
        "by_model": _breakdown(models, "Other models"),
        "by_user": _breakdown(users, "Other people"),
    }


def usage_form(request: HttpRequest) -> tuple[UsageRangeForm, date, date]:
    form = UsageRangeForm(request.GET or None)
    start, end = form.window()  # never None: the form has a default range
    return form, start or today(), end or today()


@org_role_required()
def usage_json(request: AuthedHttpRequest) -> JsonResponse:
    form, start, end = usage_form(request)
    if form.is_bound and not form.is_valid():
        return JsonResponse(
            {"detail": "Check the dates.", "field_errors": form.errors.get_json_data()}, status=400
        )
    return JsonResponse(usage_summary(request.org.pk, start, end))

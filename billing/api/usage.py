"""/api/v1/billing/usage: credits spent, by day, model, agent, user or workflow (from the ledger's
usage entries, so it is exactly what was charged)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, Sum
from django.db.models.functions import TruncDate
from drf_spectacular.utils import OpenApiParameter
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Membership
from agents.models import Agent
from billing.api.common import DATE_PARAMS, ERRORS, doc, filter_days, full_range, query_id, reader
from billing.ledger import q
from billing.models import CreditTransaction
from billing.serializers import GROUPS, BillingUsageOutput
from config.api import ApiError
from workflows.models import Workflow

# group -> (the values() to group on, the label)
GROUPING: dict[str, tuple[list[str], Any]] = {
    "day": (["day"], lambda row: row["day"].isoformat()),
    "model": (["model"], lambda row: row["model"] or "(no model)"),
    "agent": (["agent_id", "agent__name"], lambda row: row["agent__name"] or "(no agent)"),
    "user": (
        ["user_id", "user__name", "user__email"],
        lambda row: row["user__name"] or row["user__email"] or "(nobody)",
    ),
    "workflow": (["workflow_id", "workflow__name"], lambda row: row["workflow__name"] or "(no workflow)"),
}


def _key(group: str, row: dict[str, Any]) -> str:
    value = row[GROUPING[group][0][0]]
    if group == "day":
        return value.isoformat()
    return "" if value is None else str(value)


@doc(
    responses={200: BillingUsageOutput, **ERRORS},
    parameters=[
        *DATE_PARAMS,
        OpenApiParameter("group_by", str, enum=GROUPS, description="Default: day."),
        OpenApiParameter("model", str, description="Only this model."),
        OpenApiParameter("agent", int, description="Only this agent (id)."),
        OpenApiParameter("user", int, description="Only this member (user id)."),
        OpenApiParameter("workflow", int, description="Only this workflow (id)."),
    ],
    tags=["billing"],
    description="Credits spent in a date range (default: the last 30 days, at most 366), grouped. "
    "By day, every day of the range is listed, with zeros.",
)
@api_view(["GET"])
def usage(request: Request) -> Response:
    ctx = reader(request)
    group = request.query_params.get("group_by") or "day"
    if group not in GROUPS:
        raise ValidationError({"group_by": [f"Use one of {', '.join(GROUPS)}."]})
    start, end = full_range(request)
    queryset = filter_days(
        CreditTransaction.objects.for_org(ctx.org).filter(type=CreditTransaction.Type.USAGE), start, end
    )
    model = (request.query_params.get("model") or "").strip()[:160]
    if model:
        queryset = queryset.filter(model=model)
    # Filters by id go through the organization: someone else's agent, member or workflow is a 404.
    agent_id = query_id(request, "agent")
    if agent_id is not None:
        if not Agent.objects.for_org(ctx.org).filter(pk=agent_id).exists():
            raise ApiError(404, "not_found", "No such agent in this organization.")
        queryset = queryset.filter(agent_id=agent_id)
    user_id = query_id(request, "user")
    if user_id is not None:
        if not Membership.objects.filter(organization=ctx.org, user_id=user_id).exists():
            raise ApiError(404, "not_found", "No such member in this organization.")
        queryset = queryset.filter(user_id=user_id)
    workflow_id = query_id(request, "workflow")
    if workflow_id is not None:
        if not Workflow.objects.for_org(ctx.org).filter(pk=workflow_id).exists():
            raise ApiError(404, "not_found", "No such workflow in this organization.")
        queryset = queryset.filter(workflow_id=workflow_id)

    fields, label = GROUPING[group]
    if group == "day":
        queryset = queryset.annotate(day=TruncDate("created_at"))
    grouped = (
        queryset.order_by()
        .values(*fields)
        .annotate(
            spent=Sum(-F("amount")),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            entries=Count("id"),
        )
    )
    rows = [
        {
            "key": _key(group, row),
            "label": label(row),
            "credits": q(row["spent"] or 0),
            "input_tokens": row["input_tokens"] or 0,
            "output_tokens": row["output_tokens"] or 0,
            "entries": row["entries"],
        }
        for row in grouped
    ]
    if group == "day":
        rows = _every_day(rows, start, end)
    else:
        rows.sort(key=lambda r: (-r["credits"], r["label"]))
    total = q(sum((r["credits"] for r in rows), Decimal(0)))
    return Response(
        BillingUsageOutput(
            {"start_date": start, "end_date": end, "group_by": group, "total_credits": total, "rows": rows}
        ).data
    )


def _every_day(rows: list[dict[str, Any]], start: Any, end: Any) -> list[dict[str, Any]]:
    by_day = {r["key"]: r for r in rows}
    out, day = [], start
    while day <= end:
        key = day.isoformat()
        out.append(
            by_day.get(key)
            or {
                "key": key,
                "label": key,
                "credits": q(0),
                "input_tokens": 0,
                "output_tokens": 0,
                "entries": 0,
            }
        )
        day += timedelta(days=1)
    return out

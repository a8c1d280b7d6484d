"""Plan limits: how many agents, workflows, MB of documents, integrations, API keys and runs a month
an organization's plan allows, and the check every creating service calls first.

`check()` refuses with a `PlanLimitReached` (a `ServiceError`, 402 `plan_limit`), so the API and the
pages show the same message with its upgrade link. A limit that is missing or null is unlimited.

Called inside the transaction that creates the resource, `check()` holds a transaction-level advisory
lock on (resource, organization) until the commit, so two requests cannot both take the last slot.
"""

from __future__ import annotations

import zlib
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from accounts.services import ServiceError
from billing.ledger import account_for

RESOURCES: dict[str, str] = {
    "agents": "agents",
    "workflows": "workflows",
    "kb_storage_mb": "MB of knowledge-base documents",
    "integrations": "integration secrets",
    "api_keys": "active API keys",
    "runs_per_month": "agent runs a month",
}
MB = 1024 * 1024


def upgrade_url() -> str:
    return reverse("billing_plans")


class PlanLimitReached(ServiceError):
    """A plan limit refused a creation. Carries what a page needs to offer the upgrade."""

    def __init__(self, *, plan: str, resource: str, limit: int, used: float | int, adding: float | int):
        self.plan, self.resource, self.limit, self.used = plan, resource, limit, used
        self.upgrade_url = upgrade_url()
        super().__init__(
            _message(plan, resource, limit, used, adding, self.upgrade_url), code="plan_limit", status=402
        )


def _number(value: float | int) -> str:
    return f"{value:,.1f}".removesuffix(".0") if isinstance(value, float) else f"{value:,}"


def _message(plan: str, resource: str, limit: int, used: float | int, adding: float | int, url: str) -> str:
    label = RESOURCES[resource]
    if resource == "kb_storage_mb":
        now = f"this would bring the organization to {_number(round(used + adding, 1))} MB"
        fix = "Delete documents you no longer need, or upgrade"
    elif resource == "runs_per_month":
        now = f"this organization has used {_number(used)} this month"
        fix = "Runs are available again next month, or upgrade"
    else:
        now = f"this organization has {_number(used)}"
        fix = "Archive or delete one you no longer need, or upgrade"
    return f"The {plan} plan allows {limit:,} {label} and {now}. {fix} your plan: {url}"


def month_start(now: datetime | None = None) -> datetime:
    now = timezone.localtime(now or timezone.now(), timezone.get_default_timezone())
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def usage(org: Any, resource: str) -> float | int:
    """What the organization uses of a resource now (MB for kb_storage_mb, a count otherwise)."""
    org_id = org if isinstance(org, int) else org.pk
    if resource == "agents":
        from agents.models import Agent

        return Agent.objects.for_org(org_id).not_archived().count()
    if resource == "workflows":
        from workflows.models import Workflow

        return Workflow.objects.for_org(org_id).exclude(status=Workflow.Status.ARCHIVED).count()
    if resource == "kb_storage_mb":
        from knowledge.models import Document

        total = Document.objects.for_org(org_id).aggregate(total=Sum("size_bytes"))["total"] or 0
        return total / MB
    if resource == "integrations":
        from integrations.models import Secret

        return Secret.objects.for_org(org_id).count()
    if resource == "api_keys":
        from accounts.models import ApiKey

        return ApiKey.objects.for_org(org_id).active().count()
    if resource == "runs_per_month":
        from agents.models import AgentRun

        return AgentRun.objects.for_org(org_id).filter(created_at__gte=month_start()).count()
    raise ValueError(f"unknown plan resource {resource!r}")


def _over(used: float | int, adding: float | int, limit: int) -> bool:
    # Adding nothing (a URL whose size is not known yet) still needs room left.
    return used + adding > limit or (adding == 0 and used >= limit)


def _lock(org_id: int, resource: str) -> None:
    """Serialize creations of one resource in one organization until the transaction ends (a no-op
    outside a transaction, where there is nothing to hold it for)."""
    if not connection.in_atomic_block:
        return
    space = zlib.crc32(f"plan-limit:{resource}".encode()) & 0x7FFFFFFF
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [space, org_id])


def check(org: Any, resource: str, *, adding: float | int = 1, account: Any = None) -> None:
    """Refuse (PlanLimitReached, 402) when creating `adding` more of a resource would pass the plan's
    limit. kb_storage_mb counts in MB. Call it inside the transaction that creates the resource.
    `account`: the organization's BillingAccount with its plan, when the caller has it loaded."""
    if resource not in RESOURCES:
        raise ValueError(f"unknown plan resource {resource!r}")
    if account is None:
        account = account_for(org)
    limit = account.plan.limit(resource)
    if limit is None:
        return
    _lock(account.organization_id, resource)
    used = usage(account.organization_id, resource)
    if _over(used, adding, limit):
        raise PlanLimitReached(
            plan=account.plan.name, resource=resource, limit=limit, used=used, adding=adding
        )


def allowed(org: Any, resource: str, *, adding: float | int = 1) -> bool:
    try:
        check(org, resource, adding=adding)
    except PlanLimitReached:
        return False
    return True


def snapshot(org: Any) -> list[dict[str, Any]]:
    """Every resource with its limit (None = unlimited), what is used and what is left: for the
    billing page and `GET /api/v1/billing/subscription/limits`."""
    account = account_for(org)
    rows = []
    for resource, label in RESOURCES.items():
        limit = account.plan.limit(resource)
        used = usage(account.organization_id, resource)
        if isinstance(used, float):
            used = round(used, 2)
        rows.append(
            {
                "resource": resource,
                "label": label,
                "limit": limit,
                "used": used,
                "remaining": None if limit is None else max(limit - used, 0),
            }
        )
    return rows

"""Helpers shared by the billing pages: who may pay, whether payments work, date windows, members."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from types import ModuleType
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import Role, User, role_at_least
from accounts.types import AuthedHttpRequest
from billing.models import BillingAccount, CreditTransaction

NOT_CONFIGURED = "Payments are not configured"


def can_manage(request: AuthedHttpRequest) -> bool:
    """Admins and owners buy credits and change the plan; members and viewers only look."""
    return bool(request.org_role and role_at_least(request.org_role, Role.ADMIN))


def payments_module() -> ModuleType | None:
    """`billing.payments` (the Stripe side), or None while it is not there."""
    try:
        from billing import payments
    except ImportError:
        return None
    return payments


def payments_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY) and payments_module() is not None


def day_bounds(start: date | None, end: date | None) -> dict[str, datetime]:
    """created_at lookups for whole days from `start` to `end`, both included, in the site's zone."""
    tz = timezone.get_current_timezone()
    lookups: dict[str, datetime] = {}
    if start:
        lookups["created_at__gte"] = datetime.combine(start, time.min, tzinfo=tz)
    if end:
        lookups["created_at__lt"] = datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz)
    return lookups


def org_users(account: BillingAccount) -> QuerySet[User]:
    """People the org's ledger may name: its members, and anyone who has an entry (a former member)."""
    org_id = account.organization_id
    spent = CreditTransaction.objects.for_org(org_id).exclude(user=None).values("user_id")
    return (
        User.objects.filter(Q(memberships__organization_id=org_id) | Q(pk__in=spent))
        .distinct()
        .order_by("email")
    )


def querystring(params: dict[str, Any]) -> str:
    """A query string of the filters that are set (for pagination links and the CSV export)."""
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in params.items() if v not in (None, "")})

"""Billing tasks: the alerts after a debit, and the beat jobs (expiry of free credits, the monthly
allocation of paid plans, the nightly reconciliation).

Every job is safe to run twice: its entries carry idempotency keys (`expiry:<grant id>`,
`allocation:<org id>:<YYYY-MM>`), and a beat job takes a cache lock so two beats never overlap.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.core.mail import mail_admins, send_mail
from django.db import transaction
from django.db.models import CharField, Exists, OuterRef, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from billing import caps, ledger
from billing.models import BillingAccount, CreditTransaction

logger = logging.getLogger(__name__)
T = CreditTransaction.Type
LIVE_SUBSCRIPTION = ("active", "trialing")


@contextmanager
def _singleton(name: str, timeout: int = 3600) -> Iterator[bool]:
    key = f"billing:beat:{name}"
    acquired = cache.add(key, "1", timeout)
    try:
        yield acquired
    finally:
        if acquired:
            cache.delete(key)


def _beat(name: str, job: Callable[[], Any], idle: Any) -> Any:
    with _singleton(name) as acquired:
        if not acquired:
            logger.info("billing %s is already running; skipped", name)
            return idle
        return job()


# ---------------------------------------------------------------- alerts


@shared_task(ignore_result=True)
def check_alerts(org_id: int) -> list[str]:
    """Queued by the ledger after every debit."""
    return caps.alerts_check(org_id=org_id)


# ---------------------------------------------------------------- expiry


def credits_expire(now: datetime | None = None, organization_id: int | None = None) -> int:
    """Take back what is left of every lapsed grant (of one organization, or all): an `expiry` entry
    for min(grant, balance). A lapsed grant with nothing left still gets its (zero) entry, so it is
    handled once."""
    now = now or timezone.now()
    handled = CreditTransaction.objects.filter(
        organization_id=OuterRef("organization_id"),
        idempotency_key=Concat(Value("expiry:"), Cast(OuterRef("pk"), output_field=CharField())),
    )
    grants = (
        CreditTransaction.objects.filter(type=T.GRANT, amount__gt=0, expires_at__lte=now)
        .annotate(handled=Exists(handled))
        .filter(handled=False)
        .order_by("expires_at", "pk")
    )
    if organization_id is not None:
        grants = grants.filter(organization_id=organization_id)
    count = 0
    for grant in grants.iterator():
        ledger.post(
            org=grant.organization_id,
            type=T.EXPIRY,
            amount=-grant.amount,
            key=f"expiry:{grant.pk}",
            description=f"Expired: {grant.description or 'granted credits'}",
            allow_partial=True,
        )
        count += 1
    return count


@shared_task(ignore_result=True)
def expire_credits() -> int:
    """Beat, hourly."""
    return _beat("expire_credits", credits_expire, 0)


# ------------------------------------------------------------ allocation


def add_months(value: datetime, months: int = 1) -> datetime:
    index = value.month - 1 + months
    year, month = value.year + index // 12, index % 12 + 1
    return value.replace(year=year, month=month, day=min(value.day, calendar.monthrange(year, month)[1]))


def _allocation_due(account: BillingAccount, now: datetime) -> datetime | None:
    """The start of the period an allocation is due for, or None.

    A monthly Stripe subscription renews at `current_period_end`; everything else (a yearly
    subscription, a paid plan that staff set in the admin) gets its credits a month after the last."""
    if account.stripe_subscription_id:
        if account.subscription_status not in LIVE_SUBSCRIPTION:
            return None
        if account.interval == BillingAccount.Interval.MONTH:
            return None  # Stripe's paid renewal invoice grants these (billing.stripe_sync), once per invoice
    if account.last_allocation_at is None:
        return now
    due = add_months(account.last_allocation_at)
    return due if due <= now else None


def allocation_key(org_id: int, period_start: datetime) -> str:
    return f"allocation:{org_id}:{period_start:%Y-%m}"


def credits_allocate(now: datetime | None = None) -> int:
    """Grant the monthly credits of every paid plan whose renewal is due and move its period on."""
    now = now or timezone.now()
    candidates = BillingAccount.objects.filter(plan__monthly_credits__gt=0).values_list("pk", flat=True)
    count = 0
    for account_id in list(candidates):
        with transaction.atomic():
            account = (
                BillingAccount.objects.select_for_update(of=("self",))
                .select_related("plan")
                .filter(pk=account_id)
                .first()
            )
            if account is None or account.plan.monthly_credits <= 0:
                continue
            period_start = _allocation_due(account, now)
            if period_start is None:
                continue
            ledger.post(
                org=account.organization_id,
                type=T.GRANT,
                amount=account.plan.monthly_credits,
                key=allocation_key(account.organization_id, period_start),
                description=f"{account.plan.name} plan: monthly credits for {period_start:%B %Y}",
            )
            account.last_allocation_at = now
            fields = ["last_allocation_at", "updated_at"]
            if account.current_period_end and account.current_period_end <= now:
                while account.current_period_end <= now:
                    step = 12 if account.interval == BillingAccount.Interval.YEAR else 1
                    account.current_period_end = add_months(account.current_period_end, step)
                fields.append("current_period_end")
            account.save(update_fields=fields)
            count += 1
    return count


@shared_task(ignore_result=True)
def allocate_monthly() -> int:
    """Beat, hourly."""
    return _beat("allocate_monthly", credits_allocate, 0)


# -------------------------------------------------------- reconciliation


def _report_drifts(drifts: list[dict[str, Any]]) -> None:
    lines = [
        f"org {d['organization_id']}: cached {d['cached']}, entries sum to {d['ledger']}" for d in drifts
    ]
    subject = f"Billing reconciliation: {len(drifts)} balance(s) drifted from the ledger"
    body = "The cached balance differs from the sum of ledger entries:\n\n" + "\n".join(lines) + "\n"
    if settings.ADMINS:
        mail_admins(subject, body, fail_silently=True)
        return
    from accounts.models import User

    staff = list(
        User.objects.filter(is_superuser=True, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    if staff:
        send_mail(f"{settings.EMAIL_SUBJECT_PREFIX}{subject}", body, None, staff, fail_silently=True)


def ledger_reconcile() -> list[dict[str, Any]]:
    drifts = ledger.reconcile()
    if drifts:
        logger.error("billing reconciliation: %d balance(s) drifted: %s", len(drifts), drifts)
        _report_drifts(drifts)
    else:
        logger.info("billing reconciliation: every balance equals its ledger")
    return drifts


@shared_task(ignore_result=True)
def reconcile() -> list[dict[str, Any]]:
    """Beat, nightly. Returns the drifts (none is good)."""
    return _beat("reconcile", ledger_reconcile, [])

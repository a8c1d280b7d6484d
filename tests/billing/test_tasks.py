"""Billing tasks: alerts after a debit (through a real worker), expiry of lapsed grants, the monthly
allocation of paid plans, and the nightly reconciliation that reports drift. Each safe to run twice."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db.models import F
from django.utils import timezone

from accounts.services import organization_create
from billing import ledger, tasks
from billing.models import BillingAccount, CreditTransaction, Plan
from community.models import Notification
from tests.conftest import fund, wait_for
from tests.factories import UserFactory

T = CreditTransaction.Type


@pytest.fixture
def dana(db):
    return UserFactory(email="dana@example.com", name="Dana")


@pytest.fixture
def org(dana):
    org = organization_create(name="Dana Co", owner=dana)
    ledger.account_for(org)
    return org


def signup_grant(org):
    return CreditTransaction.objects.get(organization=org, idempotency_key="signup")


def lapse(grant):
    CreditTransaction.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(minutes=1))


def on_plan(org, slug, **fields):
    BillingAccount.objects.filter(organization=org).update(plan=Plan.objects.get(slug=slug), **fields)


# ------------------------------------------------------------------ alerts


@pytest.mark.django_db(transaction=True)
def test_a_debit_queues_the_alerts_and_the_worker_sends_them(celery_worker, dana, mailoutbox):
    org = organization_create(name="Dana Co", owner=dana)  # committed: its account opens on commit
    wait_for(lambda: BillingAccount.objects.filter(organization=org).exists())

    ledger.post(org=org, type=T.USAGE, amount=-8, key="big-run")

    note = wait_for(lambda: Notification.objects.filter(user=dana, kind="billing.low_balance").first())
    assert note.text.startswith("Low balance: 2 credits left")
    assert [m.to for m in mailoutbox] == [["dana@example.com"]]


# ------------------------------------------------------------------ expiry


@pytest.mark.django_db
def test_a_lapsed_signup_grant_expires_once(org):
    lapse(signup_grant(org))

    assert tasks.expire_credits() == 1
    assert tasks.expire_credits() == 0

    entry = CreditTransaction.objects.get(organization=org, type=T.EXPIRY)
    assert entry.idempotency_key == f"expiry:{signup_grant(org).pk}"
    assert (entry.amount, entry.balance_after) == (Decimal("-10"), Decimal("0"))
    assert ledger.balance(org) == 0 == ledger.ledger_sum(org)


@pytest.mark.django_db
def test_only_the_unspent_part_expires(org):
    ledger.post(org=org, type=T.USAGE, amount=-7, key="spent")
    lapse(signup_grant(org))

    tasks.expire_credits()

    assert CreditTransaction.objects.get(organization=org, type=T.EXPIRY).amount == Decimal("-3")
    assert ledger.balance(org) == 0


@pytest.mark.django_db
def test_expiry_takes_no_more_than_the_grant(org):
    ledger.post(org=org, type=T.PURCHASE, amount=50, key="cs_1")
    lapse(signup_grant(org))

    tasks.expire_credits()

    assert ledger.balance(org) == Decimal("50")


@pytest.mark.django_db
def test_a_spent_grant_is_marked_handled_with_a_zero_entry(org):
    ledger.post(org=org, type=T.USAGE, amount=-10, key="spent")
    lapse(signup_grant(org))

    assert tasks.expire_credits() == 1
    assert tasks.expire_credits() == 0
    assert CreditTransaction.objects.get(organization=org, type=T.EXPIRY).amount == 0


@pytest.mark.django_db
def test_grants_not_yet_lapsed_or_without_expiry_stay(org):
    ledger.post(org=org, type=T.GRANT, amount=5, key="staff-grant")

    assert tasks.expire_credits() == 0
    assert ledger.balance(org) == Decimal("15")


# -------------------------------------------------------------- allocation


@pytest.mark.django_db
def test_a_paid_plan_without_stripe_gets_its_monthly_credits_then_waits_a_month(org):
    on_plan(org, "basic")

    assert tasks.allocate_monthly() == 1
    assert tasks.allocate_monthly() == 0

    grant = CreditTransaction.objects.get(organization=org, idempotency_key__startswith="allocation:")
    now = timezone.now()
    assert grant.idempotency_key == f"allocation:{org.pk}:{now:%Y-%m}"
    assert (grant.type, grant.amount) == (T.GRANT, Decimal("100"))
    assert ledger.balance(org) == Decimal("110")
    account = BillingAccount.objects.get(organization=org)
    assert now - account.last_allocation_at < timedelta(minutes=1)


@pytest.mark.django_db
def test_a_month_later_the_next_allocation_comes(org):
    on_plan(org, "pro", last_allocation_at=timezone.now() - timedelta(days=40))

    assert tasks.allocate_monthly() == 1

    assert ledger.balance(org) == Decimal("310")
    on_plan(org, "pro", last_allocation_at=timezone.now() - timedelta(days=20))
    assert tasks.allocate_monthly() == 0


@pytest.mark.django_db
def test_a_monthly_stripe_subscription_is_left_to_its_renewal_invoice(org):
    """Stripe's paid renewal invoice grants those credits (once per invoice): the beat task must not
    grant them as well when the period ends before the invoice is paid."""
    end = timezone.now() - timedelta(hours=1)
    on_plan(
        org,
        "basic",
        stripe_subscription_id="sub_123",
        subscription_status="active",
        current_period_end=end,
        last_allocation_at=end - timedelta(days=30),
    )

    assert tasks.allocate_monthly() == 0
    assert not CreditTransaction.objects.filter(
        organization=org, idempotency_key__startswith="allocation:"
    ).exists()


@pytest.mark.django_db
def test_a_renewal_the_webhook_already_granted_is_not_granted_twice(org):
    end = timezone.now() - timedelta(hours=1)
    ledger.post(org=org, type=T.GRANT, amount=100, key=tasks.allocation_key(org.pk, end))
    on_plan(
        org, "basic", stripe_subscription_id="sub_1", subscription_status="active", current_period_end=end
    )

    tasks.allocate_monthly()

    assert ledger.balance(org) == Decimal("110")


@pytest.mark.django_db
def test_a_stripe_subscription_mid_period_waits(org):
    on_plan(
        org,
        "basic",
        stripe_subscription_id="sub_1",
        subscription_status="active",
        current_period_end=timezone.now() + timedelta(days=10),
    )

    assert tasks.allocate_monthly() == 0


@pytest.mark.parametrize("status", ["past_due", "canceled", "unpaid"])
@pytest.mark.django_db
def test_an_unpaid_subscription_gets_nothing(org, status):
    on_plan(
        org,
        "basic",
        stripe_subscription_id="sub_1",
        subscription_status=status,
        current_period_end=timezone.now() - timedelta(hours=1),
    )

    assert tasks.allocate_monthly() == 0
    assert ledger.balance(org) == Decimal("10")


@pytest.mark.django_db
def test_free_and_enterprise_plans_get_no_allocation(org, charlie_org):
    assert tasks.allocate_monthly() == 0
    assert ledger.balance(org) == Decimal("10")
    fund(org, credits=0, plan="enterprise")
    assert tasks.allocate_monthly() == 0


def test_add_months_keeps_the_day_or_takes_the_last_one():
    jan31 = timezone.now().replace(year=2025, month=1, day=31)
    assert tasks.add_months(jan31).date().isoformat() == "2025-02-28"
    assert tasks.add_months(jan31.replace(month=12), 1).date().isoformat() == "2026-01-31"
    assert tasks.add_months(jan31, 12).date().isoformat() == "2026-01-31"


# ---------------------------------------------------------- reconciliation


@pytest.mark.django_db
def test_reconcile_is_quiet_when_every_balance_equals_its_entries(org, mailoutbox):
    ledger.post(org=org, type=T.USAGE, amount=-3, key="run")

    assert tasks.reconcile() == []
    assert not mailoutbox


@pytest.mark.django_db
def test_reconcile_reports_a_drift_to_the_admins(org, mailoutbox, caplog, settings):
    settings.ADMINS = [("Ops", "ops@example.com")]
    BillingAccount.objects.filter(organization=org).update(balance=F("balance") + 5)  # bypasses the ledger

    with caplog.at_level(logging.ERROR, logger="billing.tasks"):
        drifts = tasks.reconcile()

    assert drifts == [{"organization_id": org.pk, "cached": "15.0000", "ledger": "10.0000"}]
    assert "1 balance(s) drifted" in caplog.text
    assert [m.to for m in mailoutbox] == [["ops@example.com"]]
    assert f"org {org.pk}: cached 15.0000, entries sum to 10.0000" in mailoutbox[0].body


@pytest.mark.django_db
def test_without_admins_the_superusers_hear_of_a_drift(org, mailoutbox, settings):
    settings.ADMINS = []
    UserFactory(email="root@example.com", is_superuser=True, is_staff=True)
    BillingAccount.objects.filter(organization=org).update(balance=F("balance") - 1)

    tasks.reconcile()

    assert [m.to for m in mailoutbox] == [["root@example.com"]]


@pytest.mark.django_db
def test_a_beat_job_already_running_is_skipped(org):
    lapse(signup_grant(org))
    cache.add("billing:beat:expire_credits", "1", 60)

    assert tasks.expire_credits() == 0
    cache.delete("billing:beat:expire_credits")
    assert tasks.expire_credits() == 1


def test_the_beat_schedule_names_registered_tasks():
    from config.celery import app

    wanted = {"billing.tasks.expire_credits", "billing.tasks.allocate_monthly", "billing.tasks.reconcile"}
    scheduled = {entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert wanted <= scheduled
    assert wanted <= set(app.tasks)

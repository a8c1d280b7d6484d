"""Stripe through dj-stripe: Checkout and portal sessions against a fake Stripe API (at the HTTP
boundary), and signed webhooks posted to the real endpoint: replayed, out of order and forged."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
import stripe
from django.utils import timezone
from djstripe.models import Event, WebhookEventTrigger
from rest_framework.test import APIClient

from accounts.services import ServiceError, organization_create
from billing import payments
from billing.catalog import sync_catalog
from billing.ledger import account_for
from billing.models import BillingAccount, CreditPack, CreditTransaction, Plan
from tests.billing.stripe_fake import (  # noqa: F401 - fixtures
    WEBHOOK_PATH,
    WEBHOOK_SECRET,
    deliver,
    event,
    fake_stripe_fixture,
    stripe_keys_fixture,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
T = CreditTransaction.Type
HOUR = 3600


@pytest.fixture
def buyer():
    """A fresh organization on Free with its 10 sign-up credits, and its owner."""
    owner = UserFactory(email="owner@buyer.example")
    org = organization_create(name="Buyer Inc", owner=owner)
    account_for(org)
    return org, owner


@pytest.fixture
def prices(fake_stripe):
    """Stripe prices for Basic and Pro, known to the plans and to the fake Stripe."""
    sync_catalog()  # a transactional test elsewhere may have flushed the seeded catalog
    fake_stripe.product("prod_basic", "AgentOS Basic")
    fake_stripe.product("prod_pro", "AgentOS Pro")
    fake_stripe.price("price_basic_month", "prod_basic", cents=2000, interval="month")
    fake_stripe.price("price_pro_month", "prod_pro", cents=5000, interval="month")
    fake_stripe.price("price_pro_year", "prod_pro", cents=48000, interval="year")
    Plan.objects.filter(slug="basic").update(stripe_price_monthly="price_basic_month")
    Plan.objects.filter(slug="pro").update(
        stripe_price_monthly="price_pro_month", stripe_price_yearly="price_pro_year"
    )


def account(org) -> BillingAccount:
    return BillingAccount.objects.select_related("plan").get(organization=org)


def entries(org, type_=None):
    qs = CreditTransaction.objects.filter(organization=org)
    return list(qs.filter(type=type_) if type_ else qs)


def subscribe(fake_stripe, org, owner, plan="pro"):
    """Checkout for a plan, as far as Stripe creating the subscription and its first invoice."""
    redirect = payments.create_checkout_session(org=org, by=owner, kind="subscription", plan_slug=plan)
    customer = account(org).stripe_customer_id
    metadata = fake_stripe.objects[redirect.session_id]["metadata"]
    sub = fake_stripe.subscription(customer=customer, price=f"price_{plan}_month", metadata=metadata)
    session = fake_stripe.complete_checkout(redirect.session_id, subscription=sub["id"])
    invoice = fake_stripe.invoice(
        customer=customer, subscription=sub["id"], price=f"price_{plan}_month", metadata=metadata
    )
    return session, sub, invoice


# --------------------------------------------------------------- checkout


def test_pack_checkout_creates_the_customer_once_and_tags_the_session(fake_stripe, buyer):
    org, owner = buyer

    first = payments.create_checkout_session(org=org, by=owner, kind="pack", pack_slug="pack-500")
    payments.create_checkout_session(org=org, by=owner, kind="pack", credits=100)

    customers = fake_stripe.requests_to("POST", "customers")
    assert len(customers) == 1
    assert customers[0]["metadata"]["org_id"] == str(org.pk)
    assert account(org).stripe_customer_id == fake_stripe.objects[first.session_id]["customer"]
    params = fake_stripe.requests_to("POST", "checkout/sessions")[0]
    assert params["mode"] == "payment"
    assert params["client_reference_id"] == str(org.pk)
    assert params["metadata"] == {
        "org_id": str(org.pk),
        "kind": "pack",
        "pack": "pack-500",
        "credits": "500",
        "user_id": str(owner.pk),
    }
    assert params["line_items"][0]["price_data"]["unit_amount"] == "4500"
    assert first.url.startswith("https://checkout.stripe.com/")


def test_pack_price_carries_the_plan_discount(fake_stripe, buyer):
    org, owner = buyer
    BillingAccount.objects.filter(organization=org).update(plan=Plan.objects.get(slug="basic"))
    CreditPack.objects.filter(slug="pack-500").update(stripe_price="price_pack_500")

    payments.create_checkout_session(org=org, by=owner, kind="pack", pack_slug="pack-500")

    line = fake_stripe.requests_to("POST", "checkout/sessions")[0]["line_items"][0]
    assert line["price_data"]["unit_amount"] == "3600"  # $45 less Basic's 20%
    assert "price" not in line


def test_pack_without_discount_uses_its_stripe_price(fake_stripe, buyer):
    org, owner = buyer
    CreditPack.objects.filter(slug="pack-500").update(stripe_price="price_pack_500")

    payments.create_checkout_session(org=org, by=owner, kind="pack", pack_slug="pack-500")

    line = fake_stripe.requests_to("POST", "checkout/sessions")[0]["line_items"][0]
    assert line == {"price": "price_pack_500", "quantity": "1"}


def test_subscription_checkout_uses_the_plan_price_and_tags_the_subscription(fake_stripe, prices, buyer):
    org, owner = buyer

    payments.create_checkout_session(org=org, by=owner, kind="subscription", plan_slug="pro", interval="year")

    params = fake_stripe.requests_to("POST", "checkout/sessions")[0]
    assert params["mode"] == "subscription"
    assert params["line_items"] == [{"price": "price_pro_year", "quantity": "1"}]
    assert params["subscription_data"]["metadata"]["org_id"] == str(org.pk)
    assert params["subscription_data"]["metadata"]["plan"] == "pro"
    assert params["metadata"]["interval"] == "year"


def test_subscription_checkout_without_a_stripe_price_describes_it_inline(fake_stripe, buyer):
    org, owner = buyer

    payments.create_checkout_session(org=org, by=owner, kind="subscription", plan_slug="basic")

    data = fake_stripe.requests_to("POST", "checkout/sessions")[0]["line_items"][0]["price_data"]
    assert data["unit_amount"] == "2000"
    assert data["recurring"] == {"interval": "month"}


def test_without_a_secret_key_checkout_says_payments_are_not_configured(fake_stripe, buyer, settings):
    org, owner = buyer
    settings.STRIPE_SECRET_KEY = ""

    with pytest.raises(ServiceError) as refused:
        payments.create_checkout_session(org=org, by=owner, kind="pack", pack_slug="pack-100")

    assert refused.value.code == "payments_not_configured"
    assert refused.value.status == 503
    assert "not configured" in str(refused.value)
    assert fake_stripe.calls == []


def test_a_stripe_refusal_is_a_502_without_its_details(fake_stripe, buyer):
    org, owner = buyer
    fake_stripe.fail_next = 400

    with pytest.raises(ServiceError) as refused:
        payments.create_checkout_session(org=org, by=owner, kind="pack", pack_slug="pack-100")

    assert refused.value.code == "payment_provider_error"
    assert refused.value.status == 502
    assert account(org).stripe_customer_id == ""


def test_the_portal_needs_a_customer_first(fake_stripe, buyer):
    org, owner = buyer

    with pytest.raises(ServiceError) as refused:
        payments.create_portal_session(org=org, by=owner)
    assert refused.value.code == "no_customer"

    payments.customer_ensure(org=org, by=owner)
    portal = payments.create_portal_session(org=org, by=owner)
    assert portal.kind == "portal"
    assert portal.url.startswith("https://billing.stripe.com/")
    assert (
        fake_stripe.requests_to("POST", "billing_portal/sessions")[0]["customer"]
        == account(org).stripe_customer_id
    )


# ---------------------------------------------------------------- webhooks


def test_a_paid_pack_grants_its_credits_once_however_often_stripe_says_so(fake_stripe, buyer):
    org, owner = buyer
    redirect = payments.create_checkout_session(org=org, by=owner, kind="pack", pack_slug="pack-500")
    session = fake_stripe.complete_checkout(redirect.session_id)
    client = APIClient()
    completed = event("checkout.session.completed", session)

    for _ in range(3):  # the same event, redelivered
        assert deliver(client, completed).status_code == 200
    for _ in range(2):  # and as new events about the same session
        assert deliver(client, event("checkout.session.completed", session)).status_code == 200

    [purchase] = entries(org, T.PURCHASE)
    assert purchase.amount == Decimal("500")
    assert purchase.idempotency_key == f"stripe:cs:{session['id']}"
    assert purchase.stripe_object_id == session["id"]
    assert purchase.user == owner
    assert account(org).balance == Decimal("510")
    assert Event.objects.filter(type="checkout.session.completed").count() == 3


def test_a_pack_paid_later_grants_when_the_payment_succeeds(fake_stripe, buyer):
    org, owner = buyer
    redirect = payments.create_checkout_session(org=org, by=owner, kind="pack", pack_slug="pack-100")
    pending = dict(fake_stripe.objects[redirect.session_id], status="complete", payment_status="unpaid")
    fake_stripe.put(pending)
    client = APIClient()

    assert deliver(client, event("checkout.session.completed", pending)).status_code == 200
    assert entries(org, T.PURCHASE) == []

    paid = fake_stripe.complete_checkout(redirect.session_id)
    assert deliver(client, event("checkout.session.async_payment_succeeded", paid)).status_code == 200
    assert [e.amount for e in entries(org, T.PURCHASE)] == [Decimal("100")]


def test_a_paid_invoice_sets_the_plan_and_grants_monthly_credits_once(fake_stripe, prices, buyer):
    org, owner = buyer
    session, sub, invoice = subscribe(fake_stripe, org, owner, "pro")
    client = APIClient()

    for _ in range(3):
        for kind in ("invoice.paid", "invoice.payment_succeeded"):  # Stripe sends both for one invoice
            assert deliver(client, event(kind, invoice)).status_code == 200

    [grant] = [e for e in entries(org, T.GRANT) if e.idempotency_key.startswith("stripe:")]
    assert grant.amount == Decimal("300")
    assert grant.idempotency_key == f"stripe:in:{invoice['id']}"
    state = account(org)
    assert state.plan.slug == "pro"
    assert state.interval == "month"
    assert state.subscription_status == "active"
    assert state.stripe_subscription_id == sub["id"]
    assert state.current_period_end.timestamp() == invoice["lines"]["data"][0]["period"]["end"]
    assert state.last_allocation_at is not None
    assert state.balance == Decimal("310")


def test_a_renewal_grants_again_and_a_proration_does_not(fake_stripe, prices, buyer):
    org, owner = buyer
    _, sub, first = subscribe(fake_stripe, org, owner, "basic")
    customer = account(org).stripe_customer_id
    renewal = fake_stripe.invoice(
        customer=customer, subscription=sub["id"], price="price_basic_month", reason="subscription_cycle"
    )
    proration = fake_stripe.invoice(
        customer=customer, subscription=sub["id"], price="price_basic_month", reason="subscription_update"
    )
    client = APIClient()

    for invoice in (first, renewal, proration):
        assert deliver(client, event("invoice.paid", invoice)).status_code == 200

    keys = sorted(e.idempotency_key for e in entries(org, T.GRANT) if e.idempotency_key.startswith("stripe:"))
    assert keys == sorted([f"stripe:in:{first['id']}", f"stripe:in:{renewal['id']}"])
    assert account(org).balance == Decimal("210")


def test_a_subscription_update_before_its_checkout_and_invoice_ends_in_the_right_state(
    fake_stripe, prices, buyer
):
    org, owner = buyer
    session, sub, invoice = subscribe(fake_stripe, org, owner, "pro")
    now = int(time.time())
    client = APIClient()

    # Stripe's order was checkout (t-3h), invoice (t-2h), update (t-1h); they arrive backwards.
    assert deliver(client, event("customer.subscription.updated", sub, created=now - HOUR)).status_code == 200
    assert deliver(client, event("invoice.paid", invoice, created=now - 2 * HOUR)).status_code == 200
    assert (
        deliver(client, event("checkout.session.completed", session, created=now - 3 * HOUR)).status_code
        == 200
    )

    state = account(org)
    assert (state.plan.slug, state.subscription_status, state.stripe_subscription_id) == (
        "pro",
        "active",
        sub["id"],
    )
    assert state.last_stripe_event_at.timestamp() == now - HOUR
    assert [e.amount for e in entries(org, T.GRANT) if e.idempotency_key.startswith("stripe:")] == [
        Decimal("300")
    ]


def test_an_older_update_arriving_after_a_newer_one_changes_nothing(fake_stripe, prices, buyer):
    org, owner = buyer
    customer = payments.customer_ensure(org=org, by=owner)
    meta = {"org_id": str(org.pk)}
    on_pro = fake_stripe.subscription(customer=customer, price="price_pro_month", metadata=meta)
    on_basic = dict(
        fake_stripe.subscription(
            customer=customer, price="price_basic_month", metadata=meta, sid=on_pro["id"]
        )
    )
    now = int(time.time())
    client = APIClient()

    deliver(client, event("customer.subscription.updated", on_pro, created=now - 60))
    deliver(client, event("customer.subscription.updated", on_basic, created=now - 120))  # older, late
    assert account(org).plan.slug == "pro"

    deliver(client, event("customer.subscription.deleted", dict(on_pro, status="canceled"), created=now))
    deliver(client, event("customer.subscription.updated", on_pro, created=now - 30))  # older, late
    state = account(org)
    assert (state.plan.slug, state.subscription_status, state.stripe_subscription_id) == (
        "free",
        "canceled",
        "",
    )


def test_the_end_of_an_old_subscription_does_not_downgrade_the_current_one(fake_stripe, prices, buyer):
    org, owner = buyer
    customer = payments.customer_ensure(org=org, by=owner)
    old = fake_stripe.subscription(customer=customer, price="price_basic_month")
    current = fake_stripe.subscription(customer=customer, price="price_pro_month")
    now = int(time.time())
    client = APIClient()

    deliver(client, event("customer.subscription.updated", current, created=now - 10))
    deliver(client, event("customer.subscription.deleted", dict(old, status="canceled"), created=now))

    state = account(org)
    assert (state.plan.slug, state.stripe_subscription_id) == ("pro", current["id"])


def test_a_plan_is_found_by_metadata_when_the_price_is_not_known(fake_stripe, prices, buyer):
    org, owner = buyer
    customer = payments.customer_ensure(org=org, by=owner)
    fake_stripe.price("price_adhoc", "prod_basic", cents=1900, interval="year")
    sub = fake_stripe.subscription(
        customer=customer,
        price="price_adhoc",
        metadata={"org_id": str(org.pk), "plan": "basic", "interval": "year"},
    )

    deliver(APIClient(), event("customer.subscription.updated", sub))

    state = account(org)
    assert (state.plan.slug, state.interval) == ("basic", "year")


def test_an_unpaid_new_subscription_does_not_upgrade(fake_stripe, prices, buyer):
    org, owner = buyer
    customer = payments.customer_ensure(org=org, by=owner)
    sub = fake_stripe.subscription(customer=customer, price="price_pro_month", status="incomplete")

    deliver(APIClient(), event("customer.subscription.created", sub))

    state = account(org)
    assert (state.plan.slug, state.subscription_status) == ("free", "incomplete")


def test_events_for_someone_else_change_nothing(fake_stripe, prices, buyer):
    org, _ = buyer
    fake_stripe.customer("cus_not_ours", email="someone@elsewhere.example")
    stranger = fake_stripe.subscription(customer="cus_not_ours", price="price_pro_month")

    response = deliver(APIClient(), event("customer.subscription.updated", stranger))

    assert response.status_code == 200
    assert account(org).plan.slug == "free"
    assert not BillingAccount.objects.filter(stripe_subscription_id=stranger["id"]).exists()


# ------------------------------------------------------------ bad requests


@pytest.mark.parametrize("forgery", ["wrong secret", "tampered body", "no signature", "stale signature"])
def test_a_bad_signature_is_a_400_and_writes_nothing(fake_stripe, buyer, forgery):
    org, owner = buyer
    redirect = payments.create_checkout_session(org=org, by=owner, kind="pack", pack_slug="pack-5000")
    body = event("checkout.session.completed", fake_stripe.complete_checkout(redirect.session_id))
    payload = json.dumps(body)
    header = stripe.WebhookSignature.generate_signature_header(payload, WEBHOOK_SECRET)
    if forgery == "wrong secret":
        header = stripe.WebhookSignature.generate_signature_header(payload, "whsec_guessed")
    elif forgery == "tampered body":
        payload = payload.replace('"5000"', '"50000"')
    elif forgery == "stale signature":
        header = stripe.WebhookSignature.generate_signature_header(
            payload, WEBHOOK_SECRET, int(time.time()) - 3600
        )
    extra = {} if forgery == "no signature" else {"HTTP_STRIPE_SIGNATURE": header}
    calls_before = len(fake_stripe.calls)

    response = APIClient().post(WEBHOOK_PATH, data=payload, content_type="application/json", **extra)

    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid_signature"
    assert entries(org, T.PURCHASE) == []
    assert account(org).balance == Decimal("10")
    assert Event.objects.count() == 0
    assert len(fake_stripe.calls) == calls_before  # nothing was fetched or synced
    # Verified before dj-stripe sees it: not even its audit row of the delivery is written.
    assert WebhookEventTrigger.objects.count() == 0


def test_the_debug_secret_header_of_dj_stripe_is_not_honoured(fake_stripe, buyer, settings):
    org, owner = buyer
    settings.DEBUG = True
    redirect = payments.create_checkout_session(org=org, by=owner, kind="pack", pack_slug="pack-100")
    payload = json.dumps(
        event("checkout.session.completed", fake_stripe.complete_checkout(redirect.session_id))
    )
    header = stripe.WebhookSignature.generate_signature_header(payload, "whsec_attacker")

    response = APIClient().post(
        WEBHOOK_PATH,
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
        HTTP_X_DJSTRIPE_WEBHOOK_SECRET="whsec_attacker",
    )

    assert response.status_code == 400
    assert entries(org, T.PURCHASE) == []


def test_without_a_webhook_secret_the_endpoint_is_503_and_writes_nothing(fake_stripe, buyer, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""

    response = deliver(
        APIClient(), event("checkout.session.completed", {"id": "cs_x", "object": "checkout.session"})
    )

    assert response.status_code == 503
    assert response.json()["error_code"] == "payments_not_configured"
    assert WebhookEventTrigger.objects.count() == 0


def test_a_rotated_webhook_secret_takes_effect(fake_stripe, buyer, settings):
    org, owner = buyer
    redirect = payments.create_checkout_session(org=org, by=owner, kind="pack", pack_slug="pack-100")
    body = event("checkout.session.completed", fake_stripe.complete_checkout(redirect.session_id))
    deliver(APIClient(), event("ping.unhandled", {"id": "x", "object": "thing"}))  # the endpoint row exists
    settings.STRIPE_WEBHOOK_SECRET = "whsec_rotated"

    assert deliver(APIClient(), body).status_code == 400
    assert deliver(APIClient(), body, secret="whsec_rotated").status_code == 200
    assert [e.amount for e in entries(org, T.PURCHASE)] == [Decimal("100")]


def test_the_webhook_needs_no_csrf_token_or_login(fake_stripe, buyer):
    from django.test import Client

    org, owner = buyer
    redirect = payments.create_checkout_session(org=org, by=owner, kind="pack", pack_slug="pack-100")
    body = event("checkout.session.completed", fake_stripe.complete_checkout(redirect.session_id))

    response = deliver(Client(enforce_csrf_checks=True), body)

    assert response.status_code == 200
    assert [e.amount for e in entries(org, T.PURCHASE)] == [Decimal("100")]


def test_a_renewal_the_hourly_allocation_already_paid_out_is_not_granted_twice(fake_stripe, prices, buyer):
    from billing.tasks import credits_allocate

    org, owner = buyer
    _, sub, first = subscribe(fake_stripe, org, owner, "basic")
    client = APIClient()
    deliver(client, event("invoice.paid", first))
    period_end = account(org).current_period_end
    # The beat reaches the renewal before Stripe's renewal invoice is paid: it leaves monthly
    # Stripe subscriptions to their invoices, so it grants nothing.
    assert credits_allocate(now=period_end + timezone.timedelta(minutes=5)) == 0
    start = int(period_end.timestamp())
    renewal = fake_stripe.invoice(
        customer=account(org).stripe_customer_id,
        subscription=sub["id"],
        price="price_basic_month",
        reason="subscription_cycle",
        period_end=start + 30 * 86400,
    )
    renewal["lines"]["data"][0]["period"]["start"] = start
    fake_stripe.put(renewal)

    assert deliver(client, event("invoice.paid", renewal)).status_code == 200

    grants = [e for e in entries(org, T.GRANT) if e.idempotency_key != "signup"]
    assert len(grants) == 2  # the first invoice and one renewal, not two
    assert account(org).balance == Decimal("210")

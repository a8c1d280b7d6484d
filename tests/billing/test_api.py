"""The billing REST API (/api/v1/credits/, /payments/, /billing/): bad input, roles, tenancy and the
happy paths, with Stripe's API faked at the HTTP boundary."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Role
from accounts.services import api_key_create, organization_create
from agents import services as agents
from billing import ledger
from billing.ledger import account_for
from billing.models import BillingAccount, CreditTransaction, Plan
from tests.billing.stripe_fake import fake_stripe_fixture, stripe_keys_fixture  # noqa: F401 - fixtures
from tests.factories import MembershipFactory, UserFactory
from tests.helpers import as_user, assert_envelope, bearer

pytestmark = pytest.mark.django_db
T = CreditTransaction.Type


@pytest.fixture
def owner():
    return UserFactory(email="olive@example.com", name="Olive")


@pytest.fixture
def org(owner):
    """A fresh organization on Free with its 10 sign-up credits."""
    org = organization_create(name="Olive Co", owner=owner)
    account_for(org)
    return org


def member(org, role):
    user = UserFactory()
    MembershipFactory(organization=org, user=user, role=role)
    return as_user(user), user


@pytest.fixture
def client(owner, org):
    return as_user(owner)


@pytest.fixture
def other_org(charlie):
    org = organization_create(name="Charlie Co", owner=charlie)
    account_for(org)
    ledger.post(org=org, type=T.GRANT, amount=99, key="charlie-gift", description="Charlie's credits")
    return org


def spend(org, amount, key, **refs):
    return ledger.post(org=org, type=T.USAGE, amount=-Decimal(amount), key=key, description="usage", **refs)


# ---------------------------------------------------------------- credits


def test_purchase_returns_a_checkout_url_for_the_pack(client, org, fake_stripe):
    response = client.post("/api/v1/credits/purchase", {"pack": "pack-500"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["url"].startswith("https://checkout.stripe.com/")
    assert (body["kind"], body["pack"], body["credits"], body["price_cents"]) == (
        "checkout",
        "pack-500",
        500,
        4500,
    )
    session = fake_stripe.objects[body["session_id"]]
    assert session["metadata"]["org_id"] == str(org.pk)
    assert CreditTransaction.objects.filter(organization=org, type=T.PURCHASE).count() == 0  # not until paid


def test_purchase_by_number_of_credits_maps_to_the_pack(client, org, fake_stripe):
    BillingAccount.objects.filter(organization=org).update(plan=Plan.objects.get(slug="pro"))

    response = client.post("/api/v1/credits/purchase", {"credits": 1000}, format="json")

    assert response.status_code == 201, response.content
    assert (response.json()["pack"], response.json()["price_cents"]) == ("pack-1000", 5600)  # $80 less 30%


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"credits": 0}, "invalid_amount"),
        ({"credits": -100}, "invalid_amount"),
        ({"credits": 123}, "unknown_pack"),
        ({"pack": "pack-999999"}, "unknown_pack"),
        ({}, "invalid_amount"),
        ({"credits": "lots"}, "invalid"),
        ({"pack": "pack-100", "credits": 100}, "invalid"),
    ],
)
def test_purchase_refuses_bad_amounts_with_400(client, org, fake_stripe, body, code):
    response = client.post("/api/v1/credits/purchase", body, format="json")

    assert_envelope(response, 400, code)
    assert fake_stripe.calls == []


def test_purchase_without_stripe_keys_says_payments_are_not_configured(client, org, settings):
    settings.STRIPE_SECRET_KEY = ""

    body = assert_envelope(
        client.post("/api/v1/credits/purchase", {"pack": "pack-100"}, format="json"),
        503,
        "payments_not_configured",
    )

    assert "not configured" in body["detail"]
    assert_envelope(
        client.post("/api/v1/credits/purchase", {"credits": -1}, format="json"), 400, "invalid_amount"
    )


@pytest.mark.parametrize("role", [Role.MEMBER, Role.VIEWER])
def test_only_admins_and_owners_spend_money(org, fake_stripe, role):
    api, _ = member(org, role)

    assert_envelope(
        api.post("/api/v1/credits/purchase", {"pack": "pack-100"}, format="json"), 403, "permission_denied"
    )
    assert_envelope(
        api.post(
            "/api/v1/payments/create-checkout-session", {"kind": "pack", "pack": "pack-100"}, format="json"
        ),
        403,
        "permission_denied",
    )
    assert_envelope(
        api.post("/api/v1/billing/subscription/upgrade", {"plan": "pro"}, format="json"),
        403,
        "permission_denied",
    )
    assert api.get("/api/v1/credits/balance").status_code == 200  # reading is for every member
    assert fake_stripe.calls == []


def test_an_admin_and_an_admin_api_key_may_buy(owner, org, fake_stripe):
    BillingAccount.objects.filter(organization=org).update(plan=Plan.objects.get(slug="basic"))  # 5 keys
    admin, _ = member(org, Role.ADMIN)
    _, raw = api_key_create(org=org, name="ci", by=owner, role=Role.ADMIN)
    _, member_raw = api_key_create(org=org, name="bot", by=owner, role=Role.MEMBER)

    assert admin.post("/api/v1/credits/purchase", {"pack": "pack-100"}, format="json").status_code == 201
    assert (
        bearer(raw).post("/api/v1/credits/purchase", {"pack": "pack-100"}, format="json").status_code == 201
    )
    assert_envelope(
        bearer(member_raw).post("/api/v1/credits/purchase", {"pack": "pack-100"}, format="json"),
        403,
        "permission_denied",
    )


def test_another_organization_is_a_404(client, other_org, fake_stripe):
    header = {"HTTP_X_ORGANIZATION": str(other_org.pk)}

    for path in (
        "/api/v1/credits/balance",
        "/api/v1/credits/history",
        "/api/v1/billing/credits",
        "/api/v1/billing/usage",
    ):
        assert_envelope(client.get(path, **header), 404, "not_found")
    assert_envelope(
        client.post("/api/v1/credits/purchase", {"pack": "pack-100"}, format="json", **header),
        404,
        "not_found",
    )
    assert_envelope(
        client.post("/api/v1/billing/subscription/upgrade", {"plan": "pro"}, format="json", **header),
        404,
        "not_found",
    )
    assert fake_stripe.calls == []


def test_balance(client, org):
    response = client.get("/api/v1/credits/balance")

    assert response.status_code == 200
    assert response.json()["balance"] == "10.0000"
    assert response.json()["plan"] == "free"


def test_packs_show_the_price_after_the_plan_discount(client, org):
    BillingAccount.objects.filter(organization=org).update(plan=Plan.objects.get(slug="basic"))

    packs = {p["slug"]: p for p in client.get("/api/v1/credits/packs").json()}

    assert packs["pack-500"]["price_cents"] == 4500
    assert packs["pack-500"]["price_for_you_cents"] == 3600


def test_history_is_paginated_filtered_and_only_this_organization(client, org, other_org):
    for i in range(3):
        spend(org, "0.5", f"use-{i}")

    everything = client.get("/api/v1/credits/history").json()
    usage = client.get("/api/v1/credits/history", {"type": "usage", "page_size": 2}).json()

    assert everything["count"] == 4  # the sign-up grant and three usages
    assert {e["type"] for e in everything["results"]} == {"grant", "usage"}
    assert "charlie-gift" not in str(everything)
    assert usage["count"] == 3 and len(usage["results"]) == 2 and usage["next"]
    assert usage["results"][0]["amount"] == "-0.5000"
    assert usage["results"][0]["balance_after"] == "8.5000"


def test_history_filters_by_date(client, org):
    today = timezone.localdate()

    assert client.get("/api/v1/credits/history", {"start_date": today.isoformat()}).json()["count"] == 1
    after = (today + timedelta(days=1)).isoformat()
    assert client.get("/api/v1/credits/history", {"start_date": after}).json()["count"] == 0
    assert_envelope(client.get("/api/v1/credits/history", {"start_date": "yesterday"}), 400, "invalid")
    assert_envelope(client.get("/api/v1/credits/history", {"type": "bonus"}), 400, "invalid")
    assert_envelope(
        client.get("/api/v1/credits/history", {"start_date": after, "end_date": today.isoformat()}),
        400,
        "invalid",
    )


# --------------------------------------------------------------- payments


def test_checkout_session_for_a_pack_and_for_a_plan(client, org, fake_stripe):
    pack = client.post(
        "/api/v1/payments/create-checkout-session", {"kind": "pack", "pack": "pack-100"}, format="json"
    )
    plan = client.post(
        "/api/v1/payments/create-checkout-session",
        {"kind": "subscription", "plan": "pro", "interval": "year"},
        format="json",
    )

    assert pack.status_code == 201 and plan.status_code == 201, (pack.content, plan.content)
    modes = [fake_stripe.objects[r.json()["session_id"]]["mode"] for r in (pack, plan)]
    assert modes == ["payment", "subscription"]
    assert fake_stripe.objects[plan.json()["session_id"]]["metadata"]["interval"] == "year"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"kind": "subscription", "plan": "platinum"}, "unknown_plan"),
        ({"kind": "subscription", "plan": "enterprise"}, "contact_us"),
        ({"kind": "subscription", "plan": "free"}, "free_plan"),
        ({"kind": "subscription"}, "invalid"),
        ({"kind": "subscription", "plan": "pro", "interval": "week"}, "invalid_choice"),
        ({"kind": "pack", "credits": 0}, "invalid_amount"),
        ({"kind": "donation"}, "invalid_choice"),
    ],
)
def test_checkout_session_bad_input_is_400(client, org, fake_stripe, body, code):
    assert_envelope(client.post("/api/v1/payments/create-checkout-session", body, format="json"), 400, code)
    assert fake_stripe.calls == []


# ------------------------------------------------------ plans and subscription


def test_plans_mark_the_current_one(client, org):
    plans = {p["slug"]: p for p in client.get("/api/v1/billing/plans").json()}

    assert list(plans) == ["free", "basic", "pro", "enterprise"]
    assert plans["free"]["is_current"] and not plans["pro"]["is_current"]
    assert (plans["pro"]["price_monthly_cents"], plans["pro"]["monthly_credits"]) == (5000, "300.0000")
    assert plans["basic"]["pack_discount_percent"] == 20
    assert plans["free"]["limits"]["agents"] == 3


def test_subscription_without_one(client, org, settings):
    settings.STRIPE_SECRET_KEY = ""

    body = client.get("/api/v1/billing/subscription").json()

    assert body["plan"]["slug"] == "free"
    assert (body["has_subscription"], body["status"], body["payments_configured"]) == (False, "", False)


def test_upgrade_without_a_subscription_goes_to_checkout(client, org, fake_stripe):
    response = client.post(
        "/api/v1/billing/subscription/upgrade", {"plan": "basic", "interval": "month"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["kind"] == "checkout"
    assert fake_stripe.objects[response.json()["session_id"]]["metadata"]["plan"] == "basic"


def test_upgrade_with_a_live_subscription_goes_to_the_portal(client, org, fake_stripe):
    BillingAccount.objects.filter(organization=org).update(
        plan=Plan.objects.get(slug="basic"),
        stripe_customer_id="cus_live",
        stripe_subscription_id="sub_live",
        subscription_status="active",
    )

    to_pro = client.post("/api/v1/billing/subscription/upgrade", {"plan": "pro"}, format="json")
    to_free = client.post("/api/v1/billing/subscription/upgrade", {"plan": "free"}, format="json")

    assert (to_pro.status_code, to_pro.json()["kind"]) == (200, "portal")
    assert to_pro.json()["url"].startswith("https://billing.stripe.com/")
    assert (to_free.status_code, to_free.json()["kind"]) == (200, "portal")
    assert_envelope(
        client.post("/api/v1/billing/subscription/upgrade", {"plan": "basic"}, format="json"),
        400,
        "same_plan",
    )
    assert fake_stripe.requests_to("POST", "checkout/sessions") == []


@pytest.mark.parametrize(
    ("plan", "code"), [("platinum", "unknown_plan"), ("enterprise", "contact_us"), ("free", "free_plan")]
)
def test_upgrade_to_an_unknown_or_custom_plan_is_400(client, org, fake_stripe, plan, code):
    body = assert_envelope(
        client.post("/api/v1/billing/subscription/upgrade", {"plan": plan}, format="json"), 400, code
    )

    if plan == "enterprise":
        assert "contact us" in body["detail"]


# ------------------------------------------------------------------ limits


def test_limits_list_every_resource_with_its_usage(client, org, owner):
    agents.agent_create(org=org, by=owner, name="Helper")

    body = client.get("/api/v1/billing/subscription/limits").json()

    rows = {r["resource"]: r for r in body["limits"]}
    assert set(rows) == {"agents", "workflows", "kb_storage_mb", "integrations", "api_keys", "runs_per_month"}
    assert (rows["agents"]["limit"], rows["agents"]["used"], rows["agents"]["remaining"]) == (3, 1, 2)
    assert body["plan"] == "free"
    assert body["upgrade_url"].endswith("/billing/plans/")


def test_limit_check_says_whether_a_resource_fits(org, owner):
    viewer, _ = member(org, Role.VIEWER)
    url = "/api/v1/billing/subscription/limits"

    allowed = viewer.post(url, {"resource": "api_keys"}, format="json").json()
    api_key_create(org=org, name="the one", by=owner)  # Free allows one
    refused = viewer.post(url, {"resource": "api_keys"}, format="json").json()

    assert (allowed["allowed"], allowed["limit"], allowed["used"], allowed["message"]) == (True, 1, 0, "")
    assert (refused["allowed"], refused["used"]) == (False, 1)
    assert "Free plan allows 1" in refused["message"]
    assert refused["upgrade_url"].endswith("/billing/plans/")
    assert_envelope(viewer.post(url, {"resource": "spaceships"}, format="json"), 400, "invalid_choice")


def test_limit_check_on_an_unlimited_plan(client, org):
    BillingAccount.objects.filter(organization=org).update(plan=Plan.objects.get(slug="enterprise"))

    body = client.post(
        "/api/v1/billing/subscription/limits", {"resource": "agents", "adding": 500}, format="json"
    ).json()

    assert (body["allowed"], body["limit"]) == (True, None)


# ---------------------------------------------------------- credits summary


def test_credits_summary_shows_what_expires_and_what_was_used(client, org):
    spend(org, "2.5", "use-1")
    ledger.post(org=org, type=T.PURCHASE, amount=100, key="stripe:cs:cs_1", description="Bought 100 credits")

    body = client.get("/api/v1/billing/credits").json()

    assert body["balance"] == "107.5000"
    assert body["plan"] == "free" and body["plan_monthly_credits"] == "0.0000"
    [grant] = body["expiring"]
    assert grant["amount"] == "10.0000"
    assert grant["expires_at"] > timezone.now().isoformat()
    assert body["expiring_total"] == "10.0000"
    assert body["used_this_month"] == "2.5000"
    assert body["next_allocation_at"] is None


# ------------------------------------------------------------------- usage


@pytest.fixture
def usage_rows(org, owner, other_org):
    """Olive spends on two models through two agents; a colleague spends too; Charlie elsewhere."""
    _, colleague = member(org, Role.MEMBER)
    first = agents.agent_create(org=org, by=owner, name="Writer")
    second = agents.agent_create(org=org, by=owner, name="Researcher")
    spend(org, "1.5", "u1", model="gpt-4o", agent=first, user=owner, input_tokens=300, output_tokens=200)
    spend(org, "2", "u2", model="gpt-4o", agent=second, user=colleague, input_tokens=400, output_tokens=300)
    spend(
        org, "0.5", "u3", model="claude-haiku-4", agent=first, user=owner, input_tokens=100, output_tokens=50
    )
    spend(other_org, "7", "elsewhere", model="gpt-4o")
    return {"first": first, "second": second, "colleague": colleague}


def test_usage_by_model_agent_and_user(client, org, owner, usage_rows):
    by_model = client.get("/api/v1/billing/usage", {"group_by": "model"}).json()
    by_agent = client.get("/api/v1/billing/usage", {"group_by": "agent"}).json()
    by_user = client.get("/api/v1/billing/usage", {"group_by": "user"}).json()

    assert by_model["total_credits"] == "4.0000"
    assert [(r["label"], r["credits"], r["input_tokens"]) for r in by_model["rows"]] == [
        ("gpt-4o", "3.5000", 700),
        ("claude-haiku-4", "0.5000", 100),
    ]
    assert {r["label"]: r["credits"] for r in by_agent["rows"]} == {
        "Researcher": "2.0000",
        "Writer": "2.0000",
    }
    assert {r["key"]: r["credits"] for r in by_user["rows"]} == {
        str(owner.pk): "2.0000",
        str(usage_rows["colleague"].pk): "2.0000",
    }


def test_usage_by_day_lists_every_day_of_the_range(client, org, usage_rows):
    today = timezone.localdate()
    start = today - timedelta(days=6)

    body = client.get(
        "/api/v1/billing/usage", {"start_date": start.isoformat(), "end_date": today.isoformat()}
    ).json()

    assert body["group_by"] == "day"
    assert [r["key"] for r in body["rows"]] == [(start + timedelta(days=i)).isoformat() for i in range(7)]
    assert body["rows"][-1]["credits"] == "4.0000" and body["rows"][0]["credits"] == "0.0000"
    assert body["rows"][-1]["entries"] == 3


def test_usage_filters_and_their_tenancy(client, org, other_org, usage_rows, charlie):
    first = usage_rows["first"]
    foreign = agents.agent_create(org=other_org, by=charlie, name="Not yours")

    by_agent = client.get("/api/v1/billing/usage", {"agent": first.pk, "group_by": "model"}).json()
    by_model = client.get("/api/v1/billing/usage", {"model": "claude-haiku-4"}).json()

    assert by_agent["total_credits"] == "2.0000"
    assert by_model["total_credits"] == "0.5000"
    assert_envelope(client.get("/api/v1/billing/usage", {"agent": foreign.pk}), 404, "not_found")
    assert_envelope(client.get("/api/v1/billing/usage", {"user": charlie.pk}), 404, "not_found")
    assert_envelope(client.get("/api/v1/billing/usage", {"group_by": "planet"}), 400, "invalid")
    assert_envelope(
        client.get("/api/v1/billing/usage", {"start_date": "2020-01-01", "end_date": "2024-01-01"}),
        400,
        "invalid",
    )

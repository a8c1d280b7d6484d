"""Billing in the admin: staff grant or adjust credits with a reason (a ledger entry, the balance moves,
a double submit posts once); the balance is read-only; ledger entries cannot be added, changed or
deleted; model prices are editable and price runs at once."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from accounts.models import AuditLog
from accounts.services import organization_create
from billing import ledger, pricing
from billing.models import BillingAccount, CreditTransaction, ModelPrice, Plan
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

GRANT_URL = "/admin/billing/billingaccount/grant/"


@pytest.fixture
def root(client):
    user = UserFactory(email="root@example.com", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


@pytest.fixture
def fresh(alice):
    org = organization_create(name="Fresh", owner=alice)
    return ledger.account_for(org)


def _token(client, ids):
    body = client.get(f"{GRANT_URL}?ids={ids}").content.decode()
    return re.search(r'name="token" value="([0-9a-f-]{36})"', body).group(1)


def _grant(client, account, token, **fields):
    data = {
        "ids": str(account.pk),
        "type": "grant",
        "amount": "25",
        "reason": "Support goodwill",
        "token": token,
    }
    data.update(fields)
    return client.post(GRANT_URL, data)


def test_staff_grant_posts_a_ledger_entry_with_the_reason_and_moves_the_balance(client, root, fresh):
    token = _token(client, fresh.pk)

    response = _grant(client, fresh, token)

    entry = CreditTransaction.objects.get(organization=fresh.organization, idempotency_key=f"admin:{token}")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/billing/billingaccount/{fresh.pk}/change/"
    assert entry.type == "grant" and entry.amount == Decimal("25")
    assert entry.description == "Support goodwill" and entry.created_by == root
    assert entry.balance_after == Decimal("35")
    assert ledger.balance(fresh.organization) == Decimal("35") == ledger.ledger_sum(fresh.organization)
    audit = AuditLog.objects.get(action="billing.credits_granted")
    assert audit.actor == root and audit.metadata["reason"] == "Support goodwill"


def test_the_same_grant_form_sent_twice_posts_once(client, root, fresh):
    token = _token(client, fresh.pk)

    _grant(client, fresh, token)
    _grant(client, fresh, token)

    assert ledger.balance(fresh.organization) == Decimal("35")
    grants = CreditTransaction.objects.filter(organization=fresh.organization, type="grant")
    assert sorted(g.idempotency_key for g in grants) == sorted(["signup", f"admin:{token}"])


def test_a_grant_needs_a_reason(client, root, fresh):
    response = _grant(client, fresh, _token(client, fresh.pk), reason="   ")

    assert response.status_code == 200
    assert "This field is required." in response.content.decode() or "Say why" in response.content.decode()
    assert ledger.balance(fresh.organization) == Decimal("10")


def test_a_grant_cannot_be_negative_but_an_adjustment_can(client, root, fresh):
    refused = _grant(client, fresh, _token(client, fresh.pk), amount="-4")
    adjusted = _grant(
        client, fresh, _token(client, fresh.pk), type="adjustment", amount="-4", reason="Refunded twice"
    )

    assert refused.status_code == 200 and "use an adjustment" in refused.content.decode()
    assert adjusted.status_code == 302
    assert ledger.balance(fresh.organization) == Decimal("6")
    assert CreditTransaction.objects.get(
        organization=fresh.organization, type="adjustment"
    ).amount == Decimal("-4")


def test_an_adjustment_cannot_take_the_balance_below_zero(client, root, fresh):
    response = _grant(
        client, fresh, _token(client, fresh.pk), type="adjustment", amount="-50", reason="Too much"
    )

    assert response.status_code == 302
    assert ledger.balance(fresh.organization) == Decimal("10")
    assert not CreditTransaction.objects.filter(organization=fresh.organization, type="adjustment").exists()
    messages = [str(m) for m in client.get(response["Location"]).context["messages"]]
    assert any("Not enough credits" in m for m in messages)


def test_the_action_grants_to_every_selected_account(client, root, fresh, charlie):
    other = ledger.account_for(organization_create(name="Charlie Co", owner=charlie))

    response = client.post(
        "/admin/billing/billingaccount/",
        {"action": "grant_credits", "_selected_action": [fresh.pk, other.pk]},
    )
    assert response.status_code == 302 and response["Location"].startswith(GRANT_URL)
    ids = response["Location"].split("ids=")[1]
    token = _token(client, ids)
    client.post(
        GRANT_URL, {"ids": ids, "type": "grant", "amount": "5", "reason": "Launch week", "token": token}
    )

    assert ledger.balance(fresh.organization) == Decimal("15")
    assert ledger.balance(other.organization) == Decimal("15")


def test_staff_without_the_change_permission_cannot_grant(client, fresh):
    client.force_login(UserFactory(email="helpdesk@example.com", is_staff=True))

    assert client.get(f"{GRANT_URL}?ids={fresh.pk}").status_code == 403


def test_the_balance_is_read_only_on_the_account_page(client, root, fresh, charlie):
    ledger.account_for(organization_create(name="Charlie Co", owner=charlie))
    url = f"/admin/billing/billingaccount/{fresh.pk}/change/"
    body = client.get(url).content.decode()

    assert 'name="balance"' not in body
    assert "Grant or adjust credits" in body
    ledger_url = (
        re.search(r'href="(/admin/billing/credittransaction/\?[^"]+)"', body).group(1).replace("&amp;", "&")
    )
    assert [e.idempotency_key for e in client.get(ledger_url).context["cl"].result_list] == ["signup"]
    response = client.post(
        url,
        {
            "plan": Plan.objects.get(slug="pro").pk,
            "interval": "year",
            "low_balance_threshold": "3",
            "balance": "999999",
        },
    )

    account = BillingAccount.objects.get(pk=fresh.pk)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert account.plan.slug == "pro" and account.interval == "year"
    assert account.balance == Decimal("10")


def test_ledger_entries_cannot_be_added_changed_or_deleted_in_the_admin(client, root, fresh):
    entry = CreditTransaction.objects.get(organization=fresh.organization, idempotency_key="signup")
    base = "/admin/billing/credittransaction/"

    assert client.get(base).status_code == 200
    assert client.get(f"{base}add/").status_code == 403
    assert client.get(f"{base}{entry.pk}/delete/").status_code == 403
    page = client.get(f"{base}{entry.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    client.post(f"{base}{entry.pk}/change/", {"amount": "1000", "description": "tampered"})
    entry.refresh_from_db()
    assert entry.amount == Decimal("10") and entry.description != "tampered"


def test_accounts_cannot_be_added_or_deleted_in_the_admin(client, root, fresh):
    assert client.get("/admin/billing/billingaccount/add/").status_code == 403
    assert client.get(f"/admin/billing/billingaccount/{fresh.pk}/delete/").status_code == 403


def test_an_edited_model_price_prices_the_next_run(client, root):
    price = ModelPrice.objects.get(pattern="gpt-4*")
    pricing.price_of("gpt-4o")  # warm the cache

    response = client.post(
        f"/admin/billing/modelprice/{price.pk}/change/",
        {"pattern": "gpt-4*", "label": "GPT-4 class", "input_per_1k": "7", "output_per_1k": "9"},
    )

    assert response.status_code == 302
    assert pricing.price_of("gpt-4o") == (Decimal("7"), Decimal("9"))

"""The billing page in a real browser: the balance in the navigation, Chart.js drawing usage by day,
agent, model and person, a new date range swapped in by htmx and redrawn, the purchase buttons saying
payments are not configured, and the history filtered with the CSV link following the filters."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Role
from accounts.services import organization_create
from billing import ledger
from billing.models import CreditTransaction
from tests.conftest import PASSWORD
from tests.factories import MembershipFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _use(org, amount, key, days=0, **refs):
    entry = ledger.post(
        org=org, type="usage", amount=-Decimal(amount), key=key, description=f"Run {key}", **refs
    )
    if days:
        CreditTransaction.objects.filter(pk=entry.pk).update(created_at=timezone.now() - timedelta(days=days))


def _chart_labels(page, key):
    return page.evaluate(
        "key => { const c = Chart.getChart(document.querySelector(`canvas[data-chart=${key}]`));"
        " return c ? c.data.labels : null; }",
        key,
    )


def test_billing_page_draws_usage_and_filters_history(live_server, page, artifacts, settings):
    settings.STRIPE_SECRET_KEY = ""
    owner = UserFactory(email="olive@example.com", name="Olive")
    teammate = UserFactory(email="ted@example.com", name="Ted")
    org = organization_create(name="Olive Labs", owner=owner)
    MembershipFactory(organization=org, user=teammate, role=Role.MEMBER)
    ledger.account_for(org)
    ledger.post(org=org, type="grant", amount=90, key="welcome", description="Welcome credits")
    _use(org, "4", "a", user=owner, model="gpt-4o")
    _use(org, "2.5", "b", user=teammate, model="claude-3-5-sonnet-latest")
    _use(org, "6", "c", days=50, user=teammate, model="gpt-4o")

    page.goto(live_server.url + "/accounts/login/")
    page.fill("input[name=login]", "olive@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url("**/dashboard/")

    # The balance is in the navigation, and leads to the billing page.
    chip = page.get_by_test_id("nav-balance")
    assert chip.inner_text().startswith("🪙 87.5")
    chip.click()
    page.wait_for_url("**/billing/")

    # Chart.js drew the last 30 days: two models, two people.
    page.wait_for_function(
        "() => typeof Chart !== 'undefined' && Chart.getChart(document.querySelector('canvas'))"
    )
    assert sorted(_chart_labels(page, "by_model")) == ["claude-3-5-sonnet-latest", "gpt-4o"]
    assert sorted(_chart_labels(page, "by_user")) == ["olive@example.com", "ted@example.com"]
    assert len(_chart_labels(page, "by_day")) == 30
    assert "6.5" in page.get_by_test_id("usage-total").inner_text()

    # A wider range comes back through htmx and is drawn again.
    start = (timezone.localdate() - timedelta(days=60)).isoformat()
    page.fill("#usage-start", start)
    page.get_by_role("button", name="Show").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=usage-total]').innerText.includes('12.5')"
    )
    page.wait_for_function(
        "() => { const c = Chart.getChart(document.querySelector('canvas[data-chart=by_day]'));"
        " return c && c.data.labels.length === 61; }"
    )
    assert f"start={start}" in page.url

    # Without Stripe keys the packs cannot be bought, and the page says why.
    assert page.get_by_test_id("payments-not-configured").is_visible()
    assert page.get_by_role("button", name="Payments are not configured").first.is_disabled()
    page.screenshot(path=str(artifacts / "billing_page.png"), full_page=True)

    # The history, filtered to Ted's usage; the CSV link carries the same filters.
    page.goto(live_server.url + "/billing/transactions/")
    page.select_option("#tx-type", "usage")
    page.select_option("#tx-user", label="ted@example.com")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=transactions] tbody tr').length === 2"
    )
    rows = page.locator("[data-testid=transactions] tbody tr")
    assert all(t == "usage" for t in rows.evaluate_all("rows => rows.map(r => r.dataset.type)"))
    assert f"user={teammate.pk}" in page.get_by_test_id("csv-link").get_attribute("href")
    assert "type=usage" in page.get_by_test_id("csv-link").get_attribute("href")
    assert (artifacts / "billing_page.png").stat().st_size > 10_000

    # The plans, side by side with their limits; Enterprise is a conversation.
    page.goto(live_server.url + "/billing/plans/")
    assert page.get_by_role("link", name="Contact us").get_attribute("href").startswith("mailto:")
    assert page.get_by_text("Current plan").is_visible()
    page.screenshot(path=str(artifacts / "billing_plans.png"), full_page=True)

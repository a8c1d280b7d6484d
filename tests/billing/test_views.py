"""The billing pages: balance, plan and renewal, usage charts (and their JSON), the transaction history
with filters and CSV, buying credits and changing plan (not configured / through Stripe), the balance
in the navigation, cost estimates before runs, and the "add credits" prompt when a run is refused.

Orgs are fresh (Free plan, 10 sign-up credits). Charlie sees none of Fresh's entries; a viewer reads
but cannot pay."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import Role
from accounts.services import organization_create
from agents import services as agent_services
from agents.models import AgentRun
from billing import ledger
from billing.estimates import agent_estimate, workflow_estimate
from billing.models import BillingAccount, CreditTransaction, Plan
from billing.pricing import estimate_run
from billing.templatetags.billing_ui import credits
from tests.agents.conftest import make_config
from tests.billing.stripe_fake import fake_stripe_fixture, stripe_keys_fixture  # noqa: F401 - fixtures
from tests.factories import MembershipFactory, UserFactory
from tests.workflows.conftest import agent_graph
from workflows import services as wf_services

pytestmark = pytest.mark.django_db


def _login(client, user, org):
    client.force_login(user)
    client.post("/orgs/switch/", {"org": org.pk})
    return client


@pytest.fixture(autouse=True)
def _no_stripe(settings):
    settings.STRIPE_SECRET_KEY = ""


@pytest.fixture
def fresh(alice):
    org = organization_create(name="Fresh", owner=alice)
    ledger.account_for(org)
    return org


@pytest.fixture
def viewer(fresh):
    user = UserFactory(email="vera@example.com", name="Vera")
    MembershipFactory(organization=fresh, user=user, role=Role.VIEWER)
    return user


@pytest.fixture
def other(charlie):
    org = organization_create(name="Charlie Co", owner=charlie)
    ledger.account_for(org)
    return org


def gpt_agent(org, by, name="Writer"):
    return agent_services.agent_create(
        org=org,
        by=by,
        name=name,
        config=make_config(model={"provider": "openai", "name": "gpt-4o"}),
        publish=True,
    )


def spend(org, amount, key, **refs):
    return ledger.post(
        org=org, type="usage", amount=-Decimal(amount), key=key, description=f"usage {key}", **refs
    )


def days_ago(entry, days):
    CreditTransaction.objects.filter(pk=entry.pk).update(created_at=timezone.now() - timedelta(days=days))


# ------------------------------------------------------------------ overview


def test_owner_sees_balance_plan_and_packs_with_payments_not_configured(client, alice, fresh):
    body = _login(client, alice, fresh).get("/billing/").content.decode()

    assert 'data-testid="balance"' in body and ">10 <span" in body
    assert "Free" in body and "No renewal: there is no subscription." in body
    assert body.count('data-testid="pack"') == 4
    assert 'data-testid="payments-not-configured"' in body
    assert body.count("disabled>Payments are not configured</button>") == 4
    assert 'data-testid="usage-empty"' in body
    expires = timezone.localdate() + timedelta(days=30)
    assert (
        f"10 credits from “Free plan: sign-up credits” expire on {expires:%B} {expires.day}, {expires.year}"
        in body
    )


def test_renewal_date_and_discounted_pack_prices_follow_the_plan(client, alice, fresh):
    BillingAccount.objects.filter(organization=fresh).update(
        plan=Plan.objects.get(slug="basic"),
        current_period_end=timezone.now().replace(year=2031, month=3, day=4),
    )

    body = _login(client, alice, fresh).get("/billing/").content.decode()

    assert "Renews on <strong>March 4, 2031</strong> with 100 new credits." in body
    assert "$8 <s" in body  # 100 credits: $10 with 20% off
    assert "20% off with Basic" in body


def test_the_navigation_shows_the_balance_and_links_to_billing(client, alice, fresh):
    spend(fresh, "2.5", "nav")

    body = _login(client, alice, fresh).get("/billing/plans/").content.decode()

    assert 'data-testid="nav-balance"' in body
    assert "🪙 7.5<span" in body


def test_a_viewer_reads_billing_but_cannot_buy_or_change_anything(client, viewer, fresh):
    client = _login(client, viewer, fresh)

    assert client.get("/billing/").status_code == 200
    assert client.get("/billing/transactions/").status_code == 200
    assert client.post("/billing/buy/", {"pack": "pack-100"}).status_code == 403
    assert client.post("/billing/plans/change/", {"plan": "pro"}).status_code == 403
    assert client.post("/billing/alerts/", {"low_balance_threshold": "1"}).status_code == 403


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get("/billing/")

    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_alert_settings_change_thresholds_and_never_the_balance(client, alice, fresh):
    response = _login(client, alice, fresh).post(
        "/billing/alerts/", {"low_balance_threshold": "25", "monthly_budget": "300"}
    )

    account = BillingAccount.objects.get(organization=fresh)
    assert response.status_code == 302
    assert account.low_balance_threshold == Decimal("25") and account.monthly_budget == Decimal("300")
    assert account.balance == Decimal("10")
    body = client.get("/billing/").content.decode()
    assert "Low balance: under your alert level of 25 credits." in body


def test_alert_settings_refuse_a_negative_threshold(client, alice, fresh):
    response = _login(client, alice, fresh).post("/billing/alerts/", {"low_balance_threshold": "-1"})

    assert response.status_code == 400
    assert BillingAccount.objects.get(organization=fresh).low_balance_threshold == Decimal("5")


# --------------------------------------------------------------------- usage


def test_usage_json_adds_up_usage_by_day_agent_model_and_user(client, alice, bob, fresh, other):
    MembershipFactory(organization=fresh, user=bob, role=Role.MEMBER)
    writer = gpt_agent(fresh, alice)
    spend(fresh, "1.25", "a", user=alice, agent=writer, model="gpt-4o")
    spend(fresh, "0.75", "b", user=bob, agent=writer, model="gpt-4o")
    old = spend(fresh, "2", "c", user=bob, model="text-embedding-3-small")
    days_ago(old, 3)
    ledger.post(org=fresh, type="reservation", amount=-1, key="held")  # not usage: not counted
    spend(other, "5", "theirs")  # another org's

    data = _login(client, alice, fresh).get("/billing/usage.json").json()

    today = timezone.localdate()
    assert data["total"] == 4.0 and data["entries"] == 3
    assert len(data["by_day"]["labels"]) == 30 and data["by_day"]["labels"][-1] == today.isoformat()
    assert data["by_day"]["credits"][-1] == 2.0 and data["by_day"]["credits"][-4] == 2.0
    assert sum(data["by_day"]["credits"]) == 4.0
    assert dict(zip(data["by_agent"]["labels"], data["by_agent"]["credits"], strict=True)) == {
        "Writer": 2.0,
        "No agent (embeddings, tools)": 2.0,
    }
    assert dict(zip(data["by_model"]["labels"], data["by_model"]["credits"], strict=True)) == {
        "gpt-4o": 2.0,
        "text-embedding-3-small": 2.0,
    }
    assert dict(zip(data["by_user"]["labels"], data["by_user"]["credits"], strict=True)) == {
        "bob@example.com": 2.75,
        "alice@example.com": 1.25,
    }


def test_usage_defaults_to_30_days_and_follows_the_date_range(client, alice, fresh):
    spend(fresh, "1", "recent")
    days_ago(spend(fresh, "3", "old"), 40)
    client = _login(client, alice, fresh)

    recent = client.get("/billing/usage.json").json()
    start = (timezone.localdate() - timedelta(days=45)).isoformat()
    wide = client.get(f"/billing/usage.json?start={start}").json()

    assert recent["total"] == 1.0
    assert wide["total"] == 4.0 and wide["start"] == start and len(wide["by_day"]["labels"]) == 46


def test_usage_json_refuses_an_end_before_the_start(client, alice, fresh):
    response = _login(client, alice, fresh).get("/billing/usage.json?start=2025-02-10&end=2025-02-01")

    assert response.status_code == 400
    assert "end" in response.json()["field_errors"]


def test_the_page_embeds_the_chart_data_and_draws_with_chart_js(client, alice, fresh):
    spend(fresh, "1.5", "u", user=alice, model="gpt-4o")

    body = _login(client, alice, fresh).get("/billing/").content.decode()

    assert 'data-testid="usage-charts"' in body
    assert 'id="billing-usage-data"' in body and "vendor/chart.umd.min.js" in body
    for key in ("by_day", "by_agent", "by_model", "by_user"):
        assert f'data-chart="{key}"' in body


def test_the_usage_partial_answers_an_htmx_date_change(client, alice, fresh):
    response = _login(client, alice, fresh).get(
        "/billing/?start=2025-01-01&end=2025-01-31", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="billing-usage"
    )

    body = response.content.decode()
    assert body.lstrip().startswith('<section id="billing-usage"')
    assert "from 2025-01-01 to 2025-01-31" in body


# -------------------------------------------------------------- transactions


def test_history_filters_by_type_person_and_dates(client, alice, bob, fresh):
    MembershipFactory(organization=fresh, user=bob, role=Role.MEMBER)
    spend(fresh, "1", "alice-run", user=alice)
    spend(fresh, "2", "bob-run", user=bob)
    days_ago(spend(fresh, "3", "bob-old", user=bob), 10)
    client = _login(client, alice, fresh)

    everything = client.get("/billing/transactions/").context["page"].object_list
    usage = client.get("/billing/transactions/?type=usage").context["page"].object_list
    bobs = client.get(f"/billing/transactions/?type=usage&user={bob.pk}").context["page"].object_list
    since = (timezone.localdate() - timedelta(days=2)).isoformat()
    bobs_recent = (
        client.get(f"/billing/transactions/?user={bob.pk}&start={since}").context["page"].object_list
    )

    assert {e.idempotency_key for e in everything} == {"signup", "alice-run", "bob-run", "bob-old"}
    assert {e.idempotency_key for e in usage} == {"alice-run", "bob-run", "bob-old"}
    assert {e.idempotency_key for e in bobs} == {"bob-run", "bob-old"}
    assert [e.idempotency_key for e in bobs_recent] == ["bob-run"]


def test_history_pages_keep_the_filters(client, alice, fresh):
    for i in range(30):
        spend(fresh, "0.1", f"u{i}")
    client = _login(client, alice, fresh)

    first = client.get("/billing/transactions/?type=usage")
    second = client.get("/billing/transactions/?type=usage&page=2")

    assert len(first.context["page"].object_list) == 25
    assert len(second.context["page"].object_list) == 5
    assert "?type=usage&amp;page=2" in first.content.decode()
    assert 'href="/billing/transactions.csv?type=usage"' in first.content.decode()


def test_history_of_another_orgs_person_is_a_404(client, alice, charlie, fresh, other):
    client = _login(client, alice, fresh)

    assert client.get(f"/billing/transactions/?user={charlie.pk}").status_code == 404
    assert client.get(f"/billing/transactions.csv?user={charlie.pk}").status_code == 404


def test_charlie_sees_only_his_own_ledger(client, alice, charlie, fresh, other):
    spend(fresh, "1", "fresh-secret-run")

    body = _login(client, charlie, other).get("/billing/transactions/").content.decode()
    keys = {e.idempotency_key for e in client.get("/billing/transactions/").context["page"].object_list}

    assert "usage fresh-secret-run" not in body
    assert keys == {"signup"}


def test_history_empty_filter_result_says_so(client, alice, fresh):
    body = _login(client, alice, fresh).get("/billing/transactions/?type=refund").content.decode()

    assert "No transactions match these filters." in body


def _csv(response):
    assert response.streaming
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_csv_export_streams_the_filtered_entries(client, alice, bob, fresh):
    MembershipFactory(organization=fresh, user=bob, role=Role.MEMBER)
    writer = gpt_agent(fresh, alice)
    spend(fresh, "1.5", "run-1", user=bob, agent=writer, model="gpt-4o", input_tokens=300, output_tokens=200)
    spend(fresh, "0.5", "run-2", user=alice)

    response = _login(client, alice, fresh).get(f"/billing/transactions.csv?type=usage&user={bob.pk}")

    rows = _csv(response)
    assert response["Content-Type"].startswith("text/csv")
    assert 'attachment; filename="credits-' in response["Content-Disposition"]
    header, body = rows[0], rows[1:]
    assert header[:6] == ["created_at", "type", "amount", "balance_after", "description", "user"]
    assert len(body) == 1
    row = dict(zip(header, body[0], strict=True))
    assert row["type"] == "usage" and row["amount"] == "-1.5000" and row["balance_after"] == "8.5000"
    assert row["user"] == "bob@example.com" and row["agent"] == "Writer" and row["model"] == "gpt-4o"
    assert row["input_tokens"] == "300" and row["output_tokens"] == "200"


def test_csv_export_keeps_formulas_out_of_spreadsheets(client, alice, fresh):
    ledger.post(org=fresh, type="grant", amount=1, key="evil", description='=HYPERLINK("http://x")')

    rows = _csv(_login(client, alice, fresh).get("/billing/transactions.csv?type=grant"))

    descriptions = [r[4] for r in rows[1:]]
    assert '\'=HYPERLINK("http://x")' in descriptions


def test_csv_export_of_a_date_range(client, alice, fresh):
    days_ago(spend(fresh, "1", "old"), 20)
    spend(fresh, "1", "new")
    since = (timezone.localdate() - timedelta(days=5)).isoformat()

    rows = _csv(_login(client, alice, fresh).get(f"/billing/transactions.csv?type=usage&start={since}"))

    assert [r[-1] for r in rows[1:]] == ["new"]


def test_csv_export_with_bad_filters_is_a_400_not_everything(client, alice, fresh):
    response = _login(client, alice, fresh).get("/billing/transactions.csv?type=bonus")

    assert response.status_code == 400
    assert "Check the filters" in response.content.decode()


# ---------------------------------------------------------- buying, plans


def test_buying_without_stripe_keys_charges_nothing_and_says_so(client, alice, fresh):
    response = _login(client, alice, fresh).post("/billing/buy/", {"pack": "pack-100"}, follow=True)

    assert "Payments are not configured" in response.content.decode()
    assert BillingAccount.objects.get(organization=fresh).balance == Decimal("10")


def test_buying_an_unknown_pack_is_a_400(client, alice, fresh):
    response = _login(client, alice, fresh).post("/billing/buy/", {"pack": "pack-7"})

    assert response.status_code == 400
    assert "Pick one of the credit packs." in response.content.decode()


def test_buying_a_pack_goes_to_stripe_checkout(client, alice, fresh, fake_stripe):
    body = _login(client, alice, fresh).get("/billing/").content.decode()
    response = client.post("/billing/buy/", {"pack": "pack-500"})

    assert "Buy 500 credits</button>" in body and 'data-testid="payments-not-configured"' not in body
    assert response.status_code == 303
    assert response["Location"].startswith("https://checkout.stripe.com/c/pay/cs_")
    sessions = fake_stripe.requests_to("POST", "checkout/sessions")
    assert len(sessions) == 1 and sessions[0]["metadata"]["pack"] == "pack-500"
    assert BillingAccount.objects.get(organization=fresh).balance == Decimal("10")  # the webhook grants


def test_choosing_a_plan_goes_to_stripe_checkout(client, alice, fresh, fake_stripe):
    response = _login(client, alice, fresh).post(
        "/billing/plans/change/", {"plan": "pro", "interval": "year"}
    )

    assert response.status_code == 303
    sessions = fake_stripe.requests_to("POST", "checkout/sessions")
    assert sessions[0]["mode"] == "subscription" and sessions[0]["metadata"]["interval"] == "year"


def test_a_stripe_failure_is_a_message_not_an_error_page(client, alice, fresh, fake_stripe):
    fake_stripe.fail_next = 400  # not retried by stripe-python, unlike a 500

    response = _login(client, alice, fresh).post("/billing/buy/", {"pack": "pack-100"}, follow=True)

    assert response.status_code == 200
    assert "could not" in response.content.decode()


def test_plans_page_compares_limits_and_offers_contact_for_enterprise(client, alice, fresh):
    body = _login(client, alice, fresh).get("/billing/plans/").content.decode()

    assert 'data-testid="plans"' in body
    for text in ("Free", "Basic", "Pro", "Enterprise", "$20", "$192 a year", "50 MB", "10 GB", "Unlimited"):
        assert text in body
    assert "Contact us" in body and "mailto:" in body
    assert "Current plan" in body
    assert body.count("disabled>Payments are not configured</button>") == 2  # Basic and Pro
    assert 'data-testid="model-prices"' in body and '<code class="text-xs">claude-3-opus*</code>' in body


def test_changing_to_an_unknown_plan_is_a_400(client, alice, fresh):
    response = _login(client, alice, fresh).post("/billing/plans/change/", {"plan": "platinum"})

    assert response.status_code == 400
    assert "That plan does not exist." in response.content.decode()


def test_enterprise_is_contact_us_not_checkout(client, alice, fresh, fake_stripe):
    response = _login(client, alice, fresh).post(
        "/billing/plans/change/", {"plan": "enterprise"}, follow=True
    )

    assert "arranged with our team" in response.content.decode()
    assert fake_stripe.requests_to("POST", "checkout/sessions") == []


# ------------------------------------------------- estimates and refusals


def test_chat_shows_what_a_message_reserves(client, alice, fresh):
    writer = gpt_agent(fresh, alice)
    expected = estimate_run("gpt-4o", "", "You are helpful.", None)

    body = _login(client, alice, fresh).get(f"/agents/{writer.pk}/").content.decode()

    assert 'data-testid="run-estimate"' in body
    assert f'reserves about <strong class="text-ink">{credits(expected)} credits</strong>' in body
    assert "<code>gpt-4o</code>" in body


def test_a_free_model_says_it_costs_nothing(client, alice, fresh):
    agent = agent_services.agent_create(
        org=fresh,
        by=alice,
        name="Echo",
        config=make_config(model={"provider": "demo", "name": "demo-echo"}),
        publish=True,
    )

    body = _login(client, alice, fresh).get(f"/agents/{agent.pk}/").content.decode()

    assert "demo-echo is free: a message costs no credits." in body


def _drain(org):
    ledger.post(org=org, type="usage", amount=-ledger.balance(org), key="drain", description="Used up")


def test_chat_at_zero_balance_is_refused_with_an_add_credits_prompt(client, alice, fresh, llm):
    writer = gpt_agent(fresh, alice)
    _drain(fresh)

    response = _login(client, alice, fresh).post(
        f"/agents/{writer.pk}/chat/send/", {"message": "Write me a poem"}, HTTP_HX_REQUEST="true"
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#agent-alerts"
    assert 'data-testid="credits-prompt"' in body and "Not enough credits" in body
    assert 'href="/billing/#buy"' in body and "Add credits" in body
    assert not AgentRun.objects.filter(agent=writer).exists()
    assert ledger.balance(fresh) == 0


def test_chat_without_htmx_at_zero_balance_is_a_402_page(client, alice, fresh, llm):
    writer = gpt_agent(fresh, alice)
    _drain(fresh)

    response = _login(client, alice, fresh).post(f"/agents/{writer.pk}/chat/send/", {"message": "Hi"})

    body = response.content.decode()
    assert response.status_code == 402
    assert "Not enough credits" in body and 'href="/billing/#buy"' in body
    assert f'href="/agents/{writer.pk}/"' in body  # back to the chat


def test_a_member_is_told_to_ask_an_admin_for_credits(client, alice, bob, fresh, llm):
    MembershipFactory(organization=fresh, user=bob, role=Role.MEMBER)
    writer = gpt_agent(fresh, alice)
    _drain(fresh)

    body = (
        _login(client, bob, fresh)
        .post(f"/agents/{writer.pk}/chat/send/", {"message": "Hi"}, HTTP_HX_REQUEST="true")
        .content.decode()
    )

    assert "Ask an admin or owner of Fresh to" in body


def test_a_task_at_zero_balance_gets_the_prompt_too(client, alice, fresh, llm):
    writer = gpt_agent(fresh, alice)
    _drain(fresh)

    response = _login(client, alice, fresh).post(
        f"/agents/{writer.pk}/tasks/", {"title": "Draft the memo", "priority": "medium"}
    )

    assert response.status_code == 402
    assert 'data-testid="credits-prompt"' in response.content.decode()


def test_workflow_estimate_adds_up_agent_and_team_steps(alice, fresh, other, charlie):
    a = gpt_agent(fresh, alice, "A")
    b = gpt_agent(fresh, alice, "B")
    theirs = gpt_agent(other, charlie, "Theirs")
    per_run = agent_estimate(a).credits
    graph = {
        "nodes": [
            {"id": "start", "type": "trigger", "config": {"kind": "manual"}},
            {"id": "one", "type": "agent", "config": {"agent_id": a.pk}},
            {"id": "all", "type": "team", "config": {"agent_ids": [a.pk, b.pk], "mode": "broadcast"}},
            {"id": "pick", "type": "team", "config": {"agent_ids": [a.pk, b.pk], "mode": "route"}},
            {"id": "foreign", "type": "agent", "config": {"agent_id": theirs.pk}},
        ],
        "edges": [],
    }

    estimate = workflow_estimate(org_id=fresh.pk, graph=graph)

    assert estimate.credits == per_run * 4  # one + both + the one picked; not charlie's agent
    assert estimate.agent_steps == 4 and estimate.unknown_agents == [theirs.pk]


def test_a_step_paused_for_credits_offers_to_add_some(alice, fresh):
    from workflows.models import StepRun

    step = StepRun(pk=1, run_id=1, node_id="draft", node_type="agent", status="waiting")
    step.state = {"paused_for": "credits", "reason": "Not enough credits"}

    html = render_to_string(
        "workflows/_step.html", {"step": step, "node": {"name": "Draft", "label": "Agent", "icon": "🤖"}}
    )

    assert 'data-testid="credits-paused"' in html and 'href="/billing/#buy"' in html


def test_workflow_runs_page_shows_the_estimate_of_the_published_version(client, alice, fresh):
    writer = gpt_agent(fresh, alice)
    workflow = wf_services.workflow_create(org=fresh, by=alice, name="Pipeline", graph=agent_graph(writer.pk))
    wf_services.workflow_publish(workflow=workflow, by=alice)
    expected = credits(agent_estimate(writer).credits)

    body = _login(client, alice, fresh).get(f"/workflows/{workflow.pk}/runs/").content.decode()

    assert 'data-testid="run-estimate"' in body
    assert f'1 agent step reserves about <strong class="text-ink">{expected} credits</strong>' in body


@pytest.mark.parametrize(("role", "expected"), [(Role.OWNER, "Add credits"), (Role.MEMBER, "Ask an admin")])
def test_builder_test_run_at_zero_balance_offers_a_way_to_add_credits(
    client, alice, bob, fresh, role, expected
):
    MembershipFactory(organization=fresh, user=bob, role=Role.MEMBER)
    graph = agent_graph(gpt_agent(fresh, alice).pk)
    workflow = wf_services.workflow_create(org=fresh, by=alice, name="Pipeline", graph=graph)
    _drain(fresh)
    user = alice if role == Role.OWNER else bob

    response = _login(client, user, fresh).post(
        f"/workflows/{workflow.pk}/builder/test-run/",
        json.dumps({"graph": graph, "input": "Hi"}),
        content_type="application/json",
    )

    body = response.json()
    assert response.status_code == 402 and body["code"] == "insufficient_credits"
    assert "Not enough credits" in body["detail"]
    assert 'href="/billing/#buy"' in body["action_html"] and expected in body["action_html"]
    assert not workflow.runs.exists()


def test_usage_json_is_for_members_only(client, charlie, fresh, other):
    spend(fresh, "1", "private")

    data = _login(client, charlie, other).get("/billing/usage.json").json()

    assert data["total"] == 0.0
    assert json.dumps(data).count("private") == 0

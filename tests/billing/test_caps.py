"""Cost caps per agent and per workflow (per run and per month), checked when a run reserves; and the
low-balance and budget alerts: in the app and by email, to owners and admins, once per threshold."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from accounts.models import Role
from accounts.services import ServiceError, organization_create
from agents import services as agents
from agents.models import AgentRun
from billing import caps, ledger, limits, pricing
from billing.models import BillingAccount, CostCap, CreditTransaction
from community.models import Notification
from tests.agents.conftest import make_config
from tests.factories import MembershipFactory, UserFactory
from tests.helpers import as_user, assert_envelope
from workflows import services as workflows
from workflows.models import WorkflowRun

pytestmark = pytest.mark.django_db
T = CreditTransaction.Type


@pytest.fixture
def dana():
    return UserFactory(email="dana@example.com", name="Dana")


@pytest.fixture
def org(dana):
    """A fresh Free organization with its 10 sign-up credits."""
    org = organization_create(name="Dana Co", owner=dana)
    ledger.account_for(org)
    return org


@pytest.fixture
def agent(org, dana):
    """Runs on a priced model: about 2 credits reserved per short message."""
    return agents.agent_create(org=org, by=dana, name="Writer", config=make_config(), publish=True)


def estimate(text="hi"):
    return pricing.estimate_run("fake-gpt", text, "You are helpful.", None)


def spend(org, amount, key, **refs):
    return ledger.post(org=org, type=T.USAGE, amount=-Decimal(amount), key=key, **refs)


def flow_with(org, dana, agent, name="Digest"):
    graph = {
        "nodes": [
            {"id": "start", "type": "trigger", "config": {"kind": "manual"}, "position": {"x": 0, "y": 0}},
            {"id": "write", "type": "agent", "config": {"agent_id": agent.pk}, "position": {"x": 1, "y": 0}},
            {"id": "end", "type": "end", "config": {"output": "{{ last }}"}, "position": {"x": 2, "y": 0}},
        ],
        "edges": [
            {"source": "start", "target": "write", "port": "out"},
            {"source": "write", "target": "end", "port": "out"},
        ],
    }
    workflow = workflows.workflow_create(org=org, by=dana, name=name, graph=graph)
    workflows.workflow_publish(workflow=workflow, by=dana)
    workflow.refresh_from_db()
    return workflow


# -------------------------------------------------------------- agent caps


def test_a_run_estimated_above_the_per_run_cap_is_refused_with_402(org, dana, agent):
    caps.cap_set(org=org, agent=agent, per_run=1)

    response = as_user(dana).post(f"/api/v1/agents/{agent.pk}/run", {"input": "hi"}, format="json")

    body = assert_envelope(response, 402, "cost_cap")
    assert "Writer is capped at 1 credits per run" in body["detail"]
    assert f"estimated at {estimate().quantize(Decimal('0.01'))}" in body["detail"]
    assert not AgentRun.objects.for_org(org).exists()
    assert ledger.balance(org) == Decimal("10")


def test_a_run_under_the_per_run_cap_reserves(org, dana, agent):
    caps.cap_set(org=org, agent=agent, per_run=3)

    run = agents.run_create(agent=agent, user=dana, input="hi", enqueue=False)

    assert ledger.balance(org) == Decimal("10") - estimate()
    assert CreditTransaction.objects.get(idempotency_key=f"run:{run.pk}:reserve").amount == -estimate()


def test_the_monthly_cap_counts_usage_and_runs_still_holding_credits(org, dana, agent):
    caps.cap_set(org=org, agent=agent, per_month=5)
    spend(org, "1", "earlier", agent=agent)
    agents.run_create(agent=agent, user=dana, input="hi", enqueue=False)  # holds ~2.01

    with pytest.raises(caps.CostCapReached) as refused:
        agents.run_create(agent=agent, user=dana, input="hi", enqueue=False)  # 1 + 2.01 + 2.01 > 5

    assert (refused.value.status, refused.value.code) == (402, "cost_cap")
    assert "capped at 5 credits a month and has used 3.01" in str(refused.value)


def test_a_released_reservation_no_longer_counts(org, dana, agent):
    caps.cap_set(org=org, agent=agent, per_month=3)
    run = agents.run_create(agent=agent, user=dana, input="hi", enqueue=False)
    agents.run_cancel(run=run)  # queued: cancelled at once, its reservation released

    assert caps.agent_month_spend(org.pk, agent.pk) == 0
    assert agents.run_create(agent=agent, user=dana, input="hi", enqueue=False)


def test_last_months_usage_does_not_count(org, dana, agent):
    caps.cap_set(org=org, agent=agent, per_month=3)
    old = spend(org, "2.5", "last-month", agent=agent)
    CreditTransaction.objects.filter(pk=old.pk).update(created_at=limits.month_start() - timedelta(hours=1))

    assert caps.agent_month_spend(org.pk, agent.pk) == 0
    assert agents.run_create(agent=agent, user=dana, input="hi", enqueue=False)


def test_a_cap_on_one_agent_leaves_the_others_alone(org, dana, agent):
    other = agents.agent_create(org=org, by=dana, name="Reader", config=make_config(), publish=True)
    caps.cap_set(org=org, agent=agent, per_run="0.5")

    assert agents.run_create(agent=other, user=dana, input="hi", enqueue=False)


# ----------------------------------------------------------- workflow caps


def test_a_workflow_whose_estimate_passes_its_per_run_cap_does_not_start(org, dana, agent):
    workflow = flow_with(org, dana, agent)
    caps.cap_set(org=org, workflow=workflow, per_run=1)

    response = as_user(dana).post(f"/api/v1/workflows/{workflow.pk}/run", {"input": "go"}, format="json")

    body = assert_envelope(response, 402, "cost_cap")
    assert "Digest is capped at 1 credits per run" in body["detail"]
    assert not WorkflowRun.objects.for_org(org).exists()


def test_a_workflow_that_used_its_month_does_not_start(org, dana, agent):
    workflow = flow_with(org, dana, agent)
    caps.cap_set(org=org, workflow=workflow, per_month=4)
    spend(org, "4", "wf-usage", workflow=workflow)

    with pytest.raises(caps.CostCapReached, match="capped at 4 credits a month and has used 4"):
        workflows.run_start(workflow=workflow, by=dana, input="go")

    caps.cap_set(org=org, workflow=workflow, per_month=10)
    assert workflows.run_start(workflow=workflow, by=dana, input="go")


def test_a_workflow_run_past_its_per_run_cap_stops_before_the_next_step(org, dana, agent):
    workflow = flow_with(org, dana, agent)
    caps.cap_set(org=org, workflow=workflow, per_run=3)
    run = workflows.run_start(workflow=workflow, by=dana, input="go")
    spend(org, "2.5", "step-1", workflow=workflow, workflow_run=run)

    caps.check_workflow(org.pk, workflow.pk, "0.4", workflow_run_id=run.pk)  # 2.9 fits
    with pytest.raises(caps.CostCapReached, match="this run has used 2.5 and needs about 0.6 more"):
        caps.check_workflow(org.pk, workflow.pk, "0.6", workflow_run_id=run.pk)


@pytest.mark.django_db(transaction=True)
def test_an_agent_step_over_its_agents_cap_fails_the_step_with_the_reason(celery_worker, org, dana, agent):
    from tests.workflows.conftest import finished

    workflow = flow_with(org, dana, agent)
    caps.cap_set(org=org, agent=agent, per_run="0.5")

    run = finished(workflows.run_start(workflow=workflow, by=dana, input="go"))

    assert run.status == WorkflowRun.Status.FAILED
    step = run.steps.get(node_id="write")
    assert "Writer is capped at 0.5 credits per run" in step.error
    assert not AgentRun.objects.for_org(org).exists()


# -------------------------------------------------------------- cap_set


def test_cap_set_updates_in_place_and_empty_limits_remove_it(org, dana, agent):
    caps.cap_set(org=org, agent=agent, per_run=2, by=dana)
    cap = caps.cap_set(org=org, agent=agent, per_run=3, per_month="40")

    assert CostCap.objects.for_org(org).get() == cap
    assert (cap.per_run, cap.per_month) == (Decimal("3"), Decimal("40"))
    assert caps.cap_set(org=org, agent=agent, per_run=None, per_month="") is None
    assert not CostCap.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [({"per_run": -1}, "invalid"), ({"per_month": "lots"}, "invalid")],
)
def test_cap_set_refuses_bad_values(org, agent, kwargs, code):
    with pytest.raises(ServiceError) as refused:
        caps.cap_set(org=org, agent=agent, **kwargs)
    assert refused.value.code == code


def test_cap_set_refuses_another_organizations_agent(org, agent, charlie_org):
    with pytest.raises(ServiceError) as refused:
        caps.cap_set(org=charlie_org, agent=agent, per_run=1)
    assert refused.value.status == 404


def test_a_cap_names_exactly_one_agent_or_workflow(org, dana, agent):
    workflow = flow_with(org, dana, agent)
    with pytest.raises(ServiceError):
        caps.cap_set(org=org, agent=agent, workflow=workflow, per_run=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        CostCap.objects.create(organization=org, agent=agent, workflow=workflow, per_run=1)


# ------------------------------------------------------------------ alerts


@pytest.fixture
def team(org, dana):
    """Dana owns the org; Ed is an admin and Flo a member (members get no billing alerts)."""
    ed, flo = UserFactory(email="ed@example.com"), UserFactory(email="flo@example.com")
    MembershipFactory(organization=org, user=ed, role=Role.ADMIN)
    MembershipFactory(organization=org, user=flo, role=Role.MEMBER)
    return dana, ed, flo


def test_low_balance_notifies_owners_and_admins_once_in_app_and_by_email(org, team, mailoutbox):
    dana, ed, flo = team
    spend(org, "6", "big-run")  # 4 left, under the threshold of 5

    assert caps.alerts_check(org_id=org.pk) == ["low_balance"]
    assert caps.alerts_check(org_id=org.pk) == []

    notes = Notification.objects.filter(kind="billing.low_balance")
    assert sorted(n.user.email for n in notes) == ["dana@example.com", "ed@example.com"]
    assert notes[0].text.startswith("Low balance: 4 credits left in Dana Co")
    assert notes[0].url == "/billing/" and notes[0].organization_id == org.pk
    assert sorted(m.to[0] for m in mailoutbox) == ["dana@example.com", "ed@example.com"]
    assert "Low balance: 4 credits left" in mailoutbox[0].body and "/billing/" in mailoutbox[0].body
    assert BillingAccount.objects.get(organization=org).low_balance_notified


def test_a_top_up_rearms_the_low_balance_alert(org, team, django_capture_on_commit_callbacks):
    spend(org, "6", "big-run")
    caps.alerts_check(org_id=org.pk)

    with django_capture_on_commit_callbacks(execute=True):
        ledger.post(org=org, type=T.PURCHASE, amount=100, key="cs_1")
    assert not BillingAccount.objects.get(organization=org).low_balance_notified
    assert caps.alerts_check(org_id=org.pk) == []  # 104 is not low
    spend(org, "100", "another-big-run")

    assert caps.alerts_check(org_id=org.pk) == ["low_balance"]
    assert Notification.objects.filter(kind="billing.low_balance").count() == 4


def test_a_balance_above_the_threshold_sends_nothing(org, team, mailoutbox):
    spend(org, "4", "small-run")  # 6 left

    assert caps.alerts_check(org_id=org.pk) == []
    assert not Notification.objects.exists() and not mailoutbox


def test_the_monthly_budget_alert_goes_once_a_month(org, team, mailoutbox):
    BillingAccount.objects.filter(organization=org).update(
        monthly_budget=Decimal("3"), low_balance_threshold=Decimal("0")
    )
    spend(org, "2", "run-1")
    assert caps.alerts_check(org_id=org.pk) == []

    spend(org, "1.5", "run-2")
    assert caps.alerts_check(org_id=org.pk) == ["budget"]
    spend(org, "1", "run-3")
    assert caps.alerts_check(org_id=org.pk) == []

    account = BillingAccount.objects.get(organization=org)
    assert account.budget_alerted_month == limits.month_start().strftime("%Y-%m")
    note = Notification.objects.filter(kind="billing.budget").first()
    assert "has used 3.5 credits this month, over its budget of 3" in note.text
    assert len(mailoutbox) == 2
    # Next month it may alert again.
    BillingAccount.objects.filter(pk=account.pk).update(budget_alerted_month="2000-01")
    assert caps.alerts_check(org_id=org.pk) == ["budget"]


def test_alerts_for_an_organization_without_an_account_do_nothing():
    assert caps.alerts_check(org_id=987654) == []

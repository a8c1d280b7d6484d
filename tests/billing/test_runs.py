"""Billing meets the runs: reservations, settlement to the actual cost, 402 at zero balance, and a
workflow paused for credits that resumes after a top-up. Real agno + openai client + fake LLM."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.services import organization_create
from agents import services as agent_services
from billing import ledger
from billing.models import CreditTransaction
from tests.conftest import wait_for
from tests.helpers import as_user, assert_envelope
from tests.workflows.conftest import chain, finished, node
from workflows import services as wf_services
from workflows.models import StepRun, WorkflowRun

pytestmark = pytest.mark.django_db(transaction=True)
GPT4 = {"instructions": "Be brief.", "model": {"provider": "openai", "name": "gpt-4o", "max_tokens": 200}}


@pytest.fixture
def free_org(alice):
    org = organization_create(name="Frugal", owner=alice)
    ledger.account_for(org)
    return org


def drain(org, leave=Decimal("0")):
    for _ in range(20):
        try:
            ledger.post(
                org=org,
                type="usage",
                amount=-(ledger.balance(org) - leave),
                key=f"drain-{leave}",
                description="drain",
            )
            return
        except ledger.InsufficientCredits:
            continue  # a run reserved between the read and the debit: read again
    pytest.fail("could not drain the balance")


def test_new_org_gets_free_plan_and_ten_credits_that_expire(free_org):
    account = ledger.account_for(free_org)
    assert account.plan.slug == "free" and account.balance == Decimal("10")
    grant = CreditTransaction.objects.get(organization=free_org, type="grant")
    assert grant.expires_at is not None and grant.idempotency_key == "signup"


def test_agent_run_reserves_then_settles_to_actual_usage(llm, free_org, alice, celery_worker):
    agent = agent_services.agent_create(org=free_org, by=alice, name="Writer", config=GPT4, publish=True)
    run = agent_services.run_create(agent=agent, user=alice, input="hello there", source="api")
    reservation = CreditTransaction.objects.get(
        organization=free_org, idempotency_key=f"run:{run.pk}:reserve"
    )
    assert reservation.type == "reservation" and reservation.amount < 0
    wait_for(
        lambda: CreditTransaction.objects.filter(idempotency_key=f"run:{run.pk}:usage").exists(), timeout=20
    )
    run.refresh_from_db()
    usage = CreditTransaction.objects.get(idempotency_key=f"run:{run.pk}:usage")
    release = CreditTransaction.objects.get(idempotency_key=f"run:{run.pk}:reserve:release")
    assert release.amount == -reservation.amount
    # gpt-4o is "GPT-4 class": 3 credits per 1K tokens, in and out.
    expected = (Decimal(3) * (run.input_tokens + run.output_tokens) / 1000).quantize(Decimal("0.0001"))
    assert usage.amount == -expected and expected > 0
    assert usage.user == alice and usage.agent == agent and usage.run_id == run.pk and usage.model == "gpt-4o"
    assert ledger.balance(free_org) == Decimal(10) - expected == ledger.ledger_sum(free_org)


def test_run_refused_with_402_at_zero_balance_and_nothing_is_created(llm, free_org, alice):
    from agents.models import AgentRun

    agent = agent_services.agent_create(org=free_org, by=alice, name="Writer", config=GPT4, publish=True)
    drain(free_org)
    client = as_user(alice)
    response = client.post(
        f"/api/v1/agents/{agent.pk}/run", {"input": "hi"}, format="json", HTTP_X_ORGANIZATION=str(free_org.pk)
    )
    body = assert_envelope(response, 402, "insufficient_credits")
    assert "Add credits" in body["detail"]
    assert not AgentRun.objects.filter(agent=agent).exists()
    assert ledger.balance(free_org) == 0


def test_demo_model_runs_are_free(free_org, alice, celery_worker):
    agent = agent_services.agent_create(
        org=free_org,
        by=alice,
        name="Demo",
        config={"model": {"provider": "demo", "name": "demo-echo"}},
        publish=True,
    )
    drain(free_org)
    run = agent_services.run_create(agent=agent, user=alice, input="hi")
    wait_for(lambda: type(run).objects.get(pk=run.pk).status == "succeeded", timeout=20)
    assert ledger.balance(free_org) == 0
    assert not CreditTransaction.objects.filter(run_id=run.pk, amount__lt=0).exists()


def test_workflow_pauses_without_credit_and_resumes_after_top_up(llm, free_org, alice, celery_worker):
    agent = agent_services.agent_create(org=free_org, by=alice, name="Writer", config=GPT4, publish=True)
    wf = wf_services.workflow_create(
        org=free_org,
        by=alice,
        name="Two steps",
        graph={
            "nodes": [
                node("start", "trigger", kind="manual"),
                node("first", "agent", agent_id=agent.pk, input="[[latency:100]] first {{ input.text }}"),
                node("second", "agent", agent_id=agent.pk, input="second {{ last }}"),
            ],
            "edges": chain("start", "first", "second"),
        },
    )
    wf_services.workflow_publish(workflow=wf, by=alice)
    wf.refresh_from_db()
    run = wf_services.run_start(workflow=wf, by=alice, input={"text": "go"})
    # The step is running once claimed, but its agent run reserves a moment later: wait for the reservation.
    wait_for(
        lambda: CreditTransaction.objects.filter(organization=free_org, type="reservation").exists(),
        timeout=20,
    )
    # While the first step runs (on credits it reserved), the organization spends the rest: once the
    # first settles, what it gives back is less than the second step needs.
    drain(free_org)
    run = finished(run, timeout=20, statuses=(WorkflowRun.Status.WAITING, *WorkflowRun.FINISHED))
    if run.status == "waiting":
        step = StepRun.objects.get(run=run, node_id="second")
        assert step.status == "waiting" and step.state.get("paused_for") == "credits"
        ledger.post(org=free_org, type="purchase", amount=50, key="top-up", description="Top-up")
        run = finished(run, timeout=30)
        assert run.status == "succeeded", run.error
        assert run.output.startswith("Echo: second")
    else:  # pragma: no cover - the drain raced the second step's reservation
        pytest.fail(f"the second step was not paused for credits (run {run.status})")


def test_workflow_start_refused_with_402_when_one_pass_is_not_covered(llm, free_org, alice):
    agent = agent_services.agent_create(org=free_org, by=alice, name="Writer", config=GPT4, publish=True)
    wf = wf_services.workflow_create(
        org=free_org,
        by=alice,
        name="One step",
        graph={
            "nodes": [node("start", "trigger", kind="manual"), node("write", "agent", agent_id=agent.pk)],
            "edges": chain("start", "write"),
        },
    )
    wf_services.workflow_publish(workflow=wf, by=alice)
    drain(free_org, leave=Decimal("0.01"))
    response = as_user(alice).post(
        f"/api/v1/workflows/{wf.pk}/run", {"input": "hi"}, format="json", HTTP_X_ORGANIZATION=str(free_org.pk)
    )
    assert_envelope(response, 402, "insufficient_credits")
    assert not WorkflowRun.objects.filter(workflow=wf).exists()


def test_usage_of_a_workflow_step_names_the_workflow_and_its_run(llm, free_org, alice, celery_worker):
    agent = agent_services.agent_create(org=free_org, by=alice, name="Writer", config=GPT4, publish=True)
    wf = wf_services.workflow_create(
        org=free_org,
        by=alice,
        name="One step",
        graph={
            "nodes": [node("start", "trigger", kind="manual"), node("write", "agent", agent_id=agent.pk)],
            "edges": chain("start", "write"),
        },
    )
    wf_services.workflow_publish(workflow=wf, by=alice)
    wf.refresh_from_db()
    run = finished(wf_services.run_start(workflow=wf, by=alice, input={"text": "hi"}), timeout=20)
    assert run.status == "succeeded", run.error
    usage = CreditTransaction.objects.get(organization=free_org, type="usage", agent=agent)
    assert usage.workflow_run_id == run.pk and usage.workflow_id == wf.pk and usage.user == alice


def test_a_run_reads_what_its_settle_needs_with_its_claim(llm, free_org, alice):
    """The reservation is read by the claim's statement, so the final transaction has no look-up of
    its own (billing.hooks.settle_reads); the bill is the same."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from agents.runtime.executor import execute_run

    agent = agent_services.agent_create(org=free_org, by=alice, name="Writer", config=GPT4, publish=True)
    run = agent_services.run_create(agent=agent, user=alice, input="hello there", enqueue=False)
    with CaptureQueriesContext(connection) as queries:
        assert execute_run(run.pk) == "succeeded"

    assert not [q["sql"] for q in queries if q["sql"].startswith('SELECT "billing_credittransaction"')]
    run.refresh_from_db()
    reservation = CreditTransaction.objects.get(idempotency_key=f"run:{run.pk}:reserve")
    release = CreditTransaction.objects.get(idempotency_key=f"run:{run.pk}:reserve:release")
    usage = CreditTransaction.objects.get(idempotency_key=f"run:{run.pk}:usage")
    expected = (Decimal(3) * (run.input_tokens + run.output_tokens) / 1000).quantize(Decimal("0.0001"))
    assert release.amount == -reservation.amount and usage.amount == -expected and expected > 0
    assert ledger.balance(free_org) == Decimal(10) - expected == ledger.ledger_sum(free_org)


def test_a_release_written_after_the_claim_fails_that_settle_and_the_next_one_looks_again(
    llm, free_org, alice
):
    """What the claim read is used once: a release written since (the workflow sweep closing a run it
    took for orphaned) fails the final transaction as partly written entries, and the settle of the
    failed run that follows reads the entries again and charges once."""
    from django.db import IntegrityError, transaction

    from agents.runtime.executor import _RUN_TO_EXECUTE
    from billing.hooks import run_keys, settle_agent_run

    agent = agent_services.agent_create(org=free_org, by=alice, name="Writer", config=GPT4, publish=True)
    created = agent_services.run_create(agent=agent, user=alice, input="hello there", enqueue=False)
    run = _RUN_TO_EXECUTE.first(created.pk, *run_keys(created.pk))
    assert run.settle_held < 0 and run.settle_done is False
    ledger.release(org=free_org, reservation_key=f"run:{run.pk}:reserve", description="orphaned")
    bill = {"credits": Decimal("0.5"), "model": "gpt-4o", "input_tokens": 1, "output_tokens": 1}

    with pytest.raises(IntegrityError, match="partly written"), transaction.atomic():
        settle_agent_run(run=run, status="succeeded", **bill)
    assert not CreditTransaction.objects.filter(idempotency_key=f"run:{run.pk}:usage").exists()
    with transaction.atomic():
        settle_agent_run(run=run, status="failed", **bill)

    assert CreditTransaction.objects.get(idempotency_key=f"run:{run.pk}:usage").amount == Decimal("-0.5")
    assert CreditTransaction.objects.filter(organization=free_org, type="release").count() == 1
    assert ledger.balance(free_org) == Decimal("9.5") == ledger.ledger_sum(free_org)

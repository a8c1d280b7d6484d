"""run_create and the workflow engine's start_run take their rows' keys in one round trip and send
the rows with the COMMIT (prepared.next_ids + insert(at_commit=True)): nothing is written before the
commit, and afterwards the rows are there with those keys, pointing at one another."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents import services
from agents.models import AgentRun, ChatSession, Message
from billing.models import CreditTransaction

pytestmark = pytest.mark.django_db(transaction=True)


def _inserts(queries):
    return [q["sql"] for q in queries if q["sql"].startswith("INSERT")]


def test_a_run_and_its_session_and_message_go_out_with_the_commit(make_agent, alice):
    agent = make_agent()
    with CaptureQueriesContext(connection) as queries:
        run = services.run_create(agent=agent, user=alice, input="Hello there", enqueue=False)
    # Only the statements run one by one are logged: no INSERT went out before the COMMIT.
    assert _inserts(queries) == []
    assert any("nextval" in q["sql"] for q in queries)
    stored = AgentRun.objects.get(pk=run.pk)
    assert run._state.adding is False and stored.status == AgentRun.Status.QUEUED
    session = ChatSession.objects.get(pk=run.session_id)
    assert (session.agent_id, session.user_id, session.title) == (agent.pk, alice.pk, "Hello there")
    (message,) = Message.objects.filter(session=session)
    assert (message.run_id, message.role, message.content) == (run.pk, Message.Role.USER, "Hello there")
    assert CreditTransaction.objects.filter(idempotency_key=f"run:{run.pk}:reserve").exists()


def test_billings_checks_and_the_rows_keys_are_one_read(make_agent, alice, acme):
    """The plan's monthly runs, whether the agent has a cost cap, and the keys: one statement. A
    capped agent's cap is then read and checked; an uncapped agent's is not read again."""
    from billing.models_caps import CostCap

    def reads(queries):
        return [q["sql"] for q in queries if q["sql"].startswith("SELECT")]

    def cap_reads(queries):
        return [sql for sql in reads(queries) if sql.startswith('SELECT "billing_costcap"')]

    agent = make_agent()
    with CaptureQueriesContext(connection) as queries:
        services.run_create(agent=agent, user=alice, input="Hello", enqueue=False)
    (combined,) = [sql for sql in reads(queries) if 'FROM "billing_billingaccount"' in sql]
    assert "nextval(" in combined and '"billing_costcap"' in combined
    assert not [sql for sql in reads(queries) if sql.startswith("SELECT nextval")]
    assert cap_reads(queries) == []

    CostCap.objects.create(organization=acme, agent=agent, per_run=1000)
    with CaptureQueriesContext(connection) as queries:
        services.run_create(agent=agent, user=alice, input="Hello again", enqueue=False)
    assert len(cap_reads(queries)) == 1


def test_a_follow_up_in_the_same_session_touches_the_session_at_commit(make_agent, alice):
    agent = make_agent()
    first = services.run_create(agent=agent, user=alice, input="One", enqueue=False)
    session = ChatSession.objects.get(pk=first.session_id)
    before = session.updated_at
    with CaptureQueriesContext(connection) as queries:
        second = services.run_create(agent=agent, user=alice, input="Two", session=session, enqueue=False)
    assert _inserts(queries) == [] and not [q for q in queries if 'UPDATE "agents_chatsession"' in q["sql"]]
    assert second.session_id == session.pk and second.pk > first.pk
    assert ChatSession.objects.get(pk=session.pk).updated_at > before
    assert list(Message.objects.filter(session=session).order_by("id").values_list("content", flat=True)) == [
        "One",
        "Two",
    ]


def test_a_refused_credit_hold_writes_none_of_the_rows(make_agent, alice, acme):
    from accounts.services import ServiceError
    from billing.ledger import balance, post

    agent = make_agent()
    post(org=acme, type="adjustment", amount=-balance(acme), key="drain", description="Drain")
    runs, sessions = AgentRun.objects.count(), ChatSession.objects.count()
    with pytest.raises(ServiceError) as refused:
        services.run_create(agent=agent, user=alice, input="Hello", enqueue=False)
    assert refused.value.status == 402
    assert (AgentRun.objects.count(), ChatSession.objects.count()) == (runs, sessions)


def test_a_runs_answer_goes_out_with_the_final_commit_under_the_key_taken_at_its_load(llm, make_agent, alice):
    """The worker takes the answer's key when it loads the run; the assistant message then rides with
    the final COMMIT (with the run's update, its events and the settle), and "done" names it."""
    from agents.models import RunEvent
    from agents.runtime.executor import execute_run

    agent = make_agent()
    run = services.run_create(agent=agent, user=alice, input="Hello there", enqueue=False)
    with CaptureQueriesContext(connection) as queries:
        assert execute_run(run.pk) == AgentRun.Status.SUCCEEDED
    assert not [sql for sql in _inserts(queries) if 'INTO "agents_message"' in sql]
    # The claim, the load and the answer's key: the run's first statement, one round trip.
    load = queries.captured_queries[0]["sql"]
    assert load.startswith('WITH "agents_agentrun" AS (UPDATE "agents_agentrun"') and "nextval(" in load
    reply = Message.objects.get(run=run, role=Message.Role.ASSISTANT)
    assert reply.content == "Echo: Hello there" and reply.session_id == run.session_id
    done = RunEvent.objects.get(run=run, type="done")
    assert done.payload["message_id"] == reply.pk

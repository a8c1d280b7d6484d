"""Waiting states and recovery: approvals (also across a worker restart), delays, timeouts,
sub-workflows, cancel, a worker killed mid-step, and the schedule trigger firing through beat."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from accounts.services import ServiceError
from agents.models import AgentRun
from workflows import engine, services
from workflows.engine import common as engine_common
from workflows.models import Approval, StepRun, WorkflowRun

from .conftest import chain, edge, finished, node

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def approval_flow(make_workflow, **approval_config):
    return make_workflow(
        [
            node("start", "trigger", kind="manual"),
            node(
                "ask",
                "approval",
                title="Ship {{ input.what }}?",
                message="Please check {{ input.what }}.",
                **approval_config,
            ),
            node(
                "yes",
                "transform",
                mapping={"shipped": "{{ input.what }}", "by": "{{ nodes.ask.output.decided_by }}"},
            ),
            node("no", "transform", mapping={"shipped": False}),
            node("late", "transform", mapping={"shipped": "timed out"}),
        ],
        [
            edge("start", "ask"),
            edge("ask", "yes", "approved"),
            edge("ask", "no", "rejected"),
            edge("ask", "late", "timeout"),
        ],
    )


def waiting(run, timeout=15.0):
    return finished(run, timeout=timeout, statuses=(WorkflowRun.Status.WAITING,))


def test_approval_waits_then_approved_continues(make_workflow, alice, bob, celery_worker):
    wf = approval_flow(make_workflow, assignees=[alice.email])
    run = waiting(services.run_start(workflow=wf, by=alice, input={"what": "v2"}))
    approval = Approval.objects.get(run=run)
    assert approval.title == "Ship v2?" and list(approval.assignees.all()) == [alice]
    assert run.steps.get(node_id="ask").status == StepRun.Status.WAITING
    # Alice is told in-app and by email with a signed link.
    from tests.conftest import wait_for

    wait_for(lambda: any("Ship v2?" in m.subject for m in mail.outbox))
    assert "/workflows/approvals/" in mail.outbox[-1].body
    with pytest.raises(ServiceError) as refused:
        services.approval_decide(approval=approval, by=bob, approved=True)  # a member, not an assignee
    assert refused.value.status == 403
    services.approval_decide(approval=approval, by=alice, approved=True, comment="lgtm")
    run = finished(run)
    assert run.status == "succeeded", run.error
    assert run.output == {"shipped": "v2", "by": alice.email}
    with pytest.raises(ServiceError) as twice:
        services.approval_decide(approval=approval, by=alice, approved=False)
    assert twice.value.status == 409


def test_approval_rejected_takes_rejected_branch(make_workflow, alice, celery_worker):
    wf = approval_flow(make_workflow)
    run = waiting(services.run_start(workflow=wf, by=alice, input={"what": "v3"}))
    services.approval_decide(approval=Approval.objects.get(run=run), by=alice, approved=False)
    assert finished(run).output == {"shipped": False}


def test_approval_timeout_follows_chosen_branch_via_sweeper(make_workflow, alice, celery_worker):
    wf = approval_flow(make_workflow, timeout_seconds=3600, on_timeout="timeout")
    run = waiting(services.run_start(workflow=wf, by=alice, input={"what": "v4"}))
    # Days later: the sweeper (beat) finds the approval's time has come.
    counts = engine.sweep(now=timezone.now() + timedelta(hours=2))
    assert counts["woken"] == 1
    run = finished(run)
    assert run.output == {"shipped": "timed out"}
    assert Approval.objects.get(run=run).decision == Approval.Decision.EXPIRED


def test_approval_survives_a_worker_restart(make_workflow, alice, transactional_db):
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    wf = approval_flow(make_workflow)
    with start_worker(
        app, pool="solo", perform_ping_check=False, loglevel="WARNING", queues=["default", "runs"]
    ):
        run = waiting(services.run_start(workflow=wf, by=alice, input={"what": "v5"}))
    engine_common._graphs.clear()  # a new process: nothing cached
    # No worker at all while the decision is made; the run is just a row.
    services.approval_decide(approval=Approval.objects.get(run=run), by=alice, approved=True)
    run.refresh_from_db()
    assert run.status in WorkflowRun.ACTIVE
    with start_worker(
        app, pool="solo", perform_ping_check=False, loglevel="WARNING", queues=["default", "runs"]
    ):
        run = finished(run)
    assert run.status == "succeeded" and run.output["shipped"] == "v5"


def test_delay_is_a_waiting_state_then_continues(make_workflow, alice, celery_worker):
    wf = make_workflow(
        [
            node("start", "trigger", kind="manual"),
            node("pause", "delay", seconds=1),
            node("after", "transform", mapping={"ok": True}),
        ],
        chain("start", "pause", "after"),
    )
    run = waiting(services.run_start(workflow=wf, by=alice, input={}))
    step = run.steps.get(node_id="pause")
    assert step.status == "waiting" and step.wake_at is not None
    run = finished(run, timeout=15)
    assert run.status == "succeeded" and run.output == {"ok": True}
    assert run.steps.get(node_id="pause").finished_at >= step.wake_at


def test_long_delay_is_woken_by_the_sweeper(make_workflow, alice, celery_worker):
    wf = make_workflow(
        [
            node("start", "trigger", kind="manual"),
            node("pause", "delay", seconds=86400 * 3),
            node("after", "end", output="done"),
        ],
        chain("start", "pause", "after"),
    )
    run = waiting(services.run_start(workflow=wf, by=alice, input={}))
    assert engine.sweep()["woken"] == 0  # not yet
    assert engine.sweep(now=timezone.now() + timedelta(days=3, seconds=5))["woken"] == 1
    assert finished(run).output == "done"


def test_subworkflow_runs_child_and_continues_with_its_output(make_workflow, alice, celery_worker):
    child = make_workflow(
        [node("start", "trigger", kind="manual"), node("out", "end", output="child saw {{ input.text }}")],
        chain("start", "out"),
        name="Child",
    )
    parent = make_workflow(
        [
            node("start", "trigger", kind="manual"),
            node("sub", "subworkflow", workflow_id=child.pk, input={"text": "{{ input.text }}!"}),
            node("out", "end", output="parent got: {{ nodes.sub.output }}"),
        ],
        chain("start", "sub", "out"),
        name="Parent",
    )
    run = finished(services.run_start(workflow=parent, by=alice, input={"text": "hi"}))
    assert run.status == "succeeded", run.error
    assert run.output == "parent got: child saw hi!"
    child_run = WorkflowRun.objects.get(workflow=child)
    assert child_run.parent_step.run == run and child_run.source == "subworkflow"


def test_cancel_waiting_run_and_cancel_finished_is_409(make_workflow, alice, celery_worker):
    wf = approval_flow(make_workflow)
    run = waiting(services.run_start(workflow=wf, by=alice, input={"what": "x"}))
    services.run_cancel(run=run, by=alice)
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert run.steps.get(node_id="ask").status == "cancelled"
    assert Approval.objects.get(run=run).decision == "cancelled"
    with pytest.raises(ServiceError) as again:
        services.run_cancel(run=run, by=alice)
    assert again.value.status == 409


def test_run_of_a_user_removed_from_the_org_fails_with_reason(make_workflow, alice, bob, acme):
    from celery.contrib.testing.worker import start_worker

    from accounts.models import Membership
    from config.celery import app

    wf = make_workflow(
        [node("start", "trigger", kind="manual"), node("out", "end", output="x")], chain("start", "out")
    )
    run = services.run_start(workflow=wf, by=bob, input={})
    Membership.objects.filter(organization=acme, user=bob).delete()
    with start_worker(
        app, pool="solo", perform_ping_check=False, loglevel="WARNING", queues=["default", "runs"]
    ):
        run = finished(run)
    assert run.status == "failed"
    assert "no longer a member" in run.error


def test_http_node_calls_through_safe_client_and_private_addresses_are_refused(
    fake_llm, make_workflow, alice, celery_worker
):
    wf = make_workflow(
        [
            node("start", "trigger", kind="manual"),
            node("call", "http", method="GET", url=fake_llm.base_url + "/models"),
            node("out", "end", output="{{ nodes.call.output.status }}"),
        ],
        chain("start", "call", "out"),
    )
    settings.OUTBOUND_ALLOW_HOSTS = []
    refused = finished(services.run_start(workflow=wf, by=alice, input={}))
    assert refused.status == "failed" and "Refused" in refused.error
    settings.OUTBOUND_ALLOW_HOSTS = ["127.0.0.1"]
    try:
        ok = finished(services.run_start(workflow=wf, by=alice, input={}))
    finally:
        settings.OUTBOUND_ALLOW_HOSTS = []
    assert ok.status == "succeeded", ok.error
    assert ok.output == 200


def test_knowledge_node_retrieves_chunks(make_workflow, acme, alice, celery_worker):
    from knowledge.models import Chunk, Document, KnowledgeBase

    kb = KnowledgeBase.objects.create(
        organization=acme, name="Handbook", embedding_provider="none", embedding_dim=0
    )
    doc = Document.objects.create(
        organization=acme,
        knowledge_base=kb,
        title="Leave policy",
        source=Document.Source.TEXT,
        status="ready",
    )
    Chunk.objects.create(
        organization=acme, knowledge_base=kb, document=doc, ordinal=0, text="Employees get 25 vacation days."
    )
    Chunk.objects.create(
        organization=acme, knowledge_base=kb, document=doc, ordinal=1, text="Parking is free."
    )
    wf = make_workflow(
        [
            node("start", "trigger", kind="manual"),
            node(
                "kb",
                "knowledge",
                knowledge_base_ids=[kb.pk],
                query="{{ input.text }}",
                mode="keyword",
                top_k=3,
            ),
            node("out", "end", output="{{ nodes.kb.output.chunks[0].text }}"),
        ],
        chain("start", "kb", "out"),
    )
    run = finished(services.run_start(workflow=wf, by=alice, input={"text": "vacation days"}))
    assert run.status == "succeeded", run.error
    assert run.output == "Employees get 25 vacation days."


def _worker_process(db_name: str) -> subprocess.Popen:
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql://{db['USER'] or 'postgres'}@/{db_name}?host={db['HOST']}",
        "REDIS_URL": settings.REDIS_URL,
        "TESTING": "true",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "AGNO_TELEMETRY": "false",
        "WORKFLOW_LEASE_GRACE_SECONDS": "0",
    }
    return subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "runs",
            "--pool",
            "solo",
            "-n",
            "doomed@%h",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def test_worker_killed_mid_step_is_recovered_once(llm, make_agent, make_workflow, alice):
    """A worker dies (SIGKILL) inside an agent step. Once the lease expires the sweeper re-queues the
    step; a healthy worker runs it to the end; the dead attempt's agent run is marked failed."""
    from celery.contrib.testing.worker import start_worker

    from config.celery import app
    from tests.conftest import wait_for

    slow = make_agent(name="Slow")
    wf = make_workflow(
        [
            node("start", "trigger", kind="manual"),
            node(
                "think",
                "agent",
                agent_id=slow.pk,
                input="[[latency:400]] {{ input.text }}",
                node_timeout=2,
                retry={"max_attempts": 2, "backoff_seconds": 0},
            ),
            node("out", "end", output="{{ nodes.think.output }}"),
        ],
        chain("start", "think", "out"),
    )
    proc = _worker_process(settings.DATABASES["default"]["NAME"])
    try:
        run = services.run_start(workflow=wf, by=alice, input={"text": "one two three four five six"})
        wait_for(
            lambda: StepRun.objects.filter(run=run, node_id="think", status="running").exists(), timeout=30
        )
        time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    step = StepRun.objects.get(run=run, node_id="think")
    assert step.status == "running" and step.attempt == 1
    # The sweeper does nothing while the lease holds, then re-queues the step.
    assert engine.sweep()["requeued"] == 0
    counts = engine.sweep(now=step.lease_expires_at + timedelta(seconds=1))
    assert counts["requeued"] == 1
    with start_worker(
        app, pool="solo", perform_ping_check=False, loglevel="WARNING", queues=["default", "runs"]
    ):
        run = finished(run, timeout=30)
    assert run.status == "succeeded", run.error
    step.refresh_from_db()
    assert step.attempt == 2 and step.status == "succeeded"
    runs = list(AgentRun.objects.filter(agent=slow).order_by("id").values_list("status", flat=True))
    assert runs == ["failed", "succeeded"]  # the dead attempt's run is closed, not left running
    assert run.steps.filter(node_id="out").count() == 1  # nothing ran twice


def test_lease_expired_on_last_attempt_fails_the_step(make_workflow, alice, celery_worker):
    wf = make_workflow(
        [node("start", "trigger", kind="manual"), node("pause", "delay", seconds=3600)],
        chain("start", "pause"),
    )
    run = waiting(services.run_start(workflow=wf, by=alice, input={}))
    # Pretend a worker claimed a step and vanished: running, lease in the past, no attempts left.
    StepRun.objects.filter(run=run, node_id="pause").update(
        status="running", attempt=1, lease_expires_at=timezone.now() - timedelta(seconds=5)
    )
    assert engine.sweep()["failed"] == 1
    run.refresh_from_db()
    assert run.status == "failed" and "lease" in run.error


def test_schedule_trigger_fires_through_beat(make_workflow, alice, celery_worker):
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler

    from config.celery import app

    wf = make_workflow(
        [
            node("start", "trigger", kind="schedule", cron="* * * * *", timezone="Europe/Paris"),
            node("out", "end", output="tick {{ input.scheduled }}"),
        ],
        chain("start", "out"),
    )
    task = PeriodicTask.objects.get(name=f"workflow:{wf.pk}:start")
    assert str(task.crontab.timezone) == "Europe/Paris" and task.crontab.minute == "*"
    PeriodicTask.objects.filter(pk=task.pk).update(last_run_at=timezone.now() - timedelta(minutes=5))
    scheduler = DatabaseScheduler(app=app, lazy=False)
    scheduler.tick()  # beat's own loop step: sends what is due to the broker
    from tests.conftest import wait_for

    run = wait_for(lambda: WorkflowRun.objects.filter(workflow=wf).first(), timeout=15)
    run = finished(run)
    assert run.source == "schedule" and run.output == "tick true"
    # Archiving removes the schedule.
    services.workflow_archive(workflow=wf, by=alice)
    assert not PeriodicTask.objects.filter(name__startswith=f"workflow:{wf.pk}:").exists()

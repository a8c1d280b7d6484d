"""Run services: starting, cancelling and deciding runs; tasks and XP; memory and context."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from accounts.services import ServiceError
from agents.models import Agent, AgentRun, ChatSession, Message, Task
from agents.runtime import cancel as run_cancel_flag
from config import prepared

logger = logging.getLogger(__name__)


# --------------------------------------------------------------- runs


def run_create(
    *,
    agent: Agent,
    user: User | None,
    input: str,
    session: ChatSession | None = None,
    new_session: bool = True,
    source: str = AgentRun.Source.CHAT,
    enqueue: bool = True,
    streamed: bool = True,
) -> AgentRun:
    """Record the user's message and a queued run in one transaction, then queue it on commit.
    `enqueue=False` is for a caller that executes the run itself (a workflow step on its worker).
    `streamed=False` is for a caller that waits for the whole answer (the API without stream): the
    model is asked for it in one piece."""
    if agent.is_archived:
        raise ServiceError(
            "This agent is archived; restore it before running it.", code="agent_archived", status=409
        )
    version = agent.published_version or agent.latest_version()
    if version is None:
        raise ServiceError("This agent has no version to run.", code="no_version", status=409)
    text = input.strip()
    if not text:
        raise ServiceError("Say something first: the message is empty.", code="empty_input")
    from billing import ledger

    estimate = _estimate(version, text)
    try:
        return _create(
            agent=agent,
            version=version,
            user=user,
            text=text,
            session=session,
            new_session=new_session,
            source=source,
            estimate=estimate,
            enqueue=enqueue,
            streamed=streamed,
        )
    except ledger.InsufficientCredits as exc:
        raise ServiceError(str(exc), code="insufficient_credits", status=402) from None
    except IntegrityError as exc:  # the credit hold rode with the commit, and did not fit
        refused = ledger.refusal(exc, agent.organization_id, estimate)
        if refused is None:
            raise
        raise ServiceError(str(refused), code="insufficient_credits", status=402) from None


def _estimate(version: Any, text: str) -> Decimal:
    from agents.runtime.builder import version_config
    from billing import pricing

    config = version_config(version)
    return pricing.estimate_run(config.model.name, text, config.instructions, config.model.max_tokens)


def _create(
    *,
    agent: Agent,
    version: Any,
    user: User | None,
    text: str,
    session: ChatSession | None,
    new_session: bool,
    source: str,
    estimate: Decimal,
    enqueue: bool,
    streamed: bool,
) -> AgentRun:
    from agents.runtime.builder import version_config
    from agents.tasks import execute_run
    from billing import hooks

    created_session = session is None and new_session
    # Every run passes here (the API's hundreds a second). One round trip for billing's checks (the
    # plan's monthly runs, the agent's cost cap: a 402) and the keys of the rows, before the
    # transaction; the rows go out with the COMMIT, with the credit hold below, in one flight that
    # carries the BEGIN too (config.postgres).
    kinds: tuple[type[Any], ...] = (ChatSession,) if created_session else ()
    kinds += (AgentRun, Message) if created_session or session is not None else (AgentRun,)
    ids = iter(
        hooks.begin_agent_run(org_id=agent.organization_id, agent_id=agent.pk, estimate=estimate, keys=kinds)
    )
    with transaction.atomic():
        if created_session:
            session = ChatSession(
                pk=next(ids), organization_id=agent.organization_id, agent=agent, user=user, title=text[:80]
            )
            prepared.insert([session], at_commit=True)
        run = AgentRun(
            pk=next(ids),
            organization_id=agent.organization_id,
            agent=agent,
            version=version,
            session=session,
            user=user,
            input=text,
            source=source,
            streamed=streamed,
        )
        prepared.insert([run], at_commit=True)
        if session is not None:
            prepared.insert(
                [
                    Message(
                        pk=next(ids),
                        organization_id=agent.organization_id,
                        session=session,
                        role=Message.Role.USER,
                        content=text,
                        run=run,
                    )
                ],
                at_commit=True,
            )
            if not created_session:
                prepared.update(
                    ChatSession,
                    where={"id": session.pk},
                    values={"updated_at": timezone.now()},
                    at_commit=True,
                )
        now = timezone.now()
        # Activity is shown to the minute: skip the write when it is that fresh already.
        if agent.last_activity_at is None or (now - agent.last_activity_at).total_seconds() > 60:
            Agent.objects.filter(pk=agent.pk).update(last_activity_at=now)
        if enqueue:
            transaction.on_commit(lambda: execute_run.delay(run.pk))
        # Last: the hold on the run's estimated cost. It locks the organization's balance row, which
        # every run of the organization passes through, so it is sent with the COMMIT.
        hooks.reserve_agent_run(run=run, model=version_config(version).model.name, estimate=estimate)
    return run


def run_cancel(*, run: AgentRun) -> AgentRun:
    """Ask a run to stop. A queued run stops at once; a running one within a second."""
    if run.is_finished:
        return run
    run_cancel_flag.request(run.pk)
    updated = AgentRun.objects.filter(pk=run.pk, status=AgentRun.Status.QUEUED).update(
        status=AgentRun.Status.CANCELLED, finished_at=timezone.now(), error="Cancelled before it started."
    )
    if updated:
        from agents.runtime.events import event_emit
        from billing.hooks import run_keys
        from billing.ledger import release

        release(
            org=run.organization_id,
            reservation_key=run_keys(run.pk)[0],
            description=f"Run {run.pk} cancelled",
        )
        event_emit(run_id=run.pk, type="done", payload={"status": "cancelled"})
    run.refresh_from_db()
    return run


# --------------------------------------------------------------- tasks


def task_create(
    *, agent: Agent, by: User | None, title: str, details: str = "", priority: str = Task.Priority.MEDIUM
) -> Task:
    if priority not in Task.Priority.values:
        raise ServiceError(f"“{priority}” is not a priority.", code="invalid_priority")
    with transaction.atomic():
        task = Task.objects.create(
            organization_id=agent.organization_id,
            agent=agent,
            title=title.strip(),
            details=details,
            priority=priority,
            created_by=by,
        )
        prompt = f"Task: {task.title}\nPriority: {priority}\n\n{details}".strip()
        run = run_create(agent=agent, user=by, input=prompt, new_session=False, source=AgentRun.Source.TASK)
        task.run = run
        task.status = Task.Status.RUNNING
        task.save(update_fields=["run", "status"])
    return task


@transaction.atomic
def task_finish(*, run: AgentRun) -> Task | None:
    """Called by the runtime when a task's run ends: mark the task and award XP on success."""
    task = Task.objects.select_for_update().filter(run=run).first()
    if task is None or task.status not in (Task.Status.PENDING, Task.Status.RUNNING):
        return task
    if run.status == AgentRun.Status.SUCCEEDED:
        task.status = Task.Status.COMPLETED
        task.xp_awarded = task.xp_reward
        task.completed_at = timezone.now()
        agent_award_xp(agent_id=task.agent_id, xp=task.xp_reward)
    else:
        task.status = Task.Status.FAILED if run.status == AgentRun.Status.FAILED else Task.Status.CANCELLED
    task.save(update_fields=["status", "xp_awarded", "completed_at"])
    return task


def agent_award_xp(*, agent_id: int, xp: int) -> Agent:
    Agent.objects.filter(pk=agent_id).update(xp=F("xp") + xp)
    agent = Agent.objects.get(pk=agent_id)
    level = Agent.level_for_xp(agent.xp)
    if level != agent.level:
        agent.level = level
        agent.save(update_fields=["level"])
        if agent.created_by_id:
            from community.services import notify

            notify(
                user_id=agent.created_by_id,
                organization_id=agent.organization_id,
                level="success",
                kind="agent.level_up",
                text=f"{agent.avatar} {agent.name} reached level {level}: {agent.skills[-1]}",
            )
    return agent


# ------------------------------------------------------- memory, context


def memory_add(*, agent: Agent, user: User, content: str) -> Any:
    from agents.models import AgentMemory

    content = content.strip()
    if not content:
        raise ServiceError("A memory cannot be empty.", code="invalid")
    return AgentMemory.objects.create(
        organization_id=agent.organization_id, agent=agent, user=user, content=content[:2000]
    )


def memory_update(*, memory: Any, content: str) -> Any:
    content = content.strip()
    if not content:
        raise ServiceError("A memory cannot be empty.", code="invalid")
    memory.content = content[:2000]
    memory.save(update_fields=["content", "updated_at"])
    return memory


def context_set(*, agent: Agent, key: str, value: Any) -> Any:
    from agents.models import AgentContextEntry

    key = key.strip()
    if not key or len(key) > 100:
        raise ServiceError("A context key needs 1 to 100 characters.", code="invalid")
    entry, _ = AgentContextEntry.objects.update_or_create(
        organization_id=agent.organization_id, agent=agent, key=key, defaults={"value": value}
    )
    return entry


def run_decide(*, run: AgentRun, approved: bool, by: User | None, note: str = "") -> AgentRun:
    """Approve or decline the tool calls a waiting run asked about, then resume it on a worker."""
    from agents.tasks import resume_run

    with transaction.atomic():
        locked = AgentRun.objects.select_for_update().get(pk=run.pk)
        if locked.status != AgentRun.Status.WAITING or not locked.paused_state:
            raise ServiceError("This run is not waiting for an approval.", code="not_waiting", status=409)
        if "decision" in locked.paused_state:
            raise ServiceError("This run was already decided.", code="already_decided", status=409)
        locked.paused_state = {
            **locked.paused_state,
            "decision": {"approved": approved, "note": note[:500], "by": by.pk if by else None},
        }
        locked.save(update_fields=["paused_state"])
        transaction.on_commit(lambda: resume_run.delay(run.pk))
    locked.refresh_from_db()
    return locked

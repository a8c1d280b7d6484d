from __future__ import annotations

import pytest
from django.core.management import call_command

from accounts.models import Organization, User
from agents.models import Agent, AgentRun
from agents.runtime.executor import execute_run

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_and_gives_agents_that_answer_offline(settings, monkeypatch):
    settings.DEBUG = True
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("DEFAULT_LLM_MODEL", raising=False)

    call_command("seed_demo")
    call_command("seed_demo")

    org = Organization.objects.get(slug="demo")
    agents = list(Agent.objects.for_org(org))
    assert len(agents) == 3
    assert User.objects.filter(email="admin@agentos.local", is_superuser=True).count() == 1
    from agents import services

    run = services.run_create(
        agent=agents[0], user=User.objects.get(email="demo@agentos.local"), input="hello"
    )
    execute_run(run.pk)
    run.refresh_from_db()
    assert run.status == AgentRun.Status.SUCCEEDED, run.error
    assert run.output.startswith("[Demo model")

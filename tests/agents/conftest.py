"""Agents tests talk to the fake OpenAI-compatible server through agno and the openai client, over HTTP."""

from __future__ import annotations

import pytest

from agents import services
from agents.runtime.providers import clients_clear


@pytest.fixture
def llm(fake_llm, monkeypatch):
    """Point the platform's OpenAI provider at the fake server."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-platform-key")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_llm.base_url)
    fake_llm.token_latency_ms = 0
    fake_llm.reset()
    clients_clear()
    yield fake_llm
    clients_clear()


def make_config(**overrides):
    config = {"instructions": "You are helpful.", "model": {"provider": "openai", "name": "fake-gpt"}}
    config.update(overrides)
    return config


@pytest.fixture
def make_agent(acme, alice):
    def make(name="Helper", publish=True, **config):
        return services.agent_create(
            org=acme, by=alice, name=name, config=make_config(**config), publish=publish
        )

    return make

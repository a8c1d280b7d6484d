"""Billing tests share the fake LLM fixture with the agents tests."""

from tests.agents.conftest import llm  # noqa: F401 - re-exported fixture

"""The agent runtime: providers, tools, guardrails, building agno agents and executing runs."""

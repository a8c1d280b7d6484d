"""Agents API paths, relative to /api/v1/ (doc 001 §4.1, §4.3, §4.4, §4.6, §4.7)."""

from __future__ import annotations

from django.urls import path

from agents.api import agents, handoffs, providers, runs, sessions, tasks, tools

urlpatterns = [
    # agents (§4.1) and their versions
    path("agents/", agents.agent_list, name="api-agents"),
    path("agents/tools/available", tools.tools_available, name="api-agent-tools-available"),
    path("agents/output-types/available", tools.output_types_available, name="api-output-types"),
    path("agents/output-types/<str:type_name>", tools.output_type_detail, name="api-output-type"),
    path("agents/<pk:agent_id>", agents.agent_detail, name="api-agent"),
    path("agents/<pk:agent_id>/clone", agents.agent_clone, name="api-agent-clone"),
    path("agents/<pk:agent_id>/restore", agents.agent_restore, name="api-agent-restore"),
    path("agents/<pk:agent_id>/run", runs.agent_run, name="api-agent-run"),
    path("agents/<pk:agent_id>/versions", agents.version_list, name="api-agent-versions"),
    path("agents/<pk:agent_id>/versions/<pk:number>", agents.version_detail, name="api-agent-version"),
    path("agents/<pk:agent_id>/publish", agents.agent_publish, name="api-agent-publish"),
    path("agents/<pk:agent_id>/rollback", agents.agent_rollback, name="api-agent-rollback"),
    path("agents/<pk:agent_id>/context", agents.agent_context, name="api-agent-context"),
    # handoffs (§4.3) and tools (§4.4)
    path("agents/<pk:agent_id>/handoffs", handoffs.handoff_list, name="api-agent-handoffs"),
    path("agents/<pk:agent_id>/handoffs/<str:handoff_id>", handoffs.handoff_detail, name="api-agent-handoff"),
    path("agents/<pk:agent_id>/tools", tools.tool_list, name="api-agent-tools"),
    path("agents/<pk:agent_id>/tools/<str:tool_id>", tools.tool_detail, name="api-agent-tool"),
    # per-user memory
    path("agents/<pk:agent_id>/memory", sessions.memory_list, name="api-agent-memory"),
    path("agents/<pk:agent_id>/memory/<pk:memory_id>", sessions.memory_detail, name="api-agent-memory-item"),
    # models and BYO keys (§4.6)
    path("models/providers", providers.provider_list, name="api-providers"),
    path("models/providers/<str:provider_id>/models", providers.provider_models, name="api-provider-models"),
    path(
        "models/providers/<str:provider_id>/capabilities",
        providers.provider_capabilities,
        name="api-provider-capabilities",
    ),
    path("users/api-keys", providers.provider_key_list, name="api-provider-keys"),
    path("users/api-keys/<pk:key_id>", providers.provider_key_detail, name="api-provider-key"),
    # runs
    path("runs/", runs.run_list, name="api-runs"),
    path("runs/<pk:run_id>", runs.run_detail, name="api-run"),
    path("runs/<pk:run_id>/events", runs.run_events, name="api-run-events"),
    path("runs/<pk:run_id>/cancel", runs.run_cancel, name="api-run-cancel"),
    path("runs/<pk:run_id>/approve", runs.run_approve, name="api-run-approve"),
    # conversations
    path("sessions/", sessions.session_list, name="api-sessions"),
    path("sessions/<pk:session_id>", sessions.session_detail, name="api-session"),
    path("sessions/<pk:session_id>/messages", sessions.session_messages, name="api-session-messages"),
    path("messages/<pk:message_id>/feedback", sessions.message_feedback, name="api-message-feedback"),
    # tasks
    path("tasks/", tasks.task_list, name="api-tasks"),
    path("tasks/<pk:task_id>", tasks.task_detail, name="api-task"),
    path("tasks/<pk:task_id>/logs", tasks.task_logs, name="api-task-logs"),
]

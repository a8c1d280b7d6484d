"""Agents pages. One module per area; each view loads through request.org and checks the role."""

from agents.views.agents import archive, clone, hire, index, knowledge_tab, restore, settings_tab, tools_tab
from agents.views.builder import builder_edit, builder_new, builder_validate
from agents.views.chat import (
    chat,
    chat_send,
    message_feedback,
    run_cancel,
    run_decide,
    run_regenerate,
    session_delete,
)
from agents.views.memory import (
    context_delete,
    context_set,
    memory_add,
    memory_delete,
    memory_edit,
    memory_tab,
)
from agents.views.providers import provider_key_remove, provider_key_save, providers
from agents.views.runs import run_detail, runs_tab
from agents.views.tasks import tasks_tab
from agents.views.versions import version_publish, version_rollback, versions_tab

__all__ = [
    "archive",
    "builder_edit",
    "builder_new",
    "builder_validate",
    "chat",
    "chat_send",
    "clone",
    "context_delete",
    "context_set",
    "hire",
    "index",
    "knowledge_tab",
    "memory_add",
    "memory_delete",
    "memory_edit",
    "memory_tab",
    "message_feedback",
    "provider_key_remove",
    "provider_key_save",
    "providers",
    "restore",
    "run_cancel",
    "run_decide",
    "run_detail",
    "run_regenerate",
    "runs_tab",
    "session_delete",
    "settings_tab",
    "tasks_tab",
    "tools_tab",
    "version_publish",
    "version_rollback",
    "versions_tab",
]

from django.urls import path

from agents import views

A = "<pk:agent_id>/"

urlpatterns = [
    path("", views.index, name="agents_index"),
    path("hire/", views.hire, name="agents_hire"),
    path("new/", views.builder_new, name="agents_new"),
    path("new/validate/", views.builder_validate, name="agents_new_validate"),
    path("models/", views.providers, name="agents_providers"),
    path("models/keys/", views.provider_key_save, name="agents_provider_key_save"),
    path("models/keys/<pk:key_id>/delete/", views.provider_key_remove, name="agents_provider_key_delete"),
    path(A, views.chat, name="agents_detail"),
    path(A + "chat/send/", views.chat_send, name="agents_chat_send"),
    path(A + "sessions/<pk:session_id>/delete/", views.session_delete, name="agents_session_delete"),
    path(A + "messages/<pk:message_id>/feedback/", views.message_feedback, name="agents_message_feedback"),
    path(A + "runs/", views.runs_tab, name="agents_runs"),
    path(A + "runs/<pk:run_id>/", views.run_detail, name="agents_run_detail"),
    path(A + "runs/<pk:run_id>/cancel/", views.run_cancel, name="agents_run_cancel"),
    path("runs/<pk:run_id>/decide/", views.run_decide, name="agents_run_decide"),
    path(A + "runs/<pk:run_id>/regenerate/", views.run_regenerate, name="agents_run_regenerate"),
    path(A + "tasks/", views.tasks_tab, name="agents_tasks"),
    path(A + "memory/", views.memory_tab, name="agents_memory"),
    path(A + "memory/add/", views.memory_add, name="agents_memory_add"),
    path(A + "memory/<pk:memory_id>/", views.memory_edit, name="agents_memory_edit"),
    path(A + "memory/<pk:memory_id>/delete/", views.memory_delete, name="agents_memory_delete"),
    path(A + "context/", views.context_set, name="agents_context_set"),
    path(A + "context/<pk:entry_id>/delete/", views.context_delete, name="agents_context_delete"),
    path(A + "tools/", views.tools_tab, name="agents_tools"),
    path(A + "knowledge/", views.knowledge_tab, name="agents_knowledge"),
    path(A + "versions/", views.versions_tab, name="agents_versions"),
    path(A + "versions/<pk:version_id>/publish/", views.version_publish, name="agents_version_publish"),
    path(A + "versions/<pk:version_id>/rollback/", views.version_rollback, name="agents_version_rollback"),
    path(A + "settings/", views.settings_tab, name="agents_settings"),
    path(A + "archive/", views.archive, name="agents_archive"),
    path(A + "restore/", views.restore, name="agents_restore"),
    path(A + "clone/", views.clone, name="agents_clone"),
    path(A + "edit/", views.builder_edit, name="agents_edit"),
    path(A + "edit/validate/", views.builder_validate, name="agents_edit_validate"),
]

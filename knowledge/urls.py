from django.urls import path

from knowledge import views

KB = "<pk:kb_id>/"
DOC = KB + "documents/<pk:doc_id>/"

urlpatterns = [
    path("", views.index, name="knowledge_index"),
    path("search/", views.playground, name="knowledge_search"),
    path("chunks/<pk:chunk_id>/", views.chunk, name="knowledge_chunk"),
    path("agents/<pk:agent_id>/attach/", views.agent_attach, name="knowledge_agent_attach"),
    path("agents/<pk:agent_id>/detach/<pk:kb_id>/", views.agent_detach, name="knowledge_agent_detach"),
    path(KB, views.detail, name="knowledge_detail"),
    path(KB + "settings/", views.settings_page, name="knowledge_settings"),
    path(KB + "reindex/", views.reindex, name="knowledge_reindex"),
    path(KB + "delete/", views.delete, name="knowledge_delete"),
    path(KB + "upload/", views.upload, name="knowledge_upload"),
    path(KB + "url/", views.add_url, name="knowledge_add_url"),
    path(KB + "text/", views.add_text, name="knowledge_add_text"),
    path(KB + "stats/", views.stats, name="knowledge_stats"),
    path(KB + "documents/", views.documents, name="knowledge_documents"),
    path(DOC, views.document_detail, name="knowledge_document"),
    path(DOC + "row/", views.document_row, name="knowledge_document_row"),
    path(DOC + "retry/", views.document_retry, name="knowledge_document_retry"),
    path(DOC + "delete/", views.document_delete, name="knowledge_document_delete"),
]

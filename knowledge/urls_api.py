"""Knowledge API paths, relative to /api/v1/ (issue 4 "Search", doc 001 §4.5)."""

from __future__ import annotations

from django.urls import path

from knowledge.api import bases, files

KB = "knowledge-bases/<pk:kb_id>"

urlpatterns = [
    path("knowledge-bases/", bases.knowledge_base_list, name="api-knowledge-bases"),
    path(KB, bases.knowledge_base_detail, name="api-knowledge-base"),
    path(KB + "/reindex", bases.knowledge_base_reindex, name="api-knowledge-base-reindex"),
    path(KB + "/documents/", bases.document_list, name="api-knowledge-documents"),
    path(KB + "/documents/<pk:doc_id>", bases.document_detail, name="api-knowledge-document"),
    path(KB + "/documents/<pk:doc_id>/retry", bases.document_retry, name="api-knowledge-document-retry"),
    path("knowledge/search", bases.knowledge_search, name="api-knowledge-search"),
    # files (§4.5)
    path("files/upload", files.file_upload, name="api-file-upload"),
    path("files/", files.file_list, name="api-files"),
    path("files/<pk:file_id>", files.file_detail, name="api-file"),
    path("agents/<pk:agent_id>/files", files.agent_file_list, name="api-agent-files"),
    path("agents/<pk:agent_id>/files/<pk:file_id>", files.agent_file_detail, name="api-agent-file"),
]

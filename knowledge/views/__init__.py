"""Knowledge pages: the bases list, a base's documents and settings, the search playground, the chunk
a citation opens, and attaching bases to agents."""

from knowledge.views.agents import agent_attach, agent_detach
from knowledge.views.bases import delete, detail, index, reindex, settings_page
from knowledge.views.documents import (
    add_text,
    add_url,
    document_delete,
    document_detail,
    document_retry,
    document_row,
    documents,
    stats,
    upload,
)
from knowledge.views.search import chunk, playground

__all__ = [
    "add_text",
    "add_url",
    "agent_attach",
    "agent_detach",
    "chunk",
    "delete",
    "detail",
    "document_delete",
    "document_detail",
    "document_retry",
    "document_row",
    "documents",
    "index",
    "playground",
    "reindex",
    "settings_page",
    "stats",
    "upload",
]

"""Thin tasks on the `ingest` queue (CELERY_TASK_ROUTES): take ids, call the ingestion services."""

from __future__ import annotations

from celery import shared_task

from knowledge import ingest


@shared_task(acks_late=True, ignore_result=True)
def ingest_document(document_id: int) -> str:
    # The pipeline claims the document with a conditional update, so a redelivered task does nothing,
    # and a document's own failure is recorded on it rather than raised here.
    return ingest.ingest(document_id)


@shared_task(acks_late=True, ignore_result=True)
def reindex_knowledge_base(kb_id: int) -> int:
    return ingest.knowledge_base_queue_pending(kb_id=kb_id)

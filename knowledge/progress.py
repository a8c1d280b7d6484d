"""Ingestion progress: every change goes out through `publish_progress` to the group `kb.<kb_id>`.

The Document row is the record (status, progress, error); the message is only a notice, so a lost
one is harmless and a page that loads later reads the row. Sends go through the agents' long-lived
publisher loop, so a worker never builds an event loop per update.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from agents.runtime.events import _get_publisher


def kb_group(kb_id: int) -> str:
    return f"kb.{kb_id}"


@dataclass(frozen=True)
class Progress:
    document_id: int
    status: str
    progress: int
    error: str = ""

    def message(self) -> dict[str, Any]:
        return {"type": "kb.progress", **asdict(self)}


def publish_progress(*, kb_id: int, document_id: int, status: str, progress: int, error: str = "") -> None:
    notice = Progress(
        document_id=document_id, status=status, progress=max(0, min(100, progress)), error=error
    )
    _get_publisher().send(kb_group(kb_id), notice.message())

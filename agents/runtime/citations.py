"""Citations a reply carries: the sources knowledge_search returned during the run."""

from __future__ import annotations

import json
from typing import Any


def citations_in(result: str) -> list[dict[str, Any]]:
    """Sources a tool returned for the reply to cite (knowledge_search's JSON `results`)."""
    if not result.startswith("{") or '"chunk_id"' not in result:
        return []
    try:
        data = json.loads(result)
    except ValueError:
        return []
    items = data.get("results") if isinstance(data, dict) else None
    return [
        {
            "chunk_id": item["chunk_id"],
            "document_id": item["document_id"],
            "title": str(item.get("title") or ""),
            "page": item.get("page"),
        }
        for item in items or []
        if isinstance(item, dict)
        and isinstance(item.get("chunk_id"), int)
        and isinstance(item.get("document_id"), int)
    ]

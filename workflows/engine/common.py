"""Shared by every part of the engine: the per-process graph cache, timeouts and retry policies,
queueing a step, and small value helpers."""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any

from django.db import transaction

from workflows.engine.types import DEFAULT_TIMEOUT, DEFAULT_TIMEOUTS, MAX_OUTPUT_CHARS
from workflows.graph import Graph
from workflows.models import WorkflowVersion

_graphs: OrderedDict[int, Graph] = OrderedDict()
_graphs_lock = threading.Lock()


def graph_for(version_id: int) -> Graph:
    """Versions are immutable, so their parsed graphs are cached per process."""
    with _graphs_lock:
        graph = _graphs.get(version_id)
        if graph is not None:
            _graphs.move_to_end(version_id)
            return graph
    data = WorkflowVersion.objects.values_list("graph", flat=True).get(pk=version_id)
    graph = Graph.from_json(data)
    with _graphs_lock:
        _graphs[version_id] = graph
        while len(_graphs) > 512:
            _graphs.popitem(last=False)
    return graph


def timeout_of(node: dict[str, Any]) -> int:
    return int(node.get("timeout_seconds") or DEFAULT_TIMEOUTS.get(node["type"], DEFAULT_TIMEOUT))


def retry_of(node: dict[str, Any]) -> tuple[int, float]:
    retry = node.get("retry") or {}
    return int(retry.get("max_attempts", 1) or 1), float(retry.get("backoff_seconds", 2) or 0)


def dispatch(step_id: int, countdown: float | None = None) -> None:
    from workflows.tasks import run_step

    if countdown:
        run_step.apply_async(args=[step_id], countdown=countdown)
    else:
        run_step.delay(step_id)


def _dispatch_on_commit(step_ids: list[int], countdown: float | None = None) -> None:
    def send() -> None:
        for step_id in step_ids:
            dispatch(step_id, countdown)

    if step_ids:
        transaction.on_commit(send)


def _json_safe(value: Any) -> Any:
    import json

    text = json.dumps(value, default=str)
    if len(text) > MAX_OUTPUT_CHARS:
        return {"truncated": True, "preview": text[:2000]}
    return json.loads(text)


def _has_loops(graph: Graph) -> bool:
    return any(n["type"] == "loop" for n in graph.nodes.values())


def _preview(value: Any) -> Any:
    import json

    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 500 else text[:500] + "…"


def _ms(start: datetime | None, end: datetime) -> int | None:
    return int((end - start).total_seconds() * 1000) if start else None

"""Executors of the data and integration nodes: HTTP request (through the safe outbound client),
knowledge retrieval, integration actions (added through `register_integration_action`) and sub-workflows."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from workflows.engine.types import NodeError, Result, StepContext, Wait
from workflows.expressions import render, render_text

# Integration actions (later integrations work registers them): (app, action) -> callable(org_id, params) -> output.
_INTEGRATION_ACTIONS: dict[tuple[str, str], Callable[[int, dict[str, Any]], Any]] = {}


def register_integration_action(app: str, action: str, fn: Callable[[int, dict[str, Any]], Any]) -> None:
    _INTEGRATION_ACTIONS[(app, action)] = fn


def integration_action(app: str, action: str) -> Callable[[int, dict[str, Any]], Any] | None:
    return _INTEGRATION_ACTIONS.get((app, action))


def http(ctx: StepContext) -> Result:
    from agents.runtime.tools import _SECRET_REF
    from integrations.safe_http import OutboundHTTPError, UnsafeURLError, safe_request
    from integrations.secrets import secret_value

    def resolve_secrets(org_id: int, value: str) -> str:
        return _SECRET_REF.sub(lambda m: secret_value(org_id=org_id, name=m.group(1)), value)

    cfg = ctx.config
    url = render_text(cfg["url"], ctx.scope).strip()
    method = (cfg.get("method") or "GET").upper()
    try:
        headers = {
            str(k): resolve_secrets(ctx.org_id, render_text(v, ctx.scope))
            for k, v in (cfg.get("headers") or {}).items()
        }
    except Exception as exc:
        raise NodeError(f"A header could not be filled in: {exc}", retryable=False) from None
    body = cfg.get("body")
    rendered = render(body, ctx.scope) if body not in (None, "") else None
    kwargs: dict[str, Any] = {
        "headers": headers,
        "timeout": float(min(int(ctx.node.get("timeout_seconds") or 30), 60)),
    }
    if rendered is not None:
        if isinstance(rendered, dict | list):
            kwargs["json"] = rendered
        else:
            kwargs["data"] = str(rendered)
    ctx.log(f"{method} {url}")
    try:
        response = safe_request(method, url, **kwargs)
    except UnsafeURLError as exc:
        raise NodeError(f"Refused: {exc}", retryable=False) from None
    except OutboundHTTPError as exc:
        raise NodeError(f"The request failed: {exc}") from None
    try:
        payload: Any = response.json()
    except ValueError:
        payload = response.text[:100_000]
    ctx.log(f"→ {response.status_code}")
    output = {"status": response.status_code, "body": payload, "url": response.url}
    if response.status_code >= 400 and not cfg.get("allow_error_status"):
        raise NodeError(
            f"{method} {url} answered {response.status_code}.",
            retryable=response.status_code >= 500 or response.status_code == 429,
        )
    return Result(output=output)


def knowledge(ctx: StepContext) -> Result:
    from django.http import Http404

    from knowledge.search import SearchError, search

    cfg = ctx.config
    query = render_text(cfg["query"], ctx.scope).strip()
    if not query:
        raise NodeError("The search query is empty.", retryable=False)
    try:
        hits = search(
            org=ctx.org_id,
            query=query,
            knowledge_base_ids=[int(i) for i in cfg["knowledge_base_ids"]],
            top_k=int(cfg.get("top_k") or 5),
            mode=cfg.get("mode") or "hybrid",
        )
    except Http404:
        raise NodeError(
            "A knowledge base of this node is not in the organization.", retryable=False
        ) from None
    except SearchError as exc:
        raise NodeError(str(exc), retryable=False) from None
    chunks = [
        {
            "document": h.document_title,
            "document_id": h.document_id,
            "page": h.page,
            "text": h.text,
            "score": h.score,
        }
        for h in hits
    ]
    ctx.log(f"{len(chunks)} chunk(s) for {query!r}")
    text = "\n\n".join(
        f"[{c['document']}{', p. ' + str(c['page']) if c['page'] else ''}] {c['text']}" for c in chunks
    )
    return Result(output={"query": query, "chunks": chunks, "text": text})


def integration(ctx: StepContext) -> Result:
    cfg = ctx.config
    fn = integration_action(str(cfg.get("app")), str(cfg.get("action")))
    if fn is None:
        raise NodeError(
            f"The integration action {cfg.get('app')}.{cfg.get('action')} is not available.", retryable=False
        )
    params = render(cfg.get("params") or {}, ctx.scope)
    return Result(output=fn(ctx.org_id, params))


def subworkflow(ctx: StepContext) -> Result:
    from workflows.engine import start_run
    from workflows.models import Workflow

    cfg = ctx.config
    child = (
        Workflow.objects.for_org(ctx.org_id)
        .filter(pk=int(cfg["workflow_id"]))
        .select_related("published_version")
        .first()
    )
    if child is None or child.status == Workflow.Status.ARCHIVED:
        raise NodeError(
            f"Workflow {cfg['workflow_id']} is not available in this organization.", retryable=False
        )
    if child.published_version is None:
        raise NodeError(f"The workflow “{child.name}” is not published.", retryable=False)
    depth = 0
    parent = ctx.run
    while parent.parent_step_id and depth < 10:
        depth += 1
        parent = parent.parent_step.run  # type: ignore[union-attr]
    if depth >= 5:
        raise NodeError("Sub-workflows are nested too deeply (5 levels at most).", retryable=False)
    data = render(cfg.get("input") or "{{ last }}", ctx.scope)
    if not isinstance(data, dict):
        data = {"text": data if isinstance(data, str) else json.dumps(data, default=str)}
    run = start_run(
        workflow=child,
        version=child.published_version,
        user=ctx.run.user,
        input=data,
        source="subworkflow",
        parent_step=ctx.step,
    )
    ctx.log(f"started {child.name} (run {run.pk})")
    return Result(wait=Wait(state={"child_run": run.pk}))

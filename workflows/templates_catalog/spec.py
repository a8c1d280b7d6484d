"""The shape of a gallery template, and small helpers that keep the catalog's graphs readable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def node(nid: str, type_: str, name: str, x: int, y: int, **config: Any) -> dict[str, Any]:
    return {"id": nid, "type": type_, "name": name, "config": config, "position": {"x": x, "y": y}}


def agent(nid: str, name: str, x: int, y: int, template: str, input: str, **extra: Any) -> dict[str, Any]:
    return node(nid, "agent", name, x, y, agent_template=template, input=input, **extra)


def edges(*chain: str | tuple[str, str, str]) -> list[dict[str, str]]:
    """`"a>b>c"` is a chain of `out` edges; `("a", "port", "b")` one edge from a named port."""
    out: list[dict[str, str]] = []
    for item in chain:
        if isinstance(item, tuple):
            out.append({"source": item[0], "target": item[2], "port": item[1]})
            continue
        ids = item.split(">")
        out.extend({"source": a, "target": b, "port": "out"} for a, b in zip(ids, ids[1:], strict=False))
    return out


@dataclass(frozen=True)
class TemplateSpec:
    slug: str
    name: str
    category: str  # WorkflowTemplate.Category value
    complexity: str  # WorkflowTemplate.Complexity value
    rating: str
    description: str
    graph: dict[str, Any]
    sample_input: dict[str, Any] = field(default_factory=dict)  # what the gallery's preview runs with

    def agent_templates(self) -> set[str]:
        return set().union(*(template_refs(n) for n in self.graph["nodes"]))


def template_refs(node: dict[str, Any]) -> set[str]:
    cfg = node.get("config") or {}
    refs = {cfg[k] for k in ("agent_template", "fallback_agent_template") if cfg.get(k)}
    return refs | set(cfg.get("agent_templates") or [])

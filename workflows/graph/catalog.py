"""The node catalog (types, ports, categories, limits) and `Graph`, a validated graph indexed for the engine."""

from __future__ import annotations

import re
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

NODE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
MAX_NODES = 200
MAX_LOOP_ITERATIONS = 1000


class GraphError(Exception):
    """A graph that cannot be saved or published. `errors` maps a node id (or "graph") to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        first = next(iter(errors.items()))
        super().__init__(f"{first[0]}: {first[1][0]}")


@dataclass(frozen=True)
class NodeType:
    type: str
    label: str
    category: str  # triggers, ai, logic, data, integrations
    description: str
    ports: tuple[str, ...] = ("out",)
    dynamic_ports: str = ""  # config key whose values are ports too (router labels, switch cases)
    required: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    inline: bool = False  # pure and fast: continues in the task of the step before it
    icon: str = "◆"


NODE_TYPES: dict[str, NodeType] = {
    t.type: t
    for t in [
        NodeType(
            "trigger",
            "Trigger",
            "triggers",
            "Where a run starts: by hand, the API, a schedule, a signed webhook or an integration event.",
            required=("kind",),
            defaults={"kind": "manual"},
            inline=True,
            icon="▶",
        ),
        NodeType(
            "agent",
            "Agent",
            "ai",
            "Runs one of your agents on a templated input. A fallback agent takes over if it fails.",
            ports=("out", "error"),
            required=("agent_id",),
            defaults={"input": "{{ input.text }}"},
            icon="🤖",
        ),
        NodeType(
            "team",
            "Team",
            "ai",
            "Several agents: route to the best one, coordinate them in turn, or broadcast to all.",
            ports=("out", "error"),
            required=("agent_ids", "mode"),
            defaults={"mode": "broadcast", "input": "{{ input.text }}"},
            icon="👥",
        ),
        NodeType(
            "router",
            "LLM router",
            "ai",
            "Classifies the input into one of your labels with structured output and takes that branch.",
            ports=("default", "error"),
            dynamic_ports="labels",
            required=("labels",),
            defaults={"input": "{{ input.text }}"},
            icon="🔀",
        ),
        NodeType(
            "condition",
            "Condition",
            "logic",
            "If/else on an expression over run variables.",
            ports=("true", "false", "error"),
            required=("expression",),
            inline=True,
            icon="❓",
        ),
        NodeType(
            "switch",
            "Switch",
            "logic",
            "Takes the branch whose case equals the expression's value, else `default`.",
            ports=("default", "error"),
            dynamic_ports="cases",
            required=("expression", "cases"),
            inline=True,
            icon="🔁",
        ),
        NodeType(
            "parallel",
            "Parallel",
            "logic",
            "Fans out: every branch connected to it runs at the same time on the workers.",
            inline=True,
            icon="⫘",
        ),
        NodeType(
            "join",
            "Join",
            "logic",
            "Waits for all (or any) incoming branches, then passes on their outputs together.",
            defaults={"mode": "all"},
            inline=True,
            icon="⋈",
        ),
        NodeType(
            "loop",
            "Loop",
            "logic",
            "Runs its `body` branch for each item of a list, or while a condition holds; then `done`.",
            ports=("body", "done", "error"),
            required=("mode", "max_iterations"),
            defaults={"mode": "foreach"},
            inline=True,
            icon="↻",
        ),
        NodeType(
            "approval",
            "Human approval",
            "logic",
            "Waits for a person to approve or reject (web, API or emailed link); a timeout takes a branch.",
            ports=("approved", "rejected", "timeout"),
            defaults={"title": "Approval needed", "on_timeout": "timeout"},
            icon="✋",
        ),
        NodeType(
            "delay",
            "Delay",
            "logic",
            "Waits for a number of seconds or until a date and time. Nothing sleeps meanwhile.",
            required=(),
            defaults={"seconds": 60},
            icon="⏳",
        ),
        NodeType(
            "subworkflow",
            "Sub-workflow",
            "logic",
            "Runs another workflow of this organization and continues with its output.",
            ports=("out", "error"),
            required=("workflow_id",),
            icon="⧉",
        ),
        NodeType(
            "http",
            "HTTP request",
            "data",
            "Calls a URL through the safe outbound client (no private addresses).",
            ports=("out", "error"),
            required=("url",),
            defaults={"method": "GET"},
            icon="🌐",
        ),
        NodeType(
            "transform",
            "Transform",
            "data",
            "Builds a new value from templates: `{key: template}`.",
            ports=("out", "error"),
            required=("mapping",),
            inline=True,
            icon="ƒ",
        ),
        NodeType(
            "set_variable",
            "Set variable",
            "data",
            "Stores values in the run's variables (`vars.<name>`), shared by every later step.",
            ports=("out", "error"),
            required=("variables",),
            inline=True,
            icon="=",
        ),
        NodeType(
            "knowledge",
            "Knowledge retrieval",
            "data",
            "Hybrid search over knowledge bases; passes on the best chunks and their text.",
            ports=("out", "error"),
            required=("knowledge_base_ids", "query"),
            defaults={"top_k": 5, "mode": "hybrid"},
            icon="📚",
        ),
        NodeType(
            "integration",
            "Integration action",
            "integrations",
            "Runs an action of a connected app (Slack, Gmail, ...).",
            ports=("out", "error"),
            required=("app", "action"),
            icon="🔌",
        ),
        NodeType(
            "end",
            "End / output",
            "data",
            "Sets the run's output. The run ends when no branch is still going.",
            ports=(),
            defaults={"output": "{{ last }}"},
            inline=True,
            icon="■",
        ),
    ]
}


CATEGORIES = {
    "triggers": "Triggers",
    "ai": "AI",
    "logic": "Logic",
    "data": "Data",
    "integrations": "Integrations",
}
TRIGGER_KINDS = ("manual", "api", "schedule", "webhook", "integration")
TEAM_MODES = ("route", "coordinate", "broadcast")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
APPROVAL_TIMEOUT_PORTS = ("approved", "rejected", "timeout")


def node_ports(node: dict[str, Any]) -> list[str]:
    spec = NODE_TYPES[node["type"]]
    ports = list(spec.ports)
    if spec.dynamic_ports:
        values = (node.get("config") or {}).get(spec.dynamic_ports) or []
        ports = [str(v) for v in values if isinstance(v, str | int)] + ports
    if node["type"] not in ("approval", "end") and "error" not in ports:
        ports.append("error")
    return ports


@dataclass
class Graph:
    """A validated graph, indexed for the engine."""

    nodes: dict[str, dict[str, Any]]
    edges: list[dict[str, Any]]
    out: dict[tuple[str, str], list[str]]
    incoming: dict[str, list[str]]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Graph:
        nodes = {n["id"]: n for n in data.get("nodes", [])}
        edges = list(data.get("edges", []))
        out: dict[tuple[str, str], list[str]] = defaultdict(list)
        incoming: dict[str, list[str]] = defaultdict(list)
        for e in edges:
            out[(e["source"], e.get("port") or "out")].append(e["target"])
            incoming[e["target"]].append(e["source"])
        return cls(nodes=nodes, edges=edges, out=dict(out), incoming=dict(incoming))

    def node(self, node_id: str) -> dict[str, Any]:
        return self.nodes[node_id]

    def config(self, node_id: str) -> dict[str, Any]:
        spec = NODE_TYPES[self.nodes[node_id]["type"]]
        return {**spec.defaults, **(self.nodes[node_id].get("config") or {})}

    def next_nodes(self, node_id: str, port: str) -> list[str]:
        return self.out.get((node_id, port), [])

    def has_port(self, node_id: str, port: str) -> bool:
        return bool(self.out.get((node_id, port)))

    def triggers(self, kind: str | None = None) -> list[str]:
        return [
            nid
            for nid, n in self.nodes.items()
            if n["type"] == "trigger" and (kind is None or self.config(nid).get("kind") == kind)
        ]

    def loop_body(self, loop_id: str) -> set[str]:
        """Nodes reachable from a loop's `body` port without passing through the loop again."""
        seen: set[str] = set()
        queue = deque(self.next_nodes(loop_id, "body"))
        while queue:
            nid = queue.popleft()
            if nid in seen or nid == loop_id:
                continue
            seen.add(nid)
            for (src, _port), targets in self.out.items():
                if src == nid:
                    queue.extend(targets)
        return seen

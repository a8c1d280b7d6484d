"""The workflow graph: its JSON shape, the node catalog, and validation.

A graph is `{"nodes": [...], "edges": [...]}`:

- node: `{"id": "draft", "type": "agent", "name": "Draft", "config": {...}, "position": {"x": 0, "y": 0},
  "retry": {"max_attempts": 1, "backoff_seconds": 2}, "timeout_seconds": 300}`
- edge: `{"source": "draft", "target": "edit", "port": "out"}`. A node leaves by one port; every edge
  from that port is followed (several edges fan out). Any node may have an `error` edge: the branch
  taken when it fails for good, instead of failing the run.

Validation returns errors per node (`{"draft": ["..."], "graph": ["..."]}`) so the canvas can mark
the faulty nodes and the API can answer with field errors.

The package: `catalog` (node types, ports, categories, limits, and `Graph`) and `validation`.
"""

from __future__ import annotations

from workflows.graph.catalog import (
    APPROVAL_TIMEOUT_PORTS,
    CATEGORIES,
    HTTP_METHODS,
    MAX_LOOP_ITERATIONS,
    MAX_NODES,
    NODE_ID,
    NODE_TYPES,
    TEAM_MODES,
    TRIGGER_KINDS,
    Graph,
    GraphError,
    NodeType,
    node_ports,
)
from workflows.graph.validation import validate_graph

__all__ = [
    "APPROVAL_TIMEOUT_PORTS",
    "CATEGORIES",
    "HTTP_METHODS",
    "MAX_LOOP_ITERATIONS",
    "MAX_NODES",
    "NODE_ID",
    "NODE_TYPES",
    "TEAM_MODES",
    "TRIGGER_KINDS",
    "Graph",
    "GraphError",
    "NodeType",
    "node_ports",
    "validate_graph",
]

"""Validating a graph at save and publish: errors per node, so the canvas marks the faulty nodes and
the API answers with field errors."""

from __future__ import annotations

import re
from collections import defaultdict, deque
from typing import Any

from workflows.expressions import ExpressionError, parse_expression, template_references
from workflows.graph.catalog import (
    APPROVAL_TIMEOUT_PORTS,
    HTTP_METHODS,
    MAX_LOOP_ITERATIONS,
    MAX_NODES,
    NODE_ID,
    NODE_TYPES,
    TEAM_MODES,
    TRIGGER_KINDS,
    Graph,
    GraphError,
    node_ports,
)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_templates(node: dict[str, Any], node_ids: set[str], errors: list[str]) -> None:
    def walk(value: Any) -> None:
        if isinstance(value, str):
            try:
                refs = template_references(value)
            except ExpressionError as exc:
                errors.append(f"Bad template {value[:60]!r}: {exc}")
                return
            for ref in refs:
                if ref not in node_ids:
                    errors.append(f"The template refers to node '{ref}', which is not in this workflow.")
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(node.get("config") or {})


def _check_expression(value: Any, what: str, node_ids: set[str], errors: list[str]) -> None:
    if not isinstance(value, str) or not value.strip():
        errors.append(f"{what} is required.")
        return
    try:
        expr = parse_expression(value)
    except ExpressionError as exc:
        errors.append(f"{what}: {exc}")
        return
    for ref in expr.node_refs:
        if ref not in node_ids:
            errors.append(f"{what} refers to node '{ref}', which is not in this workflow.")


def _check_config(node: dict[str, Any], cfg: dict[str, Any], node_ids: set[str]) -> list[str]:
    t = node["type"]
    errors: list[str] = []
    spec = NODE_TYPES[t]
    for key in spec.required:
        if cfg.get(key) in (None, "", [], {}):
            errors.append(f"'{key}' is required for a {spec.label.lower()} node.")
    if t == "trigger":
        kind = cfg.get("kind")
        if kind not in TRIGGER_KINDS:
            errors.append(f"Trigger kind must be one of {', '.join(TRIGGER_KINDS)}.")
        if kind == "schedule":
            from workflows.schedule import cron_error

            problem = cron_error(str(cfg.get("cron") or ""), str(cfg.get("timezone") or "UTC"))
            if problem:
                errors.append(problem)
        if kind == "integration" and not cfg.get("event"):
            errors.append("An integration trigger needs the event it listens for.")
    elif t == "agent":
        for key in ("agent_id", "fallback_agent_id"):
            if cfg.get(key) not in (None, "") and not _is_int(cfg.get(key)):
                errors.append(f"'{key}' must be an agent id.")
    elif t == "team":
        ids = cfg.get("agent_ids")
        if not isinstance(ids, list) or len(ids) < 2 or not all(_is_int(i) for i in ids):
            errors.append("A team needs at least two agent ids.")
        if cfg.get("mode") not in TEAM_MODES:
            errors.append(f"Team mode must be one of {', '.join(TEAM_MODES)}.")
    elif t == "router":
        labels = cfg.get("labels")
        if not isinstance(labels, list) or len(labels) < 2:
            errors.append("A router needs at least two labels.")
        elif not all(isinstance(x, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,40}", x) for x in labels):
            errors.append("Labels are short words: letters, digits, '-' and '_'.")
        elif len(set(labels)) != len(labels) or {"default", "error"} & set(labels):
            errors.append("Labels must be unique and cannot be 'default' or 'error'.")
        if cfg.get("agent_id") not in (None, "") and not _is_int(cfg.get("agent_id")):
            errors.append("'agent_id' must be an agent id.")
    elif t == "condition":
        _check_expression(cfg.get("expression"), "The expression", node_ids, errors)
    elif t == "switch":
        _check_expression(cfg.get("expression"), "The expression", node_ids, errors)
        cases = cfg.get("cases")
        if not isinstance(cases, list) or not cases or not all(isinstance(c, str) and c for c in cases):
            errors.append("A switch needs a list of cases.")
        elif len(set(cases)) != len(cases) or {"default", "error"} & set(cases):
            errors.append("Cases must be unique and cannot be 'default' or 'error'.")
    elif t == "join":
        if cfg.get("mode") not in ("all", "any"):
            errors.append("A join waits for 'all' or 'any' of its branches.")
    elif t == "loop":
        mode = cfg.get("mode")
        limit = cfg.get("max_iterations")
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LOOP_ITERATIONS:
            errors.append(f"A loop needs a maximum number of iterations (1 to {MAX_LOOP_ITERATIONS}).")
        if mode == "foreach":
            if not isinstance(cfg.get("items"), str) or not cfg.get("items"):
                errors.append("A for-each loop needs 'items': a template that gives a list.")
        elif mode == "while":
            _check_expression(cfg.get("condition"), "The loop condition", node_ids, errors)
        else:
            errors.append("Loop mode must be 'foreach' or 'while'.")
    elif t == "approval":
        if cfg.get("on_timeout") not in APPROVAL_TIMEOUT_PORTS:
            errors.append("On timeout, take 'approved', 'rejected' or 'timeout'.")
        timeout = cfg.get("timeout_seconds")
        if timeout not in (None, "") and (not _is_int(timeout) or timeout < 1):
            errors.append("The approval timeout is a positive number of seconds.")
        assignees = cfg.get("assignees", [])
        if not isinstance(assignees, list) or not all(isinstance(a, str) for a in assignees):
            errors.append("Assignees are a list of member emails.")
    elif t == "delay":
        seconds, until = cfg.get("seconds"), cfg.get("until")
        if until:
            if not isinstance(until, str):
                errors.append("'until' is a date and time (ISO 8601) or a template.")
        elif not (
            isinstance(seconds, int | float) and not isinstance(seconds, bool) and 0 <= seconds <= 90 * 86400
        ):
            errors.append("A delay needs 'seconds' (0 to 90 days) or 'until'.")
    elif t == "http":
        if cfg.get("method", "GET") not in HTTP_METHODS:
            errors.append(f"Method must be one of {', '.join(HTTP_METHODS)}.")
        if not isinstance(cfg.get("headers", {}), dict):
            errors.append("Headers are an object of name: value.")
    elif t in ("transform",):
        if not isinstance(cfg.get("mapping"), dict):
            errors.append("'mapping' is an object of key: template.")
    elif t == "set_variable":
        variables = cfg.get("variables")
        if not isinstance(variables, dict) or not all(
            isinstance(k, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", k) for k in variables
        ):
            errors.append("'variables' is an object of name: template; names are identifiers.")
    elif t == "knowledge":
        ids = cfg.get("knowledge_base_ids")
        if not isinstance(ids, list) or not ids or not all(_is_int(i) for i in ids):
            errors.append("Pick at least one knowledge base.")
        top_k = cfg.get("top_k", 5)
        if not _is_int(top_k) or not 1 <= top_k <= 50:
            errors.append("top_k is between 1 and 50.")
        if cfg.get("mode", "hybrid") not in ("hybrid", "vector", "keyword"):
            errors.append("Mode is hybrid, vector or keyword.")
    elif t == "integration":
        from workflows.nodes import integration_action

        if cfg.get("app") and cfg.get("action") and integration_action(cfg["app"], cfg["action"]) is None:
            errors.append(f"No integration action '{cfg.get('app')}.{cfg.get('action')}' is available yet.")
    elif (
        t == "subworkflow"
        and cfg.get("workflow_id") not in (None, "")
        and not _is_int(cfg.get("workflow_id"))
    ):
        errors.append("'workflow_id' must be a workflow id.")
    retry = node.get("retry") or {}
    if retry:
        attempts, backoff = retry.get("max_attempts", 1), retry.get("backoff_seconds", 2)
        if not _is_int(attempts) or not 1 <= attempts <= 10:
            errors.append("Retry: max_attempts is between 1 and 10.")
        if not isinstance(backoff, int | float) or isinstance(backoff, bool) or not 0 <= backoff <= 3600:
            errors.append("Retry: backoff_seconds is between 0 and 3600.")
    timeout = node.get("timeout_seconds")
    if timeout is not None and (not _is_int(timeout) or not 1 <= timeout <= 86400):
        errors.append("timeout_seconds is between 1 and 86400.")
    _check_templates(node, node_ids, errors)
    return errors


def validate_graph(data: Any, *, org: Any = None, workflow: Any = None) -> Graph:
    """Check shape, config, ports, reachability, cycles and references. Raises GraphError."""
    errors: dict[str, list[str]] = defaultdict(list)
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise GraphError({"graph": ["A graph is an object with a list of nodes and a list of edges."]})
    raw_edges = data.get("edges", [])
    if not isinstance(raw_edges, list):
        raise GraphError({"graph": ["'edges' must be a list."]})
    if len(data["nodes"]) > MAX_NODES:
        raise GraphError({"graph": [f"A workflow has at most {MAX_NODES} nodes."]})
    nodes: dict[str, dict[str, Any]] = {}
    for index, node in enumerate(data["nodes"]):
        if not isinstance(node, dict):
            errors["graph"].append(f"Node {index} is not an object.")
            continue
        nid = node.get("id")
        if not isinstance(nid, str) or not NODE_ID.match(nid):
            errors["graph"].append(f"Node {index} needs an id: a letter, then letters, digits or '_'.")
            continue
        if nid in nodes:
            errors[nid].append("Two nodes have this id.")
            continue
        if node.get("type") not in NODE_TYPES:
            errors[nid].append(f"Unknown node type {node.get('type')!r}.")
            continue
        if not isinstance(node.get("config", {}), dict):
            errors[nid].append("'config' must be an object.")
            continue
        nodes[nid] = node
    if not nodes and not errors:
        errors["graph"].append("Add a trigger and at least one step.")
    edges: list[dict[str, Any]] = []
    seen_edges: set[tuple[str, str, str]] = set()
    for index, edge in enumerate(raw_edges):
        if not isinstance(edge, dict):
            errors["graph"].append(f"Edge {index} is not an object.")
            continue
        src, dst, port = edge.get("source"), edge.get("target"), edge.get("port") or "out"
        if src not in nodes or dst not in nodes:
            errors["graph"].append(f"Edge {index} connects a node that does not exist ({src} → {dst}).")
            continue
        if port not in node_ports(nodes[src]):
            errors[src].append(
                f"A {NODE_TYPES[nodes[src]['type']].label.lower()} node has no '{port}' output "
                f"(it has {', '.join(node_ports(nodes[src])) or 'none'})."
            )
            continue
        if nodes[dst]["type"] == "trigger":
            errors[dst].append("Nothing can lead into a trigger.")
            continue
        if src == dst:
            errors[src].append("A node cannot connect to itself.")
            continue
        key = (src, dst, port)
        if key not in seen_edges:
            seen_edges.add(key)
            edges.append({"source": src, "target": dst, "port": port})
    graph = Graph.from_json({"nodes": list(nodes.values()), "edges": edges})
    node_ids = set(nodes)
    for nid, node in nodes.items():
        problems = _check_config(node, graph.config(nid), node_ids)
        errors[nid].extend(problems)
    triggers = graph.triggers()
    if nodes and not triggers:
        errors["graph"].append("A workflow needs a trigger node.")
    # Reachability from the triggers.
    reached: set[str] = set()
    queue = deque(triggers)
    while queue:
        nid = queue.popleft()
        if nid in reached:
            continue
        reached.add(nid)
        for (src, _port), targets in graph.out.items():
            if src == nid:
                queue.extend(targets)
    for nid in nodes:
        if triggers and nid not in reached:
            errors[nid].append("This node is not reachable from a trigger.")
    # Cycles are only allowed through a loop node: drop the edges into loops, the rest must be a DAG.
    adjacency: dict[str, list[str]] = defaultdict(list)
    indegree = {nid: 0 for nid in nodes}
    for e in edges:
        if nodes[e["target"]]["type"] == "loop":
            continue
        adjacency[e["source"]].append(e["target"])
        indegree[e["target"]] += 1
    ready = deque(n for n, d in indegree.items() if d == 0)
    visited = 0
    while ready:
        nid = ready.popleft()
        visited += 1
        for target in adjacency[nid]:
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    if visited < len(nodes):
        for nid, degree in indegree.items():
            if degree > 0:
                errors[nid].append("This node is on a cycle; only a loop node may repeat steps.")
    for nid, node in nodes.items():
        if node["type"] == "loop" and not graph.next_nodes(nid, "body"):
            errors[nid].append("Connect the loop's 'body' output to the steps it repeats.")
        if node["type"] == "join" and len(graph.incoming.get(nid, [])) < 1:
            errors[nid].append("A join needs incoming branches.")
    if org is not None:
        _check_references(graph, org, workflow, errors)
    clean = {k: v for k, v in errors.items() if v}
    if clean:
        raise GraphError(clean)
    return graph


def _check_references(graph: Graph, org: Any, workflow: Any, errors: dict[str, list[str]]) -> None:
    """Agents, knowledge bases and sub-workflows must exist in the same organization."""
    from agents.models import Agent
    from knowledge.models import KnowledgeBase
    from workflows.models import Workflow

    agent_ids: dict[str, set[int]] = defaultdict(set)
    kb_ids: dict[str, set[int]] = defaultdict(set)
    wf_ids: dict[str, set[int]] = defaultdict(set)
    for nid, node in graph.nodes.items():
        cfg = graph.config(nid)
        for key in ("agent_id", "fallback_agent_id"):
            if _is_int(cfg.get(key)):
                agent_ids[nid].add(cfg[key])
        if node["type"] == "team" and isinstance(cfg.get("agent_ids"), list):
            agent_ids[nid].update(i for i in cfg["agent_ids"] if _is_int(i))
        if node["type"] == "knowledge" and isinstance(cfg.get("knowledge_base_ids"), list):
            kb_ids[nid].update(i for i in cfg["knowledge_base_ids"] if _is_int(i))
        if node["type"] == "subworkflow" and _is_int(cfg.get("workflow_id")):
            wf_ids[nid].add(cfg["workflow_id"])
    agents = Agent.objects.for_org(org).exclude(status=Agent.Status.ARCHIVED)
    _report_missing(
        errors, agent_ids, agents, "Agent {} does not exist in this organization (or is archived)."
    )
    kbs = KnowledgeBase.objects.for_org(org)
    _report_missing(errors, kb_ids, kbs, "Knowledge base {} does not exist in this organization.")
    workflows = Workflow.objects.for_org(org).exclude(status=Workflow.Status.ARCHIVED)
    _report_missing(errors, wf_ids, workflows, "Workflow {} does not exist in this organization.")
    for nid, ids in wf_ids.items():
        if workflow is not None and workflow.pk in ids:
            errors[nid].append("A workflow cannot run itself as a sub-workflow.")


def _report_missing(
    errors: dict[str, list[str]], refs: dict[str, set[int]], queryset: Any, message: str
) -> None:
    """One query for the ids the nodes name; each node gets an error per id not in `queryset`."""
    wanted = set().union(*refs.values()) if refs else set()
    found = set(queryset.filter(pk__in=wanted).values_list("pk", flat=True))
    for nid, ids in refs.items():
        for missing in sorted(ids - found):
            errors[nid].append(message.format(missing))

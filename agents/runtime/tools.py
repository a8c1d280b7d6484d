"""The tools catalog and how each tool type becomes an agno Function.

The registry is open: later apps add types with `register_tool_type` (knowledge search, integration
actions, MCP) without touching the runtime.
"""

from __future__ import annotations

import ast
import json
import logging
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agno.tools.function import Function

from agents.config import ToolSpec

logger = logging.getLogger(__name__)
MAX_RESULT_CHARS = 8000


@dataclass(frozen=True)
class ToolContext:
    org_id: int
    agent_id: int
    run_id: int | None
    user_id: int | None


@dataclass(frozen=True)
class ToolType:
    type: str
    label: str
    description: str
    config_schema: dict[str, Any]
    build: Callable[[ToolSpec, ToolContext], Function]


_REGISTRY: dict[str, ToolType] = {}


def register_tool_type(tool_type: ToolType) -> None:
    _REGISTRY[tool_type.type] = tool_type


def tool_types() -> list[ToolType]:
    return list(_REGISTRY.values())


def build_tools(specs: list[ToolSpec], ctx: ToolContext) -> list[Function]:
    functions = []
    for spec in specs:
        tool_type = _REGISTRY.get(spec.type)
        if tool_type is None:
            raise ValueError(f"Tool type “{spec.type}” is not available on this server.")
        fn = tool_type.build(spec, ctx)
        if spec.ask_before_run:
            fn.requires_confirmation = True
        functions.append(fn)
    return functions


def _truncate(text: str) -> str:
    return text if len(text) <= MAX_RESULT_CHARS else text[:MAX_RESULT_CHARS] + "… [truncated]"


def _function(
    name: str, description: str, parameters: dict[str, Any], entrypoint: Callable[..., str]
) -> Function:
    # skip_entrypoint_processing keeps our JSON Schema verbatim (agno would otherwise rebuild it from the signature).
    return Function(
        name=name,
        description=description,
        parameters=parameters,
        entrypoint=entrypoint,
        skip_entrypoint_processing=True,
    )


# ------------------------------------------------------------ calculator

_OPS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_FUNCS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt,
    "log": math.log,
    "log10": math.log10,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
}
_CONSTS = {"pi": math.pi, "e": math.e}


def safe_eval(expression: str) -> float | int:
    """Arithmetic only: numbers, + - * / // % **, a few math functions. Never Python eval."""
    if len(expression) > 500:
        raise ValueError("expression too long")

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 1000:
                raise ValueError("exponent too large")
            return _OPS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.operand))
        if isinstance(node, ast.Name) and node.id in _CONSTS:
            return _CONSTS[node.id]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS:
            return _FUNCS[node.func.id](*[ev(a) for a in node.args])
        raise ValueError(f"unsupported syntax: {ast.dump(node)[:40]}")

    return ev(ast.parse(expression, mode="eval"))


def _calculator(spec: ToolSpec, ctx: ToolContext) -> Function:
    def calculate(expression: str = "") -> str:
        try:
            return str(safe_eval(expression))
        except (ValueError, SyntaxError, ZeroDivisionError, OverflowError, TypeError) as exc:
            return f"Error: {exc}"

    return _function(
        "calculator",
        "Evaluate an arithmetic expression, e.g. '2 * (3 + 4) / sqrt(16)'.",
        {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
        calculate,
    )


def _datetime(spec: ToolSpec, ctx: ToolContext) -> Function:
    def now(timezone: str = "UTC") -> str:
        try:
            tz = ZoneInfo(timezone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            return f"Error: unknown time zone {timezone!r}"
        current = datetime.now(UTC).astimezone(tz)
        return json.dumps(
            {
                "iso": current.isoformat(),
                "date": current.date().isoformat(),
                "weekday": current.strftime("%A"),
                "timezone": str(tz),
            }
        )

    return _function(
        "current_datetime",
        "Get the current date and time, optionally in an IANA time zone such as 'Europe/Paris'.",
        {"type": "object", "properties": {"timezone": {"type": "string"}}},
        now,
    )


def _web_search(spec: ToolSpec, ctx: ToolContext) -> Function:
    max_results = int(spec.config.get("max_results", 5))

    def search(query: str = "") -> str:
        try:
            from ddgs import DDGS

            results = DDGS(timeout=10).text(query, max_results=max_results)
        except Exception as exc:  # network down, rate limited, provider changed: tell the model, don't crash
            logger.info("web search failed: %s", type(exc).__name__)
            return f"Error: web search is unavailable right now ({type(exc).__name__})."
        return _truncate(
            json.dumps(
                [{"title": r.get("title"), "url": r.get("href"), "snippet": r.get("body")} for r in results]
            )
        )

    return _function(
        "web_search",
        "Search the web (DuckDuckGo) and return titles, URLs and snippets.",
        {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
        search,
    )


_SECRET_REF = re.compile(r"\{\{\s*secret:([A-Za-z0-9_\-]+)\s*\}\}")


def _http(spec: ToolSpec, ctx: ToolContext) -> Function:
    cfg = spec.config

    def call(**kwargs: Any) -> str:
        from integrations.safe_http import OutboundHTTPError, UnsafeURLError, safe_request
        from integrations.secrets import secret_value

        try:
            url = re.sub(r"\{(\w+)\}", lambda m: quote(str(kwargs.pop(m.group(1), "")), safe=""), cfg["url"])
            headers = {
                k: _SECRET_REF.sub(lambda m: secret_value(org_id=ctx.org_id, name=m.group(1)), v)
                for k, v in cfg.get("headers", {}).items()
            }
            method = cfg.get("method", "GET")
            body = kwargs if method in ("POST", "PUT", "PATCH") else None
            params = kwargs if method in ("GET", "DELETE") and kwargs else None
            response = safe_request(method, url, headers=headers, params=params, json=body)
        except (UnsafeURLError, OutboundHTTPError, KeyError, ValueError) as exc:
            return f"Error: {exc}"
        return _truncate(f"HTTP {response.status_code}\n{response.text}")

    return _function(
        spec.name, spec.description, cfg.get("parameters") or {"type": "object", "properties": {}}, call
    )


def _agent_as_tool(spec: ToolSpec, ctx: ToolContext) -> Function:
    agent_id = int(spec.config["agent_id"])

    def ask(task: str = "") -> str:
        from agents.runtime.builder import run_subagent

        return _truncate(run_subagent(org_id=ctx.org_id, agent_id=agent_id, task=task))

    name = spec.name or f"ask_agent_{agent_id}"
    description = (
        spec.description or "Ask another agent of this organization to do a sub-task and return its answer."
    )
    return _function(
        name,
        description,
        {"type": "object", "properties": {"task": {"type": "string"}}, "required": ["task"]},
        ask,
    )


def _unavailable(kind: str) -> Callable[[ToolSpec, ToolContext], Function]:
    def build(spec: ToolSpec, ctx: ToolContext) -> Function:
        def unavailable(**kwargs: Any) -> str:
            return f"Error: {kind} is not connected on this server yet."

        return _function(
            spec.name or spec.type,
            spec.description or kind,
            {"type": "object", "properties": {}},
            unavailable,
        )

    return build


for _tt in [
    ToolType(
        "calculator", "Calculator", "Exact arithmetic, without asking the model to do maths.", {}, _calculator
    ),
    ToolType("datetime", "Date and time", "The current date and time in any time zone.", {}, _datetime),
    ToolType(
        "web_search",
        "Web search",
        "DuckDuckGo search results (titles, links, snippets).",
        {"type": "object", "properties": {"max_results": {"type": "integer", "minimum": 1, "maximum": 10}}},
        _web_search,
    ),
    ToolType(
        "http",
        "HTTP request",
        "Call an API you describe: method, URL template, headers and parameters.",
        {
            "type": "object",
            "required": ["url"],
            "properties": {
                "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE"]},
                "url": {"type": "string"},
                "headers": {"type": "object"},
                "parameters": {"type": "object"},
            },
        },
        _http,
    ),
    ToolType(
        "agent",
        "Another agent",
        "Delegate a sub-task to another agent of this organization.",
        {"type": "object", "required": ["agent_id"], "properties": {"agent_id": {"type": "integer"}}},
        _agent_as_tool,
    ),
    # Registered now so configs can name them; their apps replace the builders when they land.
    ToolType(
        "knowledge_search",
        "Knowledge search",
        "Search the knowledge bases attached to the agent.",
        {},
        _unavailable("knowledge search"),
    ),
    ToolType(
        "integration",
        "Integration action",
        "An action of a connected app (Slack, Gmail, …).",
        {},
        _unavailable("this integration"),
    ),
    ToolType("mcp", "MCP server", "Tools from a Model Context Protocol server.", {}, _unavailable("MCP")),
]:
    register_tool_type(_tt)

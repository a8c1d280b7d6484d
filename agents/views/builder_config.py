"""The builder's flat form <-> an AgentConfig dict: initial values from a config, and a config from
the cleaned form. Tools and settings the builder does not edit (knowledge, integrations, MCP) are
carried over unchanged, and existing tool and handoff ids are kept so versions diff cleanly."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from agents.forms import BUILTIN_TOOLS
from agents.models import Agent

if TYPE_CHECKING:
    from agents.views.builder_state import BuilderState

PROFILE_FIELDS = ("name", "description", "avatar", "role", "category", "visibility")
FORM_TOOL_TYPES = {"calculator", "datetime", "web_search", "http", "agent"}


def _json_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) if value else ""


def initial_from(agent: Agent | None, config: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    model = config.get("model") or {}
    fallback = model.get("fallback") or {}
    tools = config.get("tools") or []
    types = {t.get("type") for t in tools}
    gr_in = (config.get("guardrails") or {}).get("input") or {}
    gr_out = (config.get("guardrails") or {}).get("output") or {}
    output = config.get("output_type") or {}
    custom = output.get("schema") is not None
    memory = config.get("memory") or {}
    handoffs = config.get("handoffs") or []
    initial: dict[str, Any] = {
        "instructions": config.get("instructions", ""),
        "memory_enabled": memory.get("enabled", False),
        "memory_max_items": memory.get("max_items", 20),
        "provider": model.get("provider", "demo"),
        "model_name": model.get("name", ""),
        "temperature": model.get("temperature", 0.7),
        "max_tokens": model.get("max_tokens"),
        "fallback_provider": fallback.get("provider", ""),
        "fallback_model": fallback.get("name", ""),
        "tool_call_limit": config.get("tool_call_limit", 10),
        "agent_tools": [str(t["config"]["agent_id"]) for t in tools if t.get("type") == "agent"],
        "handoff_agents": [str(h["agent_id"]) for h in handoffs],
        "handoff_mode": config.get("handoff_mode", "route"),
        "output_type": "custom" if custom else output.get("name", "text"),
        "output_name": output.get("name", "") if custom else "",
        "output_schema": _json_text(output.get("schema")),
        "gr_pii": gr_in.get("pii_redaction", False),
        "gr_injection": gr_in.get("prompt_injection", False),
        "gr_max_length": gr_in.get("max_length"),
        "gr_blocked_topics": "\n".join(gr_in.get("blocked_topics") or []),
        "gr_output_pii": gr_out.get("pii_redaction", False),
        "gr_output_schema": _json_text(gr_out.get("json_schema")),
    }
    for tool_type, _label, _help in BUILTIN_TOOLS:
        initial[f"tool_{tool_type}"] = tool_type in types
    for h in handoffs:
        initial[f"handoff_desc_{h['agent_id']}"] = h.get("description", "")
    if agent is not None:
        initial.update({f: getattr(agent, f) for f in PROFILE_FIELDS})
    http = [
        {
            "id": t.get("id", ""),
            "name": t.get("name", ""),
            "description": t.get("description", ""),
            "method": (t.get("config") or {}).get("method", "GET"),
            "url": (t.get("config") or {}).get("url", ""),
            "headers": _json_text((t.get("config") or {}).get("headers")),
            "parameters": _json_text((t.get("config") or {}).get("parameters")),
            "ask_before_run": t.get("ask_before_run", False),
        }
        for t in tools
        if t.get("type") == "http"
    ]
    return initial, http


def _existing(base: dict[str, Any]) -> list[dict[str, Any]]:
    return list(base.get("tools") or [])


def build_config(state: BuilderState) -> dict[str, Any]:
    cd = state.form.cleaned_data
    existing = _existing(state.base)
    tools: list[dict[str, Any]] = []
    sources: list[tuple[str, Any]] = []
    for tool_type, _label, _help in BUILTIN_TOOLS:
        if cd.get(f"tool_{tool_type}"):
            previous = next((t for t in existing if t.get("type") == tool_type), None)
            tools.append(dict(previous) if previous else {"type": tool_type})
            sources.append(("builtin", tool_type))
    for index, sub in enumerate(state.http.forms):
        data = getattr(sub, "cleaned_data", None) or {}
        if not data.get("url") or data.get("DELETE"):
            continue
        spec: dict[str, Any] = {
            "type": "http",
            "name": data.get("name", ""),
            "description": data.get("description", ""),
            "ask_before_run": bool(data.get("ask_before_run")),
            "config": {
                "method": data.get("method") or "GET",
                "url": data["url"],
                "headers": data.get("headers") or {},
                "parameters": data.get("parameters") or {"type": "object", "properties": {}},
            },
        }
        if data.get("id"):
            spec["id"] = data["id"]
        tools.append(spec)
        sources.append(("http", index))
    by_id = {a.pk: a for a in state.form.other_agents}
    for raw in cd.get("agent_tools") or []:
        target = by_id[int(raw)]
        previous = next(
            (t for t in existing if t.get("type") == "agent" and t["config"].get("agent_id") == target.pk),
            None,
        )
        name = "ask_" + re.sub(r"[^a-zA-Z0-9_]", "_", target.slug)[:56]
        tools.append(
            dict(previous)
            if previous
            else {
                "type": "agent",
                "name": name,
                "description": f"Ask {target.name} ({target.role or 'agent'}): {target.description}"[:1000],
                "config": {"agent_id": target.pk},
            }
        )
        sources.append(("agent", target.pk))
    for previous in existing:  # knowledge, integrations, MCP: kept as they are; their apps edit them
        if previous.get("type") not in FORM_TOOL_TYPES:
            tools.append(previous)
            sources.append(("kept", previous.get("type")))
    old_handoffs = {h["agent_id"]: h for h in state.base.get("handoffs") or []}
    handoffs = []
    for raw in cd.get("handoff_agents") or []:
        agent_id = int(raw)
        entry = {"agent_id": agent_id, "description": cd.get(f"handoff_desc_{agent_id}", "")}
        if agent_id in old_handoffs:
            entry["id"] = old_handoffs[agent_id]["id"]
        handoffs.append(entry)
    if cd.get("output_type") == "custom":
        output = {"name": cd.get("output_name") or "custom", "schema": cd.get("output_schema")}
    else:
        output = {"name": cd.get("output_type") or "text"}
    fallback = None
    if cd.get("fallback_provider"):
        fallback = {"provider": cd["fallback_provider"], "name": (cd.get("fallback_model") or "").strip()}
    topics = [t.strip() for t in (cd.get("gr_blocked_topics") or "").splitlines() if t.strip()]
    state.tool_sources = sources
    state.handoff_sources = [h["agent_id"] for h in handoffs]
    return {
        "instructions": cd.get("instructions", ""),
        "model": {
            "provider": cd["provider"],
            "name": cd["model_name"].strip(),
            "temperature": cd["temperature"],
            "max_tokens": cd.get("max_tokens"),
            "fallback": fallback,
        },
        "tools": tools,
        "tool_call_limit": cd["tool_call_limit"],
        "handoffs": handoffs,
        "handoff_mode": cd.get("handoff_mode") or "route",
        "guardrails": {
            "input": {
                "pii_redaction": cd.get("gr_pii", False),
                "prompt_injection": cd.get("gr_injection", False),
                "max_length": cd.get("gr_max_length"),
                "blocked_topics": topics,
            },
            "output": {
                "json_schema": cd.get("gr_output_schema"),
                "pii_redaction": cd.get("gr_output_pii", False),
            },
        },
        "output_type": output,
        "knowledge": state.base.get("knowledge") or {},
        "memory": {"enabled": cd.get("memory_enabled", False), "max_items": cd["memory_max_items"]},
    }

"""The builder's flat form <-> an AgentConfig dict, and config errors back onto the fields.

Config errors come as paths (`tools.2.config.url`, `model.fallback.name`, ...). Building the config
records where each tool and handoff came from, so a path can be put beside the input that made it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.http import QueryDict

from accounts.models import Organization
from accounts.services import ServiceError
from agents import services
from agents.config import ConfigError
from agents.forms import BuilderForm, HttpToolFormSet
from agents.models import Agent
from agents.output_types import BUILTIN_OUTPUT_TYPES
from agents.views.builder_config import PROFILE_FIELDS, build_config, initial_from


@dataclass(frozen=True)
class Step:
    id: str
    label: str
    fields: tuple[str, ...]


STEPS: tuple[Step, ...] = (
    Step("basics", "Basics", ("name", "description", "avatar", "role", "category", "visibility")),
    Step("instructions", "Instructions", ("instructions", "memory_enabled", "memory_max_items")),
    Step(
        "model",
        "Model",
        ("provider", "model_name", "temperature", "max_tokens", "fallback_provider", "fallback_model"),
    ),
    Step(
        "tools",
        "Tools",
        ("tool_calculator", "tool_datetime", "tool_web_search", "tool_call_limit", "agent_tools"),
    ),
    Step("handoffs", "Handoffs", ("handoff_agents", "handoff_mode")),
    Step("output", "Output type", ("output_type", "output_name", "output_schema")),
    Step(
        "guardrails",
        "Guardrails",
        ("gr_pii", "gr_injection", "gr_max_length", "gr_blocked_topics", "gr_output_pii", "gr_output_schema"),
    ),
)
STEP_IDS = tuple(s.id for s in STEPS)
# Config paths (longest prefix wins) -> the form field that shows their errors.
PATH_FIELDS = {
    "instructions": "instructions",
    "memory": "memory_max_items",
    "model.provider": "provider",
    "model.name": "model_name",
    "model.temperature": "temperature",
    "model.max_tokens": "max_tokens",
    "model.fallback": "fallback_model",
    "model.fallback.provider": "fallback_provider",
    "tool_call_limit": "tool_call_limit",
    "handoff_mode": "handoff_mode",
    "output_type": "output_type",
    "output_type.schema": "output_schema",
    "output_type.schema_": "output_schema",
    "guardrails.input.max_length": "gr_max_length",
    "guardrails.input.blocked_topics": "gr_blocked_topics",
    "guardrails.output.json_schema": "gr_output_schema",
}
HTTP_FIELDS = {"name", "description", "method", "url", "headers", "parameters", "ask_before_run"}


@dataclass
class BuilderState:
    form: BuilderForm
    http: Any  # the HTTP tools formset
    base: dict[str, Any]
    step_errors: dict[str, list[str]] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    tool_sources: list[tuple[str, Any]] = field(default_factory=list)
    handoff_sources: list[int] = field(default_factory=list)

    @property
    def profile(self) -> dict[str, Any]:
        return {f: self.form.cleaned_data[f] for f in PROFILE_FIELDS}

    def step_has_errors(self, step: Step) -> bool:
        if not self.form.is_bound:
            return False
        if self.step_errors.get(step.id):
            return True
        if step.id == "tools" and any(f.errors for f in self.http.forms):
            return True
        if step.id == "handoffs" and any(
            self.form[n].errors for n in self.form.fields if n.startswith("handoff_desc_")
        ):
            return True
        return any(self.form[name].errors for name in step.fields)

    def steps(self) -> list[dict[str, Any]]:
        return [
            {"id": s.id, "label": s.label, "n": i + 1, "error": self.step_has_errors(s)}
            for i, s in enumerate(STEPS)
        ]

    def first_error_step(self) -> str:
        return next((s.id for s in STEPS if self.step_has_errors(s)), "basics")


def other_agents(org: Organization, agent: Agent | None) -> list[Agent]:
    qs = Agent.objects.for_org(org).not_archived().order_by("name")
    if agent is not None:
        qs = qs.exclude(pk=agent.pk)
    return list(qs)


def state_for(*, org: Organization, agent: Agent | None, data: QueryDict | None = None) -> BuilderState:
    base = services.agent_config_draft(agent=agent) if agent else services.default_config(org=org)
    initial, http_initial = initial_from(agent, base)
    form = BuilderForm(data, initial=initial, org=org, other_agents=other_agents(org, agent))
    http = HttpToolFormSet(data, initial=http_initial, prefix="http")
    return BuilderState(form=form, http=http, base=base)


def _field_for(path: str) -> str | None:
    best = None
    for prefix, name in PATH_FIELDS.items():
        if (path == prefix or path.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, name)
    return best[1] if best else None


def _add(form: forms.Form, name: str | None, message: str) -> None:
    # add_error drops the field from cleaned_data; the state is re-rendered, never saved, after this.
    if name is None or name in form.fields:
        form.add_error(name, message)
    else:
        form.add_error(None, message)


def attach_errors(state: BuilderState, errors: dict[str, list[str]]) -> None:
    for path, messages in errors.items():
        for message in messages:
            _attach_one(state, path, message)


def _attach_one(state: BuilderState, path: str, message: str) -> None:
    parts = path.split(".")
    if (
        parts[0] == "tools"
        and len(parts) > 1
        and parts[1].isdigit()
        and int(parts[1]) < len(state.tool_sources)
    ):
        kind, ref = state.tool_sources[int(parts[1])]
        rest = [p for p in parts[2:] if p != "config"]
        if kind == "http":
            sub = state.http.forms[ref]
            target = rest[0] if rest and rest[0] in HTTP_FIELDS else ("name" if "name" in message else "url")
            sub.add_error(target, message)
            return
        if kind == "agent":
            state.form.add_error("agent_tools", message)
            return
        state.step_errors.setdefault("tools", []).append(f"{kind} tool: {message}")
        return
    if parts[0] == "tools":
        state.step_errors.setdefault("tools", []).append(message)
        return
    if parts[0] == "handoffs":
        if len(parts) > 2 and parts[1].isdigit() and int(parts[1]) < len(state.handoff_sources):
            agent_id = state.handoff_sources[int(parts[1])]
            _add(state.form, f"handoff_desc_{agent_id}", message)
        else:
            state.step_errors.setdefault("handoffs", []).append(message)
        return
    name = _field_for(path)
    if name is None:
        # Whole-config rules (e.g. unique tool names) come without a field path: file them by topic.
        step = next((s for s, word in (("tools", "tool"), ("handoffs", "hand")) if word in message), "basics")
        state.step_errors.setdefault(step, []).append(message)
    else:
        state.form.add_error(name, message)


def validate(state: BuilderState, *, org: Organization, agent: Agent | None) -> bool:
    """Field checks, then the config as the services see it. True when it could be saved."""
    fields_ok = state.form.is_valid()
    http_ok = state.http.is_valid()
    if not fields_ok or not http_ok:
        return False
    config = build_config(state)
    try:
        parsed = services.config_validate(org=org, agent=agent, data=config)
    except ConfigError as exc:
        attach_errors(state, exc.errors)
        return False
    except ServiceError as exc:
        if exc.code == "unknown_provider":
            state.form.add_error("provider", str(exc))
        elif "model name" in str(exc):
            state.form.add_error("model_name", str(exc))
        else:
            state.step_errors.setdefault("handoffs", []).append(str(exc))
        return False
    state.config = parsed.dump()
    return True


def output_type_help() -> dict[str, str]:
    return {k: v["description"] for k, v in BUILTIN_OUTPUT_TYPES.items()}

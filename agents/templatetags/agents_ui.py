"""Template helpers for the agents pages: safe markdown, JSON, durations, tooltips, the final chat bubble."""

from __future__ import annotations

import json
import re
from typing import Any

from django import template
from django.utils.safestring import SafeString

from agents.markdown import render_markdown

register = template.Library()


@register.filter
def markdown(text: str) -> SafeString:
    return render_markdown(text)


@register.filter
def pretty_json(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


@register.filter
def dom_id(value: Any) -> str:
    """Anything (a tool call id from a provider, say) as a safe fragment of an HTML id."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(value))[:64] or "x"


@register.filter
def duration(ms: Any) -> str:
    try:
        ms = int(ms)
    except (TypeError, ValueError):
        return "—"
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.filter
def get_field(form: Any, name: str) -> Any:
    return form[name]


@register.filter
def percent_of(part: Any, whole: Any) -> int:
    try:
        return max(1, min(100, int(100 * float(part) / float(whole)))) if float(whole) else 0
    except (TypeError, ValueError):
        return 0


@register.inclusion_tag("agents/_tip.html")
def tip(text: str) -> dict[str, str]:
    """A "?" button beside a label: the text as a title and as a small popover for touch users."""
    return {"text": text}


@register.inclusion_tag("agents/_bubble.html")
def final_bubble(run_id: int, seq: int | None = None) -> dict[str, Any]:
    """The finished assistant bubble for a run, sent when its `done` event arrives over the socket.
    The consumer has already checked that the socket's user may read this run."""
    from agents.models import AgentRun
    from agents.views.turns import turn_for

    run = AgentRun.objects.select_related("agent").filter(pk=run_id).first()
    if run is None:
        return {"turn": None}
    # oob: the bubble replaces the live one (#run-<id>-bubble) when sent over the socket.
    return {"turn": turn_for(run), "agent": run.agent, "can_write": True, "oob": seq is not None, "seq": seq}

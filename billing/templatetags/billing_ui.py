"""Template helpers for credits and money, and the cost estimates shown before a run starts."""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation
from typing import Any

from django import template

from billing.estimates import AgentEstimate, WorkflowEstimate, agent_estimate, workflow_estimate

logger = logging.getLogger(__name__)
register = template.Library()


@register.filter
def credits(value: Any) -> str:
    """12.5 -> "12.5", 10.0000 -> "10", 1234.567 -> "1,234.57"."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return ""
    text = f"{number:,.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@register.filter
def usd(cents: Any) -> str:
    """Cents as dollars: 1000 -> "$10", 960 -> "$9.60"."""
    try:
        value = Decimal(str(cents)) / 100
    except (InvalidOperation, ValueError, TypeError):
        return ""
    return f"${value:,.0f}" if value == value.to_integral_value() else f"${value:,.2f}"


@register.filter
def usd_per_credit(cents_per_credit: Any) -> str:
    try:
        value = Decimal(str(cents_per_credit))
    except (InvalidOperation, ValueError, TypeError):
        return ""
    return f"{value:.1f}¢"


@register.simple_tag
def agent_run_estimate(agent: Any) -> AgentEstimate | None:
    """What one message to `agent` reserves (None when it cannot run)."""
    try:
        return agent_estimate(agent)
    except Exception:  # an estimate must never break the page it is on
        logger.warning("no estimate for agent %s", getattr(agent, "pk", None), exc_info=True)
        return None


@register.simple_tag
def workflow_run_estimate(workflow: Any, version: Any = None) -> WorkflowEstimate | None:
    """One pass of the agent steps of `version` (or the workflow's latest version)."""
    try:
        version = version or workflow.latest_version()
        graph = version.graph if version is not None else None
        return workflow_estimate(org_id=workflow.organization_id, graph=graph)
    except Exception:
        logger.warning("no estimate for workflow %s", getattr(workflow, "pk", None), exc_info=True)
        return None

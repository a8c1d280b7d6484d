"""Node executors: one function per node type, `(StepContext) -> Result`. They raise NodeError with a
message for people; the engine applies the retry policy and the fail-branch.

The package: `basics` (logic and flow nodes), `ai` (agent, team, router) and `data` (HTTP, knowledge,
integration actions, sub-workflows).
"""

from __future__ import annotations

from collections.abc import Callable

from workflows.engine.types import Result, StepContext
from workflows.nodes.ai import agent, router, team
from workflows.nodes.basics import (
    approval,
    condition,
    delay,
    end,
    join,
    loop,
    parallel,
    set_variable,
    switch,
    transform,
    trigger,
)
from workflows.nodes.data import (
    http,
    integration,
    integration_action,
    knowledge,
    register_integration_action,
    subworkflow,
)

Executor = Callable[[StepContext], Result]

EXECUTORS: dict[str, Executor] = {
    "trigger": trigger,
    "agent": agent,
    "team": team,
    "router": router,
    "condition": condition,
    "switch": switch,
    "parallel": parallel,
    "join": join,
    "loop": loop,
    "approval": approval,
    "delay": delay,
    "subworkflow": subworkflow,
    "http": http,
    "transform": transform,
    "set_variable": set_variable,
    "knowledge": knowledge,
    "integration": integration,
    "end": end,
}

__all__ = ["EXECUTORS", "Executor", "integration_action", "register_integration_action"]

"""One config form per node type, for the builder's side panel. A node form turns its fields into the
node's JSON (`config`, `retry`, `timeout_seconds`); the graph is still validated as a whole on save.

By palette category: `base` (what every node has), `ai`, `logic`, `data` (triggers, data, integrations)."""

from __future__ import annotations

from workflows.forms.nodes.ai import AgentNodeForm, KnowledgeForm, RouterForm, TeamForm
from workflows.forms.nodes.base import TRIGGER_KIND_LABELS, NodeForm
from workflows.forms.nodes.data import (
    EndForm,
    HttpForm,
    IntegrationForm,
    SetVariableForm,
    TransformForm,
    TriggerForm,
)
from workflows.forms.nodes.logic import (
    ApprovalForm,
    ConditionForm,
    DelayForm,
    JoinForm,
    LoopForm,
    ParallelForm,
    SubworkflowForm,
    SwitchForm,
)

__all__ = ["NODE_FORMS", "TRIGGER_KIND_LABELS", "NodeForm"]

NODE_FORMS: dict[str, type[NodeForm]] = {
    "trigger": TriggerForm,
    "agent": AgentNodeForm,
    "team": TeamForm,
    "router": RouterForm,
    "condition": ConditionForm,
    "switch": SwitchForm,
    "parallel": ParallelForm,
    "join": JoinForm,
    "loop": LoopForm,
    "approval": ApprovalForm,
    "delay": DelayForm,
    "subworkflow": SubworkflowForm,
    "http": HttpForm,
    "transform": TransformForm,
    "set_variable": SetVariableForm,
    "knowledge": KnowledgeForm,
    "integration": IntegrationForm,
    "end": EndForm,
}

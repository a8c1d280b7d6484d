"""The builder's AI nodes: agent, team, LLM router, knowledge retrieval."""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError

from workflows.forms.fields import (
    TEMPLATE_HELP,
    CommaListField,
    template_field,
)
from workflows.forms.nodes.base import NodeForm
from workflows.graph import (
    TEAM_MODES,
)


class AgentNodeForm(NodeForm):
    config_keys = (("agent_id", "agent_id"), ("input", "input"), ("fallback_agent_id", "fallback_agent_id"))
    agent_id = forms.TypedChoiceField(label="Agent", coerce=int, empty_value=None, choices=())
    input = template_field("Input", help_text="What the agent is asked. " + TEMPLATE_HELP)
    fallback_agent_id = forms.TypedChoiceField(
        label="Fallback agent",
        coerce=int,
        empty_value=None,
        required=False,
        choices=(),
        help_text="Takes over when the agent fails for good.",
    )

    def setup_choices(self) -> None:
        choices = self.agent_choices()
        self.fields["agent_id"].choices = [("", "Pick an agent…"), *choices]  # type: ignore[attr-defined]
        self.fields["fallback_agent_id"].choices = [("", "None"), *choices]  # type: ignore[attr-defined]


class TeamForm(NodeForm):
    config_keys = (("mode", "mode"), ("agent_ids", "agent_ids"), ("input", "input"))
    mode = forms.ChoiceField(
        choices=[(m, m.capitalize()) for m in TEAM_MODES],
        help_text="Route: the best one answers. Coordinate: in turn. Broadcast: all, then combined.",
    )
    agent_ids = forms.TypedMultipleChoiceField(
        label="Agents", coerce=int, choices=(), widget=forms.CheckboxSelectMultiple, help_text="At least two."
    )
    input = template_field("Input")

    def setup_choices(self) -> None:
        self.fields["agent_ids"].choices = self.agent_choices()  # type: ignore[attr-defined]

    def clean_agent_ids(self) -> list[int]:
        ids = self.cleaned_data["agent_ids"]
        if len(ids) < 2:
            raise ValidationError("Pick at least two agents.")
        return ids


class RouterForm(NodeForm):
    config_keys = (
        ("labels", "labels"),
        ("input", "input"),
        ("instructions", "instructions"),
        ("agent_id", "agent_id"),
    )
    labels = CommaListField(
        max_length=1000,
        help_text="Comma-separated branch names, e.g. billing, tech, sales. Each is an output.",
    )
    input = template_field("Input", help_text="The text to classify. " + TEMPLATE_HELP)
    instructions = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3}), help_text="How to choose."
    )
    agent_id = forms.TypedChoiceField(
        label="Classifier agent",
        coerce=int,
        empty_value=None,
        required=False,
        choices=(),
        help_text="Empty: the organization's default model.",
    )

    def setup_choices(self) -> None:
        self.fields["agent_id"].choices = [("", "Default model"), *self.agent_choices()]  # type: ignore[attr-defined]

    def clean_labels(self) -> list[str]:
        labels = self.cleaned_data["labels"]
        if len(labels) < 2:
            raise ValidationError("Give at least two labels.")
        if not all(re.fullmatch(r"[A-Za-z0-9_-]{1,40}", x) for x in labels):
            raise ValidationError("Labels are short words: letters, digits, - and _.")
        if len(set(labels)) != len(labels) or {"default", "error"} & set(labels):
            raise ValidationError("Labels must be unique and cannot be default or error.")
        return labels


class KnowledgeForm(NodeForm):
    config_keys = (
        ("knowledge_base_ids", "knowledge_base_ids"),
        ("query", "query"),
        ("top_k", "top_k"),
        ("mode", "mode"),
    )
    knowledge_base_ids = forms.TypedMultipleChoiceField(
        label="Knowledge bases", coerce=int, choices=(), widget=forms.CheckboxSelectMultiple
    )
    query = template_field("Query", rows=2, required=True)
    top_k = forms.IntegerField(label="Results", min_value=1, max_value=50, initial=5)
    mode = forms.ChoiceField(
        choices=[("hybrid", "Hybrid"), ("vector", "Vector"), ("keyword", "Keyword")], initial="hybrid"
    )

    def setup_choices(self) -> None:
        from knowledge.models import KnowledgeBase

        self.fields["knowledge_base_ids"].choices = [  # type: ignore[attr-defined]
            (str(pk), name)
            for pk, name in KnowledgeBase.objects.for_org(self.org).order_by("name").values_list("pk", "name")
        ]

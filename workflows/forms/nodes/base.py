"""The fields every node form has, and how a form becomes a node's JSON."""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError

from accounts.models import Organization
from workflows.graph import (
    NODE_ID,
    NODE_TYPES,
)

TRIGGER_KIND_LABELS = {
    "manual": "Manual (a button or the run API)",
    "api": "API",
    "schedule": "Schedule (cron)",
    "webhook": "Signed webhook",
    "integration": "Integration event",
}


class NodeForm(forms.Form):
    """The fields every node has. Subclasses add their config fields and list them in `config_keys`
    as (form field, config key)."""

    config_keys: ClassVar[tuple[tuple[str, str], ...]] = ()

    node_id = forms.CharField(
        label="Step id",
        max_length=64,
        help_text="Used in templates as nodes.<id>.output. A letter, then letters, digits or _.",
        widget=forms.TextInput(attrs={"class": "font-mono text-sm", "autocomplete": "off"}),
    )
    name = forms.CharField(label="Name", max_length=100, required=False)
    retry_max_attempts = forms.IntegerField(
        label="Attempts", min_value=1, max_value=10, initial=1, help_text="Tries before the step fails."
    )
    retry_backoff_seconds = forms.FloatField(
        label="Backoff (s)",
        min_value=0,
        max_value=3600,
        initial=2,
        help_text="Wait before a retry, doubling.",
    )
    node_timeout_seconds = forms.IntegerField(
        label="Timeout (s)", min_value=1, max_value=86400, required=False, help_text="Empty: no limit."
    )

    def __init__(
        self,
        *args: Any,
        org: Organization,
        workflow_id: int | None = None,
        other_ids: tuple[str, ...] = (),
        read_only: bool = False,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.org = org
        self.current_workflow_id = workflow_id
        self.other_ids = other_ids
        self.setup_choices()
        if read_only:
            for field in self.fields.values():
                field.disabled = True

    def setup_choices(self) -> None:
        """Subclasses fill choices that depend on the organization."""

    def agent_choices(self) -> list[tuple[str, str]]:
        from agents.models import Agent

        return [
            (str(pk), name)
            for pk, name in Agent.objects.for_org(self.org)
            .not_archived()
            .order_by("name")
            .values_list("pk", "name")
        ]

    def clean_node_id(self) -> str:
        value = self.cleaned_data["node_id"].strip()
        if not NODE_ID.match(value):
            raise ValidationError("A letter, then letters, digits or _ (64 at most).")
        if value in self.other_ids:
            raise ValidationError("Another step already has this id.")
        return value

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {}
        for field, key in self.config_keys:
            value = self.cleaned_data.get(field)
            if value in (None, "", [], {}):
                continue
            config[key] = value
        return config

    def node(self) -> dict[str, Any]:
        """The node's JSON, minus its type and position (the canvas keeps those)."""
        data = self.cleaned_data
        node: dict[str, Any] = {
            "id": data["node_id"],
            "name": (data.get("name") or "").strip(),
            "config": self.config(),
            "retry": {
                "max_attempts": data.get("retry_max_attempts") or 1,
                "backoff_seconds": data.get("retry_backoff_seconds")
                if data.get("retry_backoff_seconds") is not None
                else 2,
            },
        }
        if data.get("node_timeout_seconds"):
            node["timeout_seconds"] = data["node_timeout_seconds"]
        return node

    @classmethod
    def initial_for(cls, node: dict[str, Any]) -> dict[str, Any]:
        spec = NODE_TYPES[node["type"]]
        config = {**spec.defaults, **(node.get("config") or {})}
        retry = node.get("retry") or {}
        initial: dict[str, Any] = {
            "node_id": node.get("id", ""),
            "name": node.get("name", ""),
            "retry_max_attempts": retry.get("max_attempts", 1),
            "retry_backoff_seconds": retry.get("backoff_seconds", 2),
            "node_timeout_seconds": node.get("timeout_seconds"),
        }
        for field, key in cls.config_keys:
            if key in config:
                initial[field] = config[key]
        return initial

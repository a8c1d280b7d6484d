"""Forms for the workflows pages: create a workflow, decide an approval, and (in `nodes`) one config
form per node type for the builder's side panel."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from workflows.forms.nodes import NODE_FORMS, NodeForm

__all__ = ["NODE_FORMS", "DecisionForm", "NodeForm", "WorkflowForm", "parse_run_input"]


class WorkflowForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the workflow does, e.g. Triage support email.")
    description = forms.CharField(
        max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Optional."
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError("Give the workflow a name.")
        return name


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    comment = forms.CharField(
        max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Comment"
    )


def parse_run_input(value: str) -> dict[str, Any]:
    """A JSON object as is; any other text becomes `{"text": ...}`."""
    value = (value or "").strip()
    if not value:
        return {}
    if value.startswith("{"):
        try:
            data = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"The input is not valid JSON: {exc.msg} (line {exc.lineno}).")
        if not isinstance(data, dict):
            raise ValidationError("The input is a JSON object or plain text.")
        return data
    return {"text": value}

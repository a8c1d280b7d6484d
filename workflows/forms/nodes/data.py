"""Triggers and the builder's data and integration nodes: HTTP, transform, set variable, integration action, end."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from workflows.forms.fields import (
    TEMPLATE_HELP,
    JSONObjectField,
    MappingField,
    check_template,
    template_field,
)
from workflows.forms.nodes.base import TRIGGER_KIND_LABELS, NodeForm
from workflows.graph import (
    HTTP_METHODS,
    TRIGGER_KINDS,
)


class TriggerForm(NodeForm):
    config_keys = (("kind", "kind"), ("cron", "cron"), ("timezone", "timezone"), ("event", "event"))
    kind = forms.ChoiceField(choices=[(k, TRIGGER_KIND_LABELS[k]) for k in TRIGGER_KINDS], initial="manual")
    cron = forms.CharField(
        required=False,
        max_length=100,
        help_text="Schedule only: minute hour day month weekday, e.g. 0 9 * * 1-5.",
        widget=forms.TextInput(attrs={"class": "font-mono text-sm"}),
    )
    timezone = forms.CharField(required=False, max_length=64, initial="UTC", help_text="Schedule only.")
    event = forms.CharField(required=False, max_length=100, help_text="Integration only, e.g. slack.message.")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("kind") == "schedule":
            from workflows.schedule import cron_error

            if not data.get("cron"):
                self.add_error("cron", "A schedule needs a cron line.")
            else:
                problem = cron_error(data["cron"], data.get("timezone") or "UTC")
                if problem:
                    self.add_error("cron", problem)
        if data.get("kind") == "integration" and not data.get("event"):
            self.add_error("event", "Name the event this trigger listens for.")
        return data


class HttpForm(NodeForm):
    config_keys = (
        ("method", "method"),
        ("url", "url"),
        ("headers", "headers"),
        ("body", "body"),
        ("request_timeout", "timeout_seconds"),
    )
    method = forms.ChoiceField(choices=[(m, m) for m in HTTP_METHODS], initial="GET")
    url = forms.CharField(
        label="URL",
        max_length=2000,
        help_text="http(s) only; private addresses are blocked. Templates allowed.",
        validators=[check_template],
    )
    headers = MappingField(required=False, help_text="One Name: value per line.")
    body = template_field("Body", rows=4, help_text="Sent as is (use JSON for APIs). " + TEMPLATE_HELP)
    request_timeout = forms.IntegerField(
        label="Request timeout (s)", required=False, min_value=1, max_value=120, help_text="Default 30."
    )

    def clean_headers(self) -> dict[str, Any]:
        value = self.cleaned_data["headers"]
        check_template(value)
        return value


class TransformForm(NodeForm):
    config_keys = (("mapping", "mapping"),)
    mapping = MappingField(
        help_text="One key: template per line, e.g. summary: {{ nodes.draft.output }}. Or a JSON object."
    )

    def clean_mapping(self) -> dict[str, Any]:
        value = self.cleaned_data["mapping"]
        if not value:
            raise ValidationError("Map at least one key.")
        check_template(value)
        return value


class SetVariableForm(NodeForm):
    config_keys = (("variables", "variables"),)
    variables = MappingField(help_text="One name: template per line; later steps read vars.<name>.")

    def clean_variables(self) -> dict[str, Any]:
        value = self.cleaned_data["variables"]
        if not value:
            raise ValidationError("Set at least one variable.")
        bad = [k for k in value if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", k)]
        if bad:
            raise ValidationError(f"Names are identifiers (letters, digits, _): {', '.join(bad)}.")
        check_template(value)
        return value


class IntegrationForm(NodeForm):
    config_keys = (("app", "app"), ("action", "action"), ("params", "params"))
    app = forms.CharField(max_length=60, help_text="e.g. slack, gmail, notion.")
    action = forms.CharField(max_length=60, help_text="e.g. send_message.")
    params = JSONObjectField(required=False, help_text="A JSON object; string values may be templates.")

    def clean_params(self) -> dict[str, Any]:
        value = self.cleaned_data["params"]
        check_template(value)
        return value


class EndForm(NodeForm):
    config_keys = (("output", "output"),)
    output = template_field(
        "Output", rows=4, help_text="The run's output. {{ last }} is what the previous step produced."
    )

"""One config form per node type, for the builder's side panel. A node form turns its fields into the
node's JSON (`config`, `retry`, `timeout_seconds`); the graph is still validated as a whole on save."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from accounts.models import Organization
from workflows.forms.fields import (
    TEMPLATE_HELP,
    CommaListField,
    JSONObjectField,
    MappingField,
    check_template,
    expression_field,
    template_field,
)
from workflows.graph import (
    APPROVAL_TIMEOUT_PORTS,
    HTTP_METHODS,
    MAX_LOOP_ITERATIONS,
    NODE_ID,
    NODE_TYPES,
    TEAM_MODES,
    TRIGGER_KINDS,
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


class ConditionForm(NodeForm):
    config_keys = (("expression", "expression"),)
    expression = expression_field(
        "Expression", 'True takes the true output, else false. E.g. len(last) > 100 or input.plan == "pro".'
    )


class SwitchForm(NodeForm):
    config_keys = (("expression", "expression"), ("cases", "cases"))
    expression = expression_field("Expression", "Its value picks the case, e.g. lower(nodes.triage.output).")
    cases = CommaListField(
        max_length=1000, help_text="Comma-separated values; each is an output, plus default."
    )

    def clean_cases(self) -> list[str]:
        cases = self.cleaned_data["cases"]
        if not cases:
            raise ValidationError("Give at least one case.")
        if len(set(cases)) != len(cases) or {"default", "error"} & set(cases):
            raise ValidationError("Cases must be unique and cannot be default or error.")
        return cases


class ParallelForm(NodeForm):
    pass


class JoinForm(NodeForm):
    config_keys = (("mode", "mode"),)
    mode = forms.ChoiceField(
        choices=[("all", "All branches"), ("any", "The first branch")], help_text="What to wait for."
    )


class LoopForm(NodeForm):
    config_keys = (
        ("mode", "mode"),
        ("items", "items"),
        ("condition", "condition"),
        ("max_iterations", "max_iterations"),
    )
    mode = forms.ChoiceField(
        choices=[("foreach", "For each item of a list"), ("while", "While a condition holds")]
    )
    items = forms.CharField(
        required=False,
        max_length=1000,
        help_text="For each: a template giving a list, e.g. {{ nodes.search.output.items }}.",
        widget=forms.TextInput(attrs={"class": "font-mono text-sm"}),
        validators=[check_template],
    )
    condition = expression_field(
        "Condition", 'While: repeat as long as this is true, e.g. not contains(last, "PASS").'
    )
    max_iterations = forms.IntegerField(
        label="Max iterations",
        min_value=1,
        max_value=MAX_LOOP_ITERATIONS,
        help_text="Required: the loop stops here.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("mode") == "foreach" and not data.get("items"):
            self.add_error("items", "A for-each loop needs the list to go over.")
        if data.get("mode") == "while" and not data.get("condition"):
            self.add_error("condition", "A while loop needs a condition.")
        return data


class ApprovalForm(NodeForm):
    config_keys = (
        ("title", "title"),
        ("message", "message"),
        ("assignees", "assignees"),
        ("timeout_seconds", "timeout_seconds"),
        ("on_timeout", "on_timeout"),
    )
    title = forms.CharField(max_length=200, initial="Approval needed")
    message = template_field("Message", help_text="Shown to the approver. " + TEMPLATE_HELP)
    assignees = CommaListField(
        required=False,
        max_length=2000,
        help_text="Comma-separated member emails. Empty: any member may decide.",
    )
    timeout_seconds = forms.IntegerField(
        label="Timeout (s)", required=False, min_value=1, help_text="Empty: waits until someone decides."
    )
    on_timeout = forms.ChoiceField(
        label="On timeout", choices=[(p, p.capitalize()) for p in APPROVAL_TIMEOUT_PORTS], initial="timeout"
    )

    def clean_assignees(self) -> list[str]:
        emails = [e.lower() for e in self.cleaned_data["assignees"]]
        for email in emails:
            try:
                validate_email(email)
            except ValidationError:
                raise ValidationError(f"{email} is not an email address.")
        members = set(
            self.org.memberships.filter(user__email__in=emails).values_list("user__email", flat=True)
        )
        missing = [e for e in emails if e not in {m.lower() for m in members}]
        if missing:
            raise ValidationError(f"Not members of {self.org.name}: {', '.join(missing)}.")
        return emails


class DelayForm(NodeForm):
    config_keys = (("seconds", "seconds"), ("until", "until"))
    seconds = forms.IntegerField(
        required=False, min_value=0, max_value=90 * 86400, help_text="How long to wait."
    )
    until = forms.CharField(
        required=False,
        max_length=200,
        help_text="Or a date and time (ISO 8601, e.g. 2030-01-31T09:00:00Z) or a template.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("seconds") is None and not data.get("until"):
            self.add_error("seconds", "Give a number of seconds or a date and time.")
        return data


class SubworkflowForm(NodeForm):
    config_keys = (("workflow_id", "workflow_id"), ("input", "input"))
    workflow_id = forms.TypedChoiceField(label="Workflow", coerce=int, empty_value=None, choices=())
    input = MappingField(
        required=False,
        help_text="Its input: one name: template per line (or a JSON object). Empty: this run's input.",
    )

    def setup_choices(self) -> None:
        from workflows.models import Workflow

        workflows = Workflow.objects.for_org(self.org).exclude(status=Workflow.Status.ARCHIVED)
        if self.current_workflow_id:
            workflows = workflows.exclude(pk=self.current_workflow_id)
        self.fields["workflow_id"].choices = [  # type: ignore[attr-defined]
            ("", "Pick a workflow…"),
            *[(str(pk), name) for pk, name in workflows.order_by("name").values_list("pk", "name")],
        ]

    def clean_input(self) -> dict[str, Any]:
        value = self.cleaned_data["input"]
        check_template(value)
        return value


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

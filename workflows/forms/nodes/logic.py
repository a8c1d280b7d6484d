"""The builder's logic nodes: branches, fan-out and join, loops, approvals, delays, sub-workflows."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from workflows.forms.fields import (
    TEMPLATE_HELP,
    CommaListField,
    MappingField,
    check_template,
    expression_field,
    template_field,
)
from workflows.forms.nodes.base import NodeForm
from workflows.graph import (
    APPROVAL_TIMEOUT_PORTS,
    MAX_LOOP_ITERATIONS,
)


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

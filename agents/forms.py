"""Forms for the agents pages. The builder's form is flat (one field per input, grouped in steps);
`agents.builder_config` turns it into an AgentConfig dict and maps config errors back to fields."""

from __future__ import annotations

import json
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError

from agents.config import HANDOFF_MODES, HTTP_METHODS
from agents.models import ALL_AVATARS, Agent, Task
from agents.output_types import BUILTIN_OUTPUT_TYPES
from agents.runtime.providers import PROVIDERS, is_configured
from agents.templates_catalog import ROLE_TEMPLATES, ROLE_TEMPLATES_BY_ID

AVATAR_CHOICES = [(a, a) for a in ALL_AVATARS]
BUILTIN_TOOLS = (
    ("calculator", "Calculator", "Exact arithmetic, so the model never guesses at maths."),
    ("datetime", "Date and time", "The current date and time in any time zone."),
    ("web_search", "Web search", "Search the web (DuckDuckGo) for titles, links and snippets."),
)


def parse_json_field(value: str, *, what: str, require_object: bool = True) -> Any:
    value = (value or "").strip()
    if not value:
        return None
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).")
    if require_object and not isinstance(data, dict):
        raise ValidationError(f"{what} must be a JSON object, like {{…}}.")
    return data


def check_object_schema(schema: Any) -> Any:
    """The same JSON Schema rule the config applies, run per field so its error shows at once,
    even while other steps still have errors."""
    from pydantic import ValidationError as PydanticError

    from agents.config import OutputType

    if schema is None:
        return None
    try:
        OutputType.model_validate({"schema": schema})
    except PydanticError as exc:
        raise ValidationError(exc.errors()[0]["msg"].removeprefix("Value error, "))
    return schema


# ------------------------------------------------------------------ hire


class HireForm(forms.Form):
    template = forms.ChoiceField(
        choices=[(t.id, t.label) for t in ROLE_TEMPLATES], widget=forms.RadioSelect, label="Role"
    )
    name = forms.CharField(max_length=100, required=False, help_text="Leave empty to use the role's name.")
    avatar = forms.ChoiceField(choices=AVATAR_CHOICES, required=False, widget=forms.RadioSelect)
    persona = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        max_length=5000,
        help_text="Personality, audience, products, do's and don'ts. Added to the role's instructions.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        template = ROLE_TEMPLATES_BY_ID.get(data.get("template") or "")
        if template is not None:
            data["name"] = (data.get("name") or "").strip() or template.label
            data["avatar"] = data.get("avatar") or template.emoji
        return data


# --------------------------------------------------------------- builder


class BuilderForm(forms.Form):
    # basics
    name = forms.CharField(max_length=100, help_text="What people call this agent.")
    description = forms.CharField(
        max_length=500, required=False, help_text="One sentence shown on the agent's card."
    )
    avatar = forms.ChoiceField(choices=AVATAR_CHOICES, initial="🤖", help_text="Its face in chats and lists.")
    role = forms.CharField(
        max_length=60,
        required=False,
        help_text="A short job title, e.g. research, support, marketing.",
        widget=forms.TextInput(attrs={"list": "role-suggestions", "autocomplete": "off"}),
    )
    category = forms.CharField(
        max_length=60, required=False, help_text="Used to filter the agents list, e.g. Sales or Engineering."
    )
    visibility = forms.ChoiceField(
        choices=Agent.Visibility.choices,
        initial=Agent.Visibility.ORG,
        help_text="Private: only you. Organization: every member. Public: listed in the community directory.",
    )
    # instructions
    instructions = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12}),
        required=False,
        max_length=50_000,
        help_text="The system prompt: who the agent is, what it does, how it answers, what it must not do.",
    )
    memory_enabled = forms.BooleanField(
        required=False,
        label="Remember facts about each user",
        help_text="Long-term memories (editable on the Memory tab) are given to the agent on every run.",
    )
    memory_max_items = forms.IntegerField(
        min_value=1, max_value=200, initial=20, label="Memories per run", help_text="At most this many."
    )
    # model
    provider = forms.ChoiceField(choices=(), help_text="Which company or server runs the model.")
    model_name = forms.CharField(
        max_length=120,
        label="Model",
        help_text="The provider's model id, e.g. gpt-4o-mini.",
        widget=forms.TextInput(attrs={"list": "model-names", "autocomplete": "off"}),
    )
    temperature = forms.FloatField(
        min_value=0,
        max_value=2,
        initial=0.7,
        help_text="0 = focused and repeatable, 1 = creative, 2 = wild.",
        widget=forms.NumberInput(attrs={"step": "0.1"}),
    )
    max_tokens = forms.IntegerField(
        min_value=1,
        max_value=200_000,
        required=False,
        label="Max tokens",
        help_text="Upper bound on the length of one reply. Empty = the provider's default.",
    )
    fallback_provider = forms.ChoiceField(
        choices=(), required=False, label="Fallback provider", help_text="Used when the main model fails."
    )
    fallback_model = forms.CharField(
        max_length=120,
        required=False,
        label="Fallback model",
        help_text="The fallback provider's model id.",
        widget=forms.TextInput(attrs={"list": "model-names", "autocomplete": "off"}),
    )
    # tools
    tool_calculator = forms.BooleanField(required=False, label="Calculator")
    tool_datetime = forms.BooleanField(required=False, label="Date and time")
    tool_web_search = forms.BooleanField(required=False, label="Web search")
    tool_call_limit = forms.IntegerField(
        min_value=0,
        max_value=100,
        initial=10,
        label="Tool calls per run",
        help_text="The run stops calling tools after this many calls.",
    )
    agent_tools = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Agents as tools",
        help_text="This agent may ask these agents for help and use their answers.",
    )
    # handoffs
    handoff_agents = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Hand off to",
        help_text="Specialists this agent can pass the conversation to.",
    )
    handoff_mode = forms.ChoiceField(
        choices=[(m, m.capitalize()) for m in HANDOFF_MODES],
        initial="route",
        widget=forms.RadioSelect,
        label="Team mode",
        help_text="Route: pick one specialist. Coordinate: split the work and combine. Broadcast: ask all.",
    )
    # output
    output_type = forms.ChoiceField(
        choices=[*[(k, k.capitalize()) for k in BUILTIN_OUTPUT_TYPES], ("custom", "Custom JSON Schema")],
        initial="text",
        widget=forms.RadioSelect,
        label="Output type",
        help_text="Structured types make every reply a JSON object checked against a schema.",
    )
    output_name = forms.CharField(
        max_length=64, required=False, label="Custom type name", help_text="A short name, e.g. invoice."
    )
    output_schema = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "class": "font-mono text-sm"}),
        required=False,
        label="Custom JSON Schema",
        help_text='A JSON Schema with "type": "object" that every reply must satisfy.',
    )
    # guardrails
    gr_pii = forms.BooleanField(
        required=False, label="Redact personal data in input", help_text="Emails, phones, cards, IBANs."
    )
    gr_injection = forms.BooleanField(
        required=False,
        label="Block prompt injection",
        help_text='Refuse messages like "ignore all previous instructions".',
    )
    gr_max_length = forms.IntegerField(
        min_value=1,
        max_value=200_000,
        required=False,
        label="Max input length",
        help_text="Longer messages are refused (characters). Empty = no limit.",
    )
    gr_blocked_topics = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        label="Blocked topics",
        help_text="One per line. Messages mentioning them are refused.",
    )
    gr_output_pii = forms.BooleanField(
        required=False, label="Redact personal data in output", help_text="Applied before the reply is shown."
    )
    gr_output_schema = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "class": "font-mono text-sm"}),
        required=False,
        label="Output must match JSON Schema",
        help_text="Replies that do not match fail the run with the validation error.",
    )

    def __init__(self, *args: Any, org: Any, other_agents: list[Agent], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.other_agents = other_agents
        provider_choices = []
        for pid, info in PROVIDERS.items():
            status = "configured" if is_configured(org=org, provider_id=pid) else "no key"
            provider_choices.append((pid, f"{info.label} · {status}"))
        self._choice_field("provider").choices = provider_choices
        self._choice_field("fallback_provider").choices = [("", "No fallback"), *provider_choices]
        agent_choices = [(str(a.pk), f"{a.avatar} {a.name}") for a in other_agents]
        self._choice_field("agent_tools").choices = agent_choices
        self._choice_field("handoff_agents").choices = agent_choices
        for a in other_agents:
            self.fields[f"handoff_desc_{a.pk}"] = forms.CharField(
                max_length=1000,
                required=False,
                label=f"When to hand off to {a.name}",
                help_text="Tells the triage model when this specialist is the right one.",
            )

    def _choice_field(self, name: str) -> forms.ChoiceField:
        return cast(forms.ChoiceField, self.fields[name])

    def handoff_rows(self) -> list[tuple[Agent, forms.BoundField]]:
        return [(a, self[f"handoff_desc_{a.pk}"]) for a in self.other_agents]

    def clean_output_schema(self) -> Any:
        return check_object_schema(parse_json_field(self.cleaned_data["output_schema"], what="The schema"))

    def clean_gr_output_schema(self) -> Any:
        return check_object_schema(parse_json_field(self.cleaned_data["gr_output_schema"], what="The schema"))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (
            data.get("output_type") == "custom"
            and not data.get("output_schema")
            and not self.has_error("output_schema")
        ):
            self.add_error("output_schema", "Paste a JSON Schema for the custom output type.")
        if data.get("fallback_provider") and not (data.get("fallback_model") or "").strip():
            self.add_error("fallback_model", "Name the fallback model.")
        return data


class HttpToolForm(forms.Form):
    id = forms.CharField(required=False, widget=forms.HiddenInput)
    name = forms.CharField(
        max_length=64,
        required=False,
        help_text="The function name the model calls: letters, digits and underscores.",
    )
    description = forms.CharField(
        max_length=1000, required=False, help_text="When the model should call it and what it returns."
    )
    method = forms.ChoiceField(choices=[(m, m) for m in HTTP_METHODS], initial="GET", help_text="HTTP verb.")
    url = forms.CharField(
        max_length=2000,
        required=False,
        label="URL template",
        help_text="Public http(s) URL; {param} placeholders are filled from the call's arguments.",
    )
    headers = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "class": "font-mono text-sm"}),
        required=False,
        label="Headers (JSON)",
        help_text='e.g. {"Authorization": "Bearer {{secret:MY_TOKEN}}"}; secrets stay encrypted.',
    )
    parameters = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "class": "font-mono text-sm"}),
        required=False,
        label="Parameters (JSON Schema)",
        help_text="The arguments the model must pass, as a JSON Schema object.",
    )
    ask_before_run = forms.BooleanField(
        required=False, label="Ask before running", help_text="Pause the run for your approval first."
    )

    def clean_headers(self) -> Any:
        data = parse_json_field(self.cleaned_data["headers"], what="Headers") or {}
        if not all(isinstance(v, str) for v in data.values()):
            raise ValidationError("Header values must be strings.")
        return data

    def clean_parameters(self) -> Any:
        return check_object_schema(
            parse_json_field(self.cleaned_data["parameters"], what="The parameters schema")
        )

    def clean_url(self) -> str:
        url = (self.cleaned_data.get("url") or "").strip()
        if url:
            check_public_url(url)
        return url

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (data.get("url") or "") and not self.has_error("url"):
            if not data.get("name"):
                self.add_error("name", "An HTTP tool needs a name.")
            if not data.get("description"):
                self.add_error("description", "Describe when to call it, so the model knows.")
        return data


def check_public_url(url: str) -> None:
    from agents.services import public_url_error

    error = public_url_error(url)
    if error:
        raise ValidationError(error)


HttpToolFormSet = forms.formset_factory(HttpToolForm, extra=1, can_delete=True, max_num=20)


# --------------------------------------------------------- agent tabs


class ProfileForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(max_length=500, required=False)
    avatar = forms.ChoiceField(choices=AVATAR_CHOICES)
    role = forms.CharField(max_length=60, required=False)
    category = forms.CharField(max_length=60, required=False)
    visibility = forms.ChoiceField(choices=Agent.Visibility.choices)


class ChatForm(forms.Form):
    message = forms.CharField(max_length=20_000, widget=forms.Textarea(attrs={"rows": 2}))
    session = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=1)


class TaskForm(forms.Form):
    title = forms.CharField(max_length=200)
    details = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False, max_length=20_000)
    priority = forms.ChoiceField(choices=Task.Priority.choices, initial=Task.Priority.MEDIUM)


class MemoryForm(forms.Form):
    content = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), label="Memory")


class ContextForm(forms.Form):
    key = forms.CharField(max_length=100)
    value = forms.CharField(
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Text, or JSON (an object, list or number) if it parses as JSON.",
    )

    def clean_value(self) -> Any:
        raw = self.cleaned_data["value"].strip()
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw


class ProviderKeyForm(forms.Form):
    provider = forms.ChoiceField(choices=())
    api_key = forms.CharField(
        max_length=500, widget=forms.PasswordInput(render_value=False), label="API key", strip=True
    )
    base_url = forms.URLField(
        assume_scheme="https",
        max_length=500,
        required=False,
        label="Base URL",
        help_text="Only for OpenAI-compatible servers. Private and loopback addresses are refused.",
    )
    label = forms.CharField(max_length=100, required=False)
    model = forms.CharField(
        max_length=120, required=False, label="Model to test with", help_text="Defaults to the first model."
    )

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["provider"]).choices = [
            (pid, info.label) for pid, info in PROVIDERS.items() if info.kind != "demo"
        ]

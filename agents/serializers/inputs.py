"""Input serializers of the agents API: what clients may send."""

from __future__ import annotations

from rest_framework import serializers

from agents.config import TOOL_TYPES
from agents.models import ALL_AVATARS, Agent, Task
from agents.runtime.providers import PROVIDERS


class AgentInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=500, allow_blank=True, required=False)
    avatar = serializers.ChoiceField(choices=ALL_AVATARS, required=False)
    role = serializers.CharField(max_length=60, allow_blank=True, required=False)
    category = serializers.CharField(max_length=60, allow_blank=True, required=False)
    visibility = serializers.ChoiceField(choices=Agent.Visibility.choices, required=False)
    config = serializers.DictField(
        required=False,
        help_text="Version config (instructions, model, tools, handoffs, guardrails, output_type, ...). "
        "Keys you leave out keep their current (or default) values.",
    )
    publish = serializers.BooleanField(
        default=False, help_text="Publish the version this request creates, so runs use it."
    )
    note = serializers.CharField(max_length=200, allow_blank=True, required=False)


class CloneInput(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)


class PublishInput(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, required=False, help_text="Default: the latest version.")


class RollbackInput(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)


class ContextInput(serializers.Serializer):
    key = serializers.CharField(max_length=100)
    value = serializers.JSONField()


class HandoffInput(serializers.Serializer):
    agent_id = serializers.IntegerField(min_value=1)
    description = serializers.CharField(max_length=1000, allow_blank=True, required=False)


class ToolInput(serializers.Serializer):
    type = serializers.ChoiceField(choices=TOOL_TYPES)
    name = serializers.CharField(max_length=64, allow_blank=True, required=False)
    description = serializers.CharField(max_length=1000, allow_blank=True, required=False)
    config = serializers.DictField(required=False)
    ask_before_run = serializers.BooleanField(required=False)


class ProviderKeyInput(serializers.Serializer):
    provider = serializers.ChoiceField(choices=sorted(p for p in PROVIDERS if p != "demo"))
    api_key = serializers.CharField(max_length=500, write_only=True, trim_whitespace=True)
    base_url = serializers.URLField(max_length=500, required=False, allow_blank=True, default="")
    label = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")  # type: ignore[assignment]
    model = serializers.CharField(
        max_length=120, required=False, allow_blank=True, default="", help_text="Model to test the key with."
    )
    test = serializers.BooleanField(default=True, help_text="Make one tiny call with the key before saving.")

    def validate_base_url(self, value: str) -> str:
        if value:
            from integrations.safe_http import UnsafeURLError, validate_url

            try:
                validate_url(value)
            except UnsafeURLError as exc:
                raise serializers.ValidationError(str(exc), code="unsafe_url")
        return value


class RunInput(serializers.Serializer):
    input = serializers.CharField(max_length=100_000)
    session_id = serializers.IntegerField(
        min_value=1, required=False, help_text="Continue this conversation (yours, with this agent)."
    )
    stream = serializers.BooleanField(
        default=False, help_text="Answer with Server-Sent Events instead of waiting for the result."
    )


class SessionInput(serializers.Serializer):
    title = serializers.CharField(max_length=200, allow_blank=True)


class FeedbackInput(serializers.Serializer):
    value = serializers.ChoiceField(choices=[-1, 0, 1], help_text="-1 thumbs down, 0 none, 1 thumbs up.")


class MemoryInput(serializers.Serializer):
    content = serializers.CharField(max_length=2000)


class TaskInput(serializers.Serializer):
    agent_id = serializers.IntegerField(min_value=1)
    title = serializers.CharField(max_length=200)
    details = serializers.CharField(max_length=20_000, allow_blank=True, required=False, default="")
    priority = serializers.ChoiceField(choices=Task.Priority.choices, default=Task.Priority.MEDIUM)


class TaskUpdateInput(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False)
    details = serializers.CharField(max_length=20_000, allow_blank=True, required=False)

"""Output serializers of the agents API: the shapes clients get back."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from agents.config import HANDOFF_MODES
from agents.models import (
    Agent,
    AgentContextEntry,
    AgentMemory,
    AgentRun,
    AgentVersion,
    ChatSession,
    Message,
    ProviderKey,
    RunEvent,
    Task,
)


class AgentOutput(serializers.ModelSerializer):
    status = serializers.CharField(help_text="draft, active or archived")
    published_version = serializers.IntegerField(
        source="published_version.number", allow_null=True, default=None
    )

    class Meta:
        model = Agent
        fields = [
            "id",
            "name",
            "slug",
            "description",
            "avatar",
            "role",
            "category",
            "visibility",
            "status",
            "level",
            "xp",
            "published_version",
            "created_at",
            "updated_at",
            "last_activity_at",
        ]


class AgentDetailOutput(AgentOutput):
    skills = serializers.ListField(child=serializers.CharField())
    next_level_xp = serializers.IntegerField(allow_null=True)
    level_progress = serializers.IntegerField(help_text="Percent of the way to the next level.")
    latest_version = serializers.SerializerMethodField()
    config = serializers.SerializerMethodField(help_text="The latest version's config.")

    class Meta(AgentOutput.Meta):
        fields = [
            *AgentOutput.Meta.fields,
            "skills",
            "next_level_xp",
            "level_progress",
            "latest_version",
            "config",
        ]

    def _latest(self, obj: Agent) -> AgentVersion | None:
        # Both method fields need it; look it up once per agent.
        if not hasattr(obj, "_api_latest_version"):
            obj._api_latest_version = obj.latest_version()  # type: ignore[attr-defined]
        return obj._api_latest_version  # type: ignore[attr-defined]

    def get_latest_version(self, obj: Agent) -> int | None:
        latest = self._latest(obj)
        return latest.number if latest else None

    def get_config(self, obj: Agent) -> dict[str, Any] | None:
        latest = self._latest(obj)
        return latest.config if latest else None


class VersionOutput(serializers.ModelSerializer):
    created_by = serializers.EmailField(source="created_by.email", allow_null=True, default=None)
    is_published = serializers.SerializerMethodField()

    class Meta:
        model = AgentVersion
        fields = ["number", "note", "created_by", "created_at", "is_published"]

    def get_is_published(self, obj: AgentVersion) -> bool:
        return obj.agent.published_version_id == obj.pk


class VersionDetailOutput(VersionOutput):
    config = serializers.JSONField()
    diff = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Unified diff from version `diff_with` to this one, when asked for.",
    )

    class Meta(VersionOutput.Meta):
        fields = [*VersionOutput.Meta.fields, "config", "diff"]


class ContextOutput(serializers.ModelSerializer):
    value = serializers.JSONField()

    class Meta:
        model = AgentContextEntry
        fields = ["key", "value", "updated_at"]


class HandoffOutput(serializers.Serializer):
    id = serializers.CharField()
    agent_id = serializers.IntegerField()
    agent_name = serializers.CharField(allow_null=True, help_text="Null if that agent no longer exists.")
    description = serializers.CharField(allow_blank=True)
    version = serializers.IntegerField(
        allow_null=True, help_text="The agent version this handoff is read from."
    )


class HandoffListOutput(serializers.Serializer):
    mode = serializers.ChoiceField(choices=HANDOFF_MODES)
    version = serializers.IntegerField(allow_null=True)
    handoffs = HandoffOutput(many=True)


class ToolOutput(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    description = serializers.CharField(allow_blank=True)
    config = serializers.JSONField()
    ask_before_run = serializers.BooleanField()
    version = serializers.IntegerField(allow_null=True, help_text="The agent version this tool is read from.")


class ToolTypeOutput(serializers.Serializer):
    type = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    description = serializers.CharField()
    config_schema = serializers.JSONField()


class OutputTypeOutput(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    schema = serializers.JSONField(allow_null=True, help_text="JSON Schema; null for free text.")


class ProviderOutput(serializers.Serializer):
    id = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    kind = serializers.CharField()
    configured = serializers.BooleanField(help_text="Usable by this organization now.")
    default = serializers.BooleanField(help_text="New agents of this organization start on it.")
    models = serializers.ListField(child=serializers.CharField())


class ProviderModelsOutput(serializers.Serializer):
    provider = serializers.CharField()
    models = serializers.ListField(child=serializers.CharField())
    default_model = serializers.CharField(allow_null=True)


class ProviderCapabilitiesOutput(serializers.Serializer):
    provider = serializers.CharField()
    capabilities = serializers.DictField(child=serializers.BooleanField())


class ProviderKeyOutput(serializers.ModelSerializer):
    key = serializers.CharField(source="key_hint", help_text="Masked; the key itself is never returned.")
    created_by = serializers.EmailField(source="created_by.email", allow_null=True, default=None)

    class Meta:
        model = ProviderKey
        fields = ["id", "provider", "label", "base_url", "key", "created_by", "created_at"]


class UsageOutput(serializers.Serializer):
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()


class RunResultOutput(serializers.Serializer):
    run_id = serializers.IntegerField()
    session_id = serializers.IntegerField(allow_null=True)
    status = serializers.CharField(help_text="queued, running, waiting, succeeded, failed or cancelled")
    output = serializers.CharField(allow_blank=True)
    output_json = serializers.JSONField(allow_null=True)
    usage = UsageOutput()
    cost = serializers.DecimalField(max_digits=12, decimal_places=6)
    latency_ms = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)


class RunAcceptedOutput(serializers.Serializer):
    run_id = serializers.IntegerField()
    session_id = serializers.IntegerField(allow_null=True)
    status = serializers.CharField()


# One instance, whose fields are built once: every waited-for run is answered through it, and DRF
# deep-copies a serializer's declared fields for each new instance. `to_representation` keeps no state.
_RUN_RESULT = RunResultOutput()


def run_result(run: AgentRun) -> dict[str, Any]:
    return _RUN_RESULT.to_representation(
        {
            "run_id": run.pk,
            "session_id": run.session_id,
            "status": run.status,
            "output": run.output,
            "output_json": run.output_json,
            "usage": {"input_tokens": run.input_tokens, "output_tokens": run.output_tokens},
            "cost": run.cost,
            "latency_ms": run.latency_ms,
            "error": run.error,
        }
    )


class RunOutput(serializers.ModelSerializer):
    status = serializers.CharField(help_text="queued, running, waiting, succeeded, failed or cancelled")
    agent_id = serializers.IntegerField()
    session_id = serializers.IntegerField(allow_null=True)
    version = serializers.IntegerField(source="version.number")
    output_json = serializers.JSONField(allow_null=True)
    trace = serializers.JSONField()

    class Meta:
        model = AgentRun
        fields = [
            "id",
            "agent_id",
            "version",
            "session_id",
            "status",
            "input",
            "output",
            "output_json",
            "model_used",
            "input_tokens",
            "output_tokens",
            "cost",
            "latency_ms",
            "error",
            "trace",
            "created_at",
            "started_at",
            "finished_at",
        ]


class RunEventOutput(serializers.ModelSerializer):
    type = serializers.CharField(help_text="status, delta, tool_call, tool_result, handoff, guardrail, ...")
    payload = serializers.JSONField()
    at = serializers.DateTimeField(source="created_at")

    class Meta:
        model = RunEvent
        fields = ["seq", "type", "payload", "at"]


class SessionOutput(serializers.ModelSerializer):
    agent_id = serializers.IntegerField()

    class Meta:
        model = ChatSession
        fields = ["id", "agent_id", "title", "created_at", "updated_at"]


class MessageOutput(serializers.ModelSerializer):
    role = serializers.CharField(help_text="user, assistant or system")
    run_id = serializers.IntegerField(allow_null=True)
    structured = serializers.JSONField(allow_null=True)
    tool_calls = serializers.JSONField()
    citations = serializers.JSONField()

    class Meta:
        model = Message
        fields = [
            "id",
            "role",
            "content",
            "structured",
            "tool_calls",
            "citations",
            "feedback",
            "run_id",
            "created_at",
        ]


class MemoryOutput(serializers.ModelSerializer):
    class Meta:
        model = AgentMemory
        fields = ["id", "content", "created_at", "updated_at"]


class TaskOutput(serializers.ModelSerializer):
    status = serializers.CharField(help_text="pending, running, completed, failed or cancelled")
    agent_id = serializers.IntegerField()
    run_id = serializers.IntegerField(allow_null=True)
    xp_reward = serializers.IntegerField()

    class Meta:
        model = Task
        fields = [
            "id",
            "agent_id",
            "title",
            "details",
            "priority",
            "status",
            "xp_reward",
            "xp_awarded",
            "run_id",
            "created_at",
            "completed_at",
        ]


class TaskLogsOutput(serializers.Serializer):
    task_id = serializers.IntegerField()
    status = serializers.CharField()
    run_id = serializers.IntegerField(allow_null=True)
    run_status = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    events = RunEventOutput(many=True)

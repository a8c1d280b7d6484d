"""Workflows API serializers: inputs (what clients send) apart from outputs (what they get back)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from workflows.models import (
    Approval,
    StepRun,
    Workflow,
    WorkflowRun,
    WorkflowRunEvent,
    WorkflowTemplate,
    WorkflowVersion,
)

GRAPH_HELP = (
    'The graph: `{"nodes": [{"id", "type", "name", "config", "position", "retry", "timeout_seconds"}], '
    '"edges": [{"source", "target", "port"}]}`. See `GET /api/v1/workflows/nodes` for the node types.'
)

# ------------------------------------------------------------------ inputs


class WorkflowInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=500, allow_blank=True, required=False)
    graph = serializers.JSONField(
        required=False, help_text=GRAPH_HELP + " Saving one makes a new draft version."
    )
    note = serializers.CharField(
        max_length=200, allow_blank=True, required=False, help_text="Note for the new version."
    )


class WorkflowGraphInput(serializers.Serializer):
    graph = serializers.JSONField(required=False, help_text="Default: the latest version's graph.")


class WorkflowPublishInput(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, required=False, help_text="Default: the latest version.")


class WorkflowRollbackInput(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)


class WorkflowRunInput(serializers.Serializer):
    input = serializers.JSONField(
        required=False,
        default=dict,
        help_text="The run input (`input` in templates): an object, or a text (becomes `{text: ...}`).",
    )
    test = serializers.BooleanField(
        default=False, help_text="Test run: run the latest (draft) version instead of the published one."
    )

    def validate_input(self, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict | str):
            raise serializers.ValidationError("The input is an object or a text.")
        return value


class ApprovalDecisionInput(serializers.Serializer):
    approved = serializers.BooleanField(help_text="Approve (true) or reject (false).")
    comment = serializers.CharField(max_length=2000, allow_blank=True, required=False, default="")


# ----------------------------------------------------------------- outputs


class WorkflowOutput(serializers.ModelSerializer):
    status = serializers.CharField(help_text="draft, active or archived")
    published_version = serializers.IntegerField(
        source="published_version.number", allow_null=True, default=None
    )
    latest_version = serializers.SerializerMethodField()
    triggers = serializers.JSONField(help_text="The published version's triggers: kind, node and details.")
    created_by = serializers.EmailField(source="created_by.email", allow_null=True, default=None)

    class Meta:
        model = Workflow
        fields = [
            "id",
            "name",
            "description",
            "status",
            "published_version",
            "latest_version",
            "triggers",
            "created_by",
            "created_at",
            "updated_at",
        ]

    def get_latest_version(self, obj: Workflow) -> int | None:
        if hasattr(obj, "latest_number"):  # annotated by the API's queryset
            return obj.latest_number  # type: ignore[no-any-return]
        latest = obj.latest_version()
        return latest.number if latest else None


class WorkflowDetailOutput(WorkflowOutput):
    graph = serializers.SerializerMethodField(help_text="The latest version's graph.")

    class Meta(WorkflowOutput.Meta):
        fields = [*WorkflowOutput.Meta.fields, "graph"]

    def get_graph(self, obj: Workflow) -> dict[str, Any] | None:
        latest = obj.latest_version()
        return latest.graph if latest else None


class WorkflowVersionOutput(serializers.ModelSerializer):
    graph = serializers.JSONField()
    created_by = serializers.EmailField(source="created_by.email", allow_null=True, default=None)
    is_published = serializers.SerializerMethodField()

    class Meta:
        model = WorkflowVersion
        fields = ["number", "graph", "note", "created_by", "created_at", "is_published"]

    def get_is_published(self, obj: WorkflowVersion) -> bool:
        return bool(obj.workflow.published_version_id == obj.pk)


class WorkflowValidationOutput(serializers.Serializer):
    valid = serializers.BooleanField()
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        help_text='Messages by node id, and "graph" for the whole graph.',
    )


class WorkflowStepOutput(serializers.ModelSerializer):
    status = serializers.CharField(
        help_text="pending, running, waiting, succeeded, failed, cancelled or skipped"
    )
    input = serializers.JSONField(allow_null=True)
    output = serializers.JSONField(allow_null=True)
    port = serializers.CharField(help_text="The branch the step chose.")
    duration_ms = serializers.IntegerField(allow_null=True)
    tokens = serializers.SerializerMethodField()

    class Meta:
        model = StepRun
        fields = [
            "id",
            "node_id",
            "node_type",
            "iteration",
            "attempt",
            "status",
            "input",
            "output",
            "port",
            "error",
            "started_at",
            "finished_at",
            "duration_ms",
            "input_tokens",
            "output_tokens",
            "tokens",
            "cost",
        ]

    def get_tokens(self, obj: StepRun) -> int:
        return obj.input_tokens + obj.output_tokens


class WorkflowRunOutput(serializers.ModelSerializer):
    status = serializers.CharField(help_text="pending, running, waiting, succeeded, failed or cancelled")
    source = serializers.CharField(  # type: ignore[assignment]
        help_text="manual, api, schedule, webhook, integration, subworkflow or test"
    )
    workflow = serializers.IntegerField(source="workflow_id")
    version = serializers.IntegerField(source="version.number")
    input = serializers.JSONField()
    output = serializers.JSONField(allow_null=True)
    tokens = serializers.IntegerField(source="total_tokens")
    duration_ms = serializers.IntegerField(allow_null=True)

    class Meta:
        model = WorkflowRun
        fields = [
            "id",
            "workflow",
            "version",
            "status",
            "source",
            "input",
            "output",
            "error",
            "input_tokens",
            "output_tokens",
            "tokens",
            "cost",
            "created_at",
            "started_at",
            "completed_at",
            "duration_ms",
        ]


class WorkflowRunDetailOutput(WorkflowRunOutput):
    steps = WorkflowStepOutput(many=True, help_text="Every node execution, in the order they were created.")

    class Meta(WorkflowRunOutput.Meta):
        fields = [*WorkflowRunOutput.Meta.fields, "steps"]


class WorkflowRunEventOutput(serializers.ModelSerializer):
    type = serializers.CharField(
        help_text="run, step_started, step_succeeded, step_failed, step_waiting, step_retry, "
        "step_cancelled, log or done (the last one)"
    )
    step = serializers.IntegerField(source="step_id", allow_null=True)
    node = serializers.CharField(source="node_id", allow_blank=True)
    payload = serializers.JSONField()
    at = serializers.DateTimeField(source="created_at")

    class Meta:
        model = WorkflowRunEvent
        fields = ["seq", "type", "step", "node", "payload", "at"]


class WorkflowStepLogsOutput(serializers.Serializer):
    step_id = serializers.IntegerField()
    run_id = serializers.IntegerField()
    node_id = serializers.CharField()
    node_type = serializers.CharField()
    status = serializers.CharField()
    error = serializers.CharField(allow_blank=True)
    logs = serializers.JSONField(help_text="The step's log lines, oldest first.")


class ApprovalOutput(serializers.ModelSerializer):
    decision = serializers.CharField(help_text="pending, approved, rejected, expired or cancelled")
    run = serializers.IntegerField(source="run_id")
    workflow = serializers.IntegerField(source="run.workflow_id")
    node_id = serializers.CharField(source="step.node_id")
    assignees = serializers.SerializerMethodField()
    decided_by = serializers.EmailField(source="decided_by.email", allow_null=True, default=None)
    can_decide = serializers.SerializerMethodField()

    class Meta:
        model = Approval
        fields = [
            "id",
            "run",
            "workflow",
            "node_id",
            "title",
            "message",
            "assignees",
            "decision",
            "decided_by",
            "comment",
            "expires_at",
            "created_at",
            "decided_at",
            "can_decide",
        ]

    def get_assignees(self, obj: Approval) -> list[str]:
        return sorted(user.email for user in obj.assignees.all())

    def get_can_decide(self, obj: Approval) -> bool:
        """Whether the caller may decide it now (the view works that out: `decidable` in the context)."""
        return obj.is_pending and obj.pk in self.context.get("decidable", ())


class WorkflowNodeTypeOutput(serializers.Serializer):
    type = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    category = serializers.CharField()
    description = serializers.CharField()
    ports = serializers.ListField(child=serializers.CharField(), help_text="Fixed output ports.")
    dynamic_ports = serializers.CharField(
        allow_blank=True, help_text="Config key whose values are ports too (router labels, switch cases)."
    )
    required = serializers.ListField(child=serializers.CharField(), help_text="Required config keys.")  # type: ignore[assignment]
    defaults = serializers.DictField(help_text="Config defaults.")
    icon = serializers.CharField()


class NodeCategoryOutput(serializers.Serializer):
    id = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]


class WorkflowNodeCatalogOutput(serializers.Serializer):
    categories = NodeCategoryOutput(many=True)
    nodes = WorkflowNodeTypeOutput(many=True)


class WorkflowTemplateOutput(serializers.ModelSerializer):
    category = serializers.CharField(help_text="marketing, sales, hr, operations or customer_service")
    category_label = serializers.CharField(source="get_category_display")
    complexity = serializers.CharField(help_text="beginner, intermediate or advanced")
    node_count = serializers.SerializerMethodField()

    class Meta:
        model = WorkflowTemplate
        fields = [
            "id",
            "slug",
            "name",
            "category",
            "category_label",
            "description",
            "complexity",
            "rating",
            "installs",
            "node_count",
        ]

    def get_node_count(self, obj: WorkflowTemplate) -> int:
        nodes = (obj.graph or {}).get("nodes") if isinstance(obj.graph, dict) else None
        return len(nodes) if isinstance(nodes, list) else 0


class WorkflowTemplateDetailOutput(WorkflowTemplateOutput):
    graph = serializers.JSONField()

    class Meta(WorkflowTemplateOutput.Meta):
        fields = [*WorkflowTemplateOutput.Meta.fields, "graph"]


class WorkflowWebhookOutput(serializers.Serializer):
    path = serializers.CharField(help_text="POST here: `/hooks/workflows/<token>`.")
    url = serializers.CharField(help_text="The same, as an absolute URL.")
    enabled = serializers.BooleanField(help_text="The published version has a webhook trigger.")
    has_secret = serializers.BooleanField()
    secret = serializers.CharField(allow_null=True, help_text="The HMAC-SHA256 key (admins only).")
    signature_header = serializers.CharField()
    signature_format = serializers.CharField()

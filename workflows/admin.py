from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from workflows.models import (
    Approval,
    StepRun,
    Workflow,
    WorkflowRun,
    WorkflowRunEvent,
    WorkflowTemplate,
    WorkflowVersion,
)


class ReadOnlyMixin:
    """Run records are written by the engine only: staff read them."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class VersionInline(admin.TabularInline):
    model = WorkflowVersion
    extra = 0
    fields = readonly_fields = ("number", "note", "created_by", "created_at")
    can_delete = False
    show_change_link = True


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "status", "published_version", "updated_at"]
    list_filter = ["status"]
    search_fields = ["name", "organization__name"]
    raw_id_fields = ["organization", "published_version", "created_by", "template"]
    readonly_fields = ["webhook_token", "webhook_secret", "triggers"]
    inlines = [VersionInline]


@admin.register(WorkflowVersion)
class WorkflowVersionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["workflow", "number", "note", "created_by", "created_at"]
    search_fields = ["workflow__name"]
    raw_id_fields = ["organization", "workflow", "created_by"]


class StepInline(admin.TabularInline):
    model = StepRun
    extra = 0
    fields = readonly_fields = (
        "node_id",
        "node_type",
        "iteration",
        "attempt",
        "status",
        "port",
        "error",
        "started_at",
        "finished_at",
    )
    can_delete = False
    show_change_link = True


@admin.register(WorkflowRun)
class WorkflowRunAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "workflow",
        "organization",
        "status",
        "source",
        "created_at",
        "completed_at",
        "cost",
    ]
    list_filter = ["status", "source"]
    search_fields = ["workflow__name", "organization__name"]
    raw_id_fields = ["organization", "workflow", "version", "user", "parent_step"]
    inlines = [StepInline]


@admin.register(StepRun)
class StepRunAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["id", "run", "node_id", "node_type", "status", "attempt", "lease_expires_at", "wake_at"]
    list_filter = ["status", "node_type"]
    raw_id_fields = ["run"]


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["title", "organization", "decision", "decided_by", "expires_at", "created_at"]
    list_filter = ["decision"]
    raw_id_fields = ["organization", "step", "run", "decided_by", "assignees"]


@admin.register(WorkflowRunEvent)
class WorkflowRunEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["run", "seq", "type", "node_id", "created_at"]
    list_filter = ["type"]
    raw_id_fields = ["run", "step"]


@admin.register(WorkflowTemplate)
class WorkflowTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "category", "complexity", "rating", "installs", "is_published"]
    list_filter = ["category", "complexity", "is_published"]
    search_fields = ["name", "slug"]
    readonly_fields = ["installs"]

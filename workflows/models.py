"""Workflows: a versioned graph of nodes, and a durable engine that runs it one StepRun at a time.

- `Workflow` is the tenant-owned definition; `WorkflowVersion` an immutable, validated graph.
- `WorkflowRun` is one execution; `StepRun` one node execution (claimed with a conditional update).
- `Approval` is a human decision a step waits for; `WorkflowRunEvent` the numbered event log.
- `WorkflowTemplate` is a gallery entry that installs into an org as a new workflow.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.tenancy import TenantModel, TenantQuerySet


class Workflow(TenantModel):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        ARCHIVED = "archived", "Archived"

    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    published_version = models.ForeignKey(
        "WorkflowVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    triggers = models.JSONField(
        default=list, blank=True, help_text="The published version's triggers (kind, node, schedule)."
    )
    webhook_token = models.CharField(max_length=48, unique=True, editable=False)
    webhook_secret = models.TextField(blank=True, help_text="Encrypted HMAC secret for the webhook trigger.")
    template = models.ForeignKey(
        "WorkflowTemplate", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [models.Index(fields=["organization", "status"])]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.webhook_token:
            self.webhook_token = secrets.token_urlsafe(24)
        super().save(*args, **kwargs)

    def latest_version(self) -> WorkflowVersion | None:
        return self.versions.order_by("-number").first()


class WorkflowVersion(TenantModel):
    """Immutable once saved: an edit is a new version."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    graph = models.JSONField()
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["workflow", "number"], name="wf_version_unique")]

    def __str__(self) -> str:
        return f"{self.workflow_id} v{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError("A workflow version is immutable; save a new version instead.")
        super().save(*args, **kwargs)


class WorkflowRunQuerySet(TenantQuerySet):
    def active(self) -> WorkflowRunQuerySet:
        return self.filter(status__in=WorkflowRun.ACTIVE)


class WorkflowRun(TenantModel):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        WAITING = "waiting", "Waiting"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Source(models.TextChoices):
        MANUAL = "manual", "Manual"
        API = "api", "API"
        SCHEDULE = "schedule", "Schedule"
        WEBHOOK = "webhook", "Webhook"
        INTEGRATION = "integration", "Integration event"
        SUBWORKFLOW = "subworkflow", "Sub-workflow"
        TEST = "test", "Test run"

    ACTIVE = (Status.PENDING, Status.RUNNING, Status.WAITING)
    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="runs")
    version = models.ForeignKey(WorkflowVersion, on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.MANUAL)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    parent_step = models.ForeignKey(
        "StepRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="child_runs"
    )
    input = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True, help_text="vars, node outputs and loop state")
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    last_seq = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = WorkflowRunQuerySet.as_manager()  # type: ignore[misc, assignment]

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "workflow", "-created_at"])]

    def __str__(self) -> str:
        return f"workflow run {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.completed_at is None:
            return None
        return int((self.completed_at - self.started_at).total_seconds() * 1000)

    @property
    def group_name(self) -> str:
        return f"workflow_run.{self.pk}"

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class StepRun(models.Model):
    """One execution of one node. Claimed by a worker with a conditional update (pending -> running)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        WAITING = "waiting", "Waiting"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        SKIPPED = "skipped", "Skipped"

    ACTIVE = (Status.PENDING, Status.RUNNING, Status.WAITING)

    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="steps")
    node_id = models.CharField(max_length=64)
    node_type = models.CharField(max_length=24)
    from_node = models.CharField(max_length=64, blank=True, help_text="the node whose edge led here")
    iteration = models.PositiveIntegerField(default=0)
    attempt = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    port = models.CharField(max_length=64, blank=True, help_text="the branch the step chose")
    error = models.TextField(blank=True)
    logs = models.JSONField(default=list, blank=True)
    state = models.JSONField(default=dict, blank=True, help_text="waiting state: wake time, join arrivals")
    wake_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["run", "status"]),
            models.Index(
                fields=["lease_expires_at"],
                name="wf_step_lease",
                condition=models.Q(status="running"),
            ),
            models.Index(fields=["wake_at"], name="wf_step_wake", condition=models.Q(status="waiting")),
        ]

    def __str__(self) -> str:
        return f"step {self.node_id} of run {self.run_id} ({self.status})"

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return int((self.finished_at - self.started_at).total_seconds() * 1000)


class Approval(TenantModel):
    class Decision(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"
        CANCELLED = "cancelled", "Cancelled"

    step = models.OneToOneField(StepRun, on_delete=models.CASCADE, related_name="approval")
    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="approvals")
    title = models.CharField(max_length=200)
    message = models.TextField(blank=True)
    assignees = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    decision = models.CharField(max_length=10, choices=Decision.choices, default=Decision.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    comment = models.TextField(blank=True, max_length=2000)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "decision"])]

    def __str__(self) -> str:
        return f"approval {self.pk} ({self.decision})"

    @property
    def is_pending(self) -> bool:
        return self.decision == self.Decision.PENDING


class WorkflowRunEvent(models.Model):
    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=24)
    step = models.ForeignKey(StepRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    node_id = models.CharField(max_length=64, blank=True)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="wf_event_seq_unique")]

    def __str__(self) -> str:
        return f"{self.run_id}#{self.seq} {self.type}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "type": self.type,
            "step": self.step_id,
            "node": self.node_id,
            "payload": self.payload,
            "at": self.created_at.isoformat(),
        }


class WorkflowTemplate(models.Model):
    """A gallery entry (not tenant-owned): installing copies its graph into the org as a new workflow."""

    class Category(models.TextChoices):
        MARKETING = "marketing", "Marketing"
        SALES = "sales", "Sales"
        HR = "hr", "HR"
        OPERATIONS = "operations", "Operations"
        CUSTOMER_SERVICE = "customer_service", "Customer Service"

    class Complexity(models.TextChoices):
        BEGINNER = "beginner", "Beginner"
        INTERMEDIATE = "intermediate", "Intermediate"
        ADVANCED = "advanced", "Advanced"

    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=100)
    category = models.CharField(max_length=20, choices=Category.choices)
    description = models.TextField(max_length=2000)
    complexity = models.CharField(max_length=12, choices=Complexity.choices, default=Complexity.BEGINNER)
    rating = models.DecimalField(max_digits=2, decimal_places=1, default=0)
    installs = models.PositiveIntegerField(default=0)
    graph = models.JSONField(
        help_text="nodes and edges; agent nodes name an agent template by `agent_template`"
    )
    is_published = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["category", "name"]

    def __str__(self) -> str:
        return self.name

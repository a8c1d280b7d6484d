from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.tenancy import TenantModel, TenantQuerySet

AVATAR_SETS: dict[str, list[str]] = {
    "human": ["🧑‍💼", "👩‍💻", "🧑‍🔬", "👨‍🏫", "👩‍⚕️", "🧑‍🎨", "🕵️", "🧑‍🚀"],
    "animal": ["🦉", "🦊", "🐙", "🐝", "🦁", "🐼", "🐬", "🦄"],
    "fantasy": ["🧙", "🧝", "🧛", "🧚", "🐉", "🧞", "🧜", "🦹"],
    "iconic": ["🤖", "👾", "🚀", "⚡", "🧠", "💡", "🛠️", "📈"],
}
ALL_AVATARS = [a for group in AVATAR_SETS.values() for a in group]

# XP needed to reach each level (index = level - 1) and the skill each level unlocks.
LEVELS: list[tuple[int, str]] = [
    (0, "Rookie"),
    (100, "Focused: follows multi-step instructions"),
    (300, "Tool user: chains several tools in one task"),
    (600, "Researcher: cites sources reliably"),
    (1000, "Planner: breaks big tasks into steps"),
    (1500, "Mentor: reviews other agents' work"),
    (2100, "Expert: handles urgent work unsupervised"),
    (2800, "Legend"),
]
PRIORITY_XP = {"low": 10, "medium": 25, "high": 50, "urgent": 100}


class AgentQuerySet(TenantQuerySet):
    def active(self) -> AgentQuerySet:
        return self.filter(status=Agent.Status.ACTIVE)

    def not_archived(self) -> AgentQuerySet:
        return self.exclude(status=Agent.Status.ARCHIVED)

    def public(self) -> AgentQuerySet:
        return self.filter(visibility=Agent.Visibility.PUBLIC, status=Agent.Status.ACTIVE)


class Agent(TenantModel):
    class Visibility(models.TextChoices):
        PRIVATE = "private", "Private (only me)"
        ORG = "org", "Organization"
        PUBLIC = "public", "Public"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        ARCHIVED = "archived", "Archived"

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=120)
    description = models.CharField(max_length=500, blank=True)
    avatar = models.CharField(max_length=16, default="🤖")
    role = models.CharField(max_length=60, blank=True, help_text="e.g. marketing, research, support")
    category = models.CharField(max_length=60, blank=True)
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.ORG)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    level = models.PositiveSmallIntegerField(default=1)
    xp = models.PositiveIntegerField(default=0)
    published_version = models.ForeignKey(
        "agents.AgentVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)

    objects = AgentQuerySet.as_manager()  # type: ignore[misc, assignment]

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="uniq_agent_slug_per_org")
        ]
        indexes = [models.Index(fields=["organization", "status"])]

    def __str__(self) -> str:
        return self.name

    @property
    def is_archived(self) -> bool:
        return self.status == self.Status.ARCHIVED

    def latest_version(self) -> AgentVersion | None:
        return self.versions.order_by("-number").first()

    # ---- gamification: rules that belong to the agent alone
    @staticmethod
    def level_for_xp(xp: int) -> int:
        level = 1
        for i, (threshold, _) in enumerate(LEVELS):
            if xp >= threshold:
                level = i + 1
        return level

    @property
    def skills(self) -> list[str]:
        return [skill for _, skill in LEVELS[: self.level]]

    @property
    def next_level_xp(self) -> int | None:
        return LEVELS[self.level][0] if self.level < len(LEVELS) else None

    @property
    def level_progress(self) -> int:
        """Percent of the way from this level's threshold to the next."""
        nxt = self.next_level_xp
        if nxt is None:
            return 100
        base = LEVELS[self.level - 1][0]
        return int(100 * (self.xp - base) / max(1, nxt - base))


class AgentVersion(TenantModel):
    """An immutable, validated config. Saving an agent makes a new draft version; publishing points
    the agent at one. Rows are never updated after creation."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    config = models.JSONField()
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["agent", "number"], name="uniq_agent_version_number")]

    def __str__(self) -> str:
        return f"{self.agent_id} v{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise TypeError("Agent versions are immutable; create a new version instead")
        super().save(*args, **kwargs)


class ChatSession(TenantModel):
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="sessions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    title = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["organization", "agent", "-updated_at"])]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"


class Message(TenantModel):
    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"
        SYSTEM = "system", "System"

    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=10, choices=Role.choices)
    content = models.TextField(blank=True)
    structured = models.JSONField(null=True, blank=True)
    tool_calls = models.JSONField(default=list, blank=True)
    citations = models.JSONField(default=list, blank=True)
    feedback = models.SmallIntegerField(default=0, help_text="-1 thumbs down, 0 none, 1 thumbs up")
    run = models.ForeignKey(
        "agents.AgentRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"


class RunQuerySet(TenantQuerySet):
    def unfinished(self) -> RunQuerySet:
        return self.filter(status__in=[AgentRun.Status.QUEUED, AgentRun.Status.RUNNING])


class AgentRun(TenantModel):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        WAITING = "waiting", "Waiting for approval"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Source(models.TextChoices):
        CHAT = "chat", "Chat"
        API = "api", "API"
        TASK = "task", "Task"
        WORKFLOW = "workflow", "Workflow"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="runs")
    version = models.ForeignKey(AgentVersion, on_delete=models.PROTECT, related_name="runs")
    session = models.ForeignKey(
        ChatSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.CHAT)
    streamed = models.BooleanField(
        default=True,
        help_text="Its answer is relayed token by token. An API call without stream waits for the whole "
        "answer, so its model is asked for it in one piece (its events come when it is done).",
    )
    input = models.TextField()
    output = models.TextField(blank=True)
    output_json = models.JSONField(null=True, blank=True)
    model_used = models.CharField(max_length=160, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    trace = models.JSONField(default=list, blank=True)
    last_seq = models.PositiveIntegerField(default=0)
    paused_state = models.JSONField(
        null=True, blank=True, help_text="agno run state while waiting for approval"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = RunQuerySet.as_manager()  # type: ignore[misc, assignment]

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "agent", "-created_at"])]

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def group_name(self) -> str:
        return f"run.{self.pk}"


class RunEvent(models.Model):
    """One step of a run, in order. The database is the record; the socket only notifies."""

    class Type(models.TextChoices):
        STATUS = "status", "Status"
        DELTA = "delta", "Token delta"
        TOOL_CALL = "tool_call", "Tool call"
        TOOL_RESULT = "tool_result", "Tool result"
        HANDOFF = "handoff", "Handoff"
        GUARDRAIL = "guardrail", "Guardrail tripped"
        APPROVAL = "approval", "Approval needed"
        MODEL = "model", "Model call"
        ERROR = "error", "Error"
        DONE = "done", "Done"

    run = models.ForeignKey(AgentRun, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=12, choices=Type.choices)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="uniq_run_event_seq")]

    def __str__(self) -> str:
        return f"{self.run_id}#{self.seq} {self.type}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "type": self.type,
            "payload": self.payload,
            "at": self.created_at.isoformat(),
        }


class AgentMemory(TenantModel):
    """Long-term memory of one agent about one user. The user can read and edit it."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="memories")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    content = models.TextField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.content[:60]


class AgentContextEntry(TenantModel):
    """Key/value context given to the agent on every run (doc 001 §4.7)."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="context_entries")
    key = models.CharField(max_length=100)
    value = models.JSONField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["agent", "key"], name="uniq_agent_context_key")]

    def __str__(self) -> str:
        return self.key


class ProviderKey(TenantModel):
    """An organization's own key for a model provider (bring your own key). Encrypted at rest."""

    provider = models.CharField(max_length=40)
    label = models.CharField(max_length=100, blank=True)
    base_url = models.URLField(blank=True, max_length=500)
    encrypted_key = models.TextField()
    key_hint = models.CharField(max_length=20, help_text="masked, e.g. sk-…abcd")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["provider"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "provider"], name="uniq_provider_key_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.key_hint}"


class Task(TenantModel):
    class Priority(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"
        URGENT = "urgent", "Urgent"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(max_length=200)
    details = models.TextField(blank=True, max_length=20_000)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.MEDIUM)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    run = models.ForeignKey(AgentRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    xp_awarded = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title

    @property
    def xp_reward(self) -> int:
        return PRIORITY_XP[self.priority]

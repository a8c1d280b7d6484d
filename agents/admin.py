from django.contrib import admin

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


class VersionInline(admin.TabularInline):
    model = AgentVersion
    extra = 0
    fields = readonly_fields = ("number", "note", "created_by", "created_at")
    can_delete = False
    show_change_link = True


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["name", "avatar", "organization", "status", "visibility", "level", "xp", "updated_at"]
    list_filter = ["status", "visibility", "category"]
    search_fields = ["name", "slug", "organization__name"]
    raw_id_fields = ["organization", "published_version", "created_by"]
    inlines = [VersionInline]


@admin.register(AgentVersion)
class AgentVersionAdmin(admin.ModelAdmin):
    """Versions are immutable: staff can read them, not change them."""

    list_display = ["agent", "number", "note", "created_by", "created_at"]
    search_fields = ["agent__name"]
    raw_id_fields = ["organization", "agent", "created_by"]

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(ChatSession)
class ChatSessionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "agent", "user", "organization", "updated_at"]
    search_fields = ["title", "agent__name", "user__email"]
    raw_id_fields = ["organization", "agent", "user"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["session", "role", "short", "feedback", "created_at"]
    list_filter = ["role", "feedback"]
    search_fields = ["content"]
    raw_id_fields = ["organization", "session", "run"]

    @admin.display(description="content")
    def short(self, obj: Message) -> str:
        return obj.content[:80]


class EventInline(admin.TabularInline):
    model = RunEvent
    extra = 0
    fields = readonly_fields = ("seq", "type", "payload", "created_at")
    can_delete = False


@admin.register(AgentRun)
class AgentRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "agent",
        "status",
        "model_used",
        "input_tokens",
        "output_tokens",
        "cost",
        "latency_ms",
        "created_at",
    ]
    list_filter = ["status"]
    search_fields = ["agent__name", "input", "error"]
    raw_id_fields = ["organization", "agent", "version", "session", "user"]
    inlines = [EventInline]


@admin.register(RunEvent)
class RunEventAdmin(admin.ModelAdmin):
    list_display = ["run", "seq", "type", "created_at"]
    list_filter = ["type"]
    raw_id_fields = ["run"]


@admin.register(AgentMemory)
class AgentMemoryAdmin(admin.ModelAdmin):
    list_display = ["agent", "user", "content", "updated_at"]
    search_fields = ["content", "agent__name", "user__email"]
    raw_id_fields = ["organization", "agent", "user"]


@admin.register(AgentContextEntry)
class AgentContextEntryAdmin(admin.ModelAdmin):
    list_display = ["agent", "key", "updated_at"]
    search_fields = ["key", "agent__name"]
    raw_id_fields = ["organization", "agent"]


@admin.register(ProviderKey)
class ProviderKeyAdmin(admin.ModelAdmin):
    """The key itself is never shown, even to staff: only its masked hint."""

    list_display = ["organization", "provider", "label", "key_hint", "base_url", "created_at"]
    list_filter = ["provider"]
    search_fields = ["organization__name", "label"]
    exclude = ["encrypted_key"]
    readonly_fields = ["key_hint"]
    raw_id_fields = ["organization", "created_by"]


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["title", "agent", "priority", "status", "xp_awarded", "created_at", "completed_at"]
    list_filter = ["priority", "status"]
    search_fields = ["title", "agent__name"]
    raw_id_fields = ["organization", "agent", "run", "created_by"]

from django.contrib import admin

from community.models import Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["user", "level", "kind", "text", "created_at", "read_at"]
    list_filter = ["level", "kind"]
    search_fields = ["user__email", "text"]
    raw_id_fields = ["user", "organization"]

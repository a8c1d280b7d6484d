from django.contrib import admin

from integrations.models import Secret


@admin.register(Secret)
class SecretAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "hint", "updated_at"]
    search_fields = ["name", "organization__name"]
    readonly_fields = ["hint", "created_at", "updated_at"]
    exclude = ["encrypted_value"]
    raw_id_fields = ["organization", "created_by"]

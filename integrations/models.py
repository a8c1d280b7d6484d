from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.tenancy import TenantModel


class Secret(TenantModel):
    """A named credential of an organization (e.g. an API token an HTTP tool sends). Encrypted at rest;
    referenced from configs as {{secret:NAME}} so the value never sits in a config, a prompt or a log."""

    name = models.CharField(max_length=64)
    encrypted_value = models.TextField()
    hint = models.CharField(max_length=20, help_text="masked, e.g. sk-…abcd")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="uniq_secret_name_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint})"

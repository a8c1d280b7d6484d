"""Cost caps: the most one agent or one workflow may spend, per run and per calendar month.

A cap names exactly one agent or one workflow. Either limit may be empty (no cap of that kind).
The checks live in `billing.caps`; they run when a run reserves its credits.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.tenancy import TenantModel


class CostCap(TenantModel):
    agent = models.ForeignKey(
        "agents.Agent", null=True, blank=True, on_delete=models.CASCADE, related_name="cost_caps"
    )
    workflow = models.ForeignKey(
        "workflows.Workflow", null=True, blank=True, on_delete=models.CASCADE, related_name="cost_caps"
    )
    per_run = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, help_text="credits per run (empty = no cap)"
    )
    per_month = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="credits per calendar month (empty = no cap)",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "billing"
        constraints = [
            models.CheckConstraint(
                condition=Q(agent__isnull=False, workflow__isnull=True)
                | Q(agent__isnull=True, workflow__isnull=False),
                name="billing_costcap_one_target",
            ),
            models.CheckConstraint(
                condition=Q(per_run__isnull=True) | Q(per_run__gte=0), name="billing_costcap_per_run_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(per_month__isnull=True) | Q(per_month__gte=0),
                name="billing_costcap_per_month_gte_0",
            ),
            models.UniqueConstraint(
                fields=["agent"], condition=Q(agent__isnull=False), name="billing_costcap_one_per_agent"
            ),
            models.UniqueConstraint(
                fields=["workflow"],
                condition=Q(workflow__isnull=False),
                name="billing_costcap_one_per_workflow",
            ),
        ]

    def __str__(self) -> str:
        target = f"agent {self.agent_id}" if self.agent_id else f"workflow {self.workflow_id}"
        return f"{target}: {self.per_run or '-'} per run, {self.per_month or '-'} per month"

"""Billing: plans and their limits, credit packs, model prices, and the credit ledger.

- `Plan` and `CreditPack` are the catalog (admin-editable); `ModelPrice` the credits per 1K tokens.
- `BillingAccount` is one per organization: its plan, Stripe ids, renewal, caps and the cached
  `balance`, which a database check keeps at or above 0.
- `CreditTransaction` is the append-only ledger. Every entry carries an idempotency key unique per
  organization and the balance after it; the cached balance changes only in the same transaction,
  by a conditional update (`billing.ledger`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.tenancy import TenantModel

ZERO = Decimal("0")


class Plan(models.Model):
    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=60)
    description = models.CharField(max_length=300, blank=True)
    price_monthly_cents = models.PositiveIntegerField(default=0)
    price_yearly_cents = models.PositiveIntegerField(default=0)
    monthly_credits = models.DecimalField(max_digits=12, decimal_places=4, default=ZERO)
    signup_credits = models.DecimalField(max_digits=12, decimal_places=4, default=ZERO)
    signup_credits_expire_days = models.PositiveIntegerField(null=True, blank=True)
    pack_discount_percent = models.PositiveSmallIntegerField(default=0)
    limits = models.JSONField(
        default=dict,
        blank=True,
        help_text="agents, workflows, kb_storage_mb, integrations, api_keys, runs_per_month (null = unlimited)",
    )
    is_custom = models.BooleanField(default=False, help_text="Enterprise: priced by contract, not self-serve")
    is_public = models.BooleanField(default=True)
    stripe_price_monthly = models.CharField(max_length=100, blank=True)
    stripe_price_yearly = models.CharField(max_length=100, blank=True)
    sort = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort", "price_monthly_cents"]

    def __str__(self) -> str:
        return self.name

    def limit(self, resource: str) -> int | None:
        value = (self.limits or {}).get(resource)
        return None if value is None else int(value)


class CreditPack(models.Model):
    slug = models.SlugField(max_length=40, unique=True)
    credits = models.PositiveIntegerField()
    price_cents = models.PositiveIntegerField()
    stripe_price = models.CharField(max_length=100, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["credits"]

    def __str__(self) -> str:
        return f"{self.credits} credits"

    def price_for(self, plan: Plan | None) -> int:
        """The price in cents after the plan's pack discount."""
        discount = plan.pack_discount_percent if plan else 0
        return int(round(self.price_cents * (100 - discount) / 100))


class ModelPrice(models.Model):
    """Credits per 1K input and output tokens. `pattern` matches a model name: exact, or a prefix
    ending in `*` (`gpt-4*`). The row with pattern `*` is the default for unknown models."""

    pattern = models.CharField(max_length=120, unique=True)
    label = models.CharField(max_length=80, blank=True)
    input_per_1k = models.DecimalField(max_digits=10, decimal_places=4)
    output_per_1k = models.DecimalField(max_digits=10, decimal_places=4)

    class Meta:
        ordering = ["pattern"]

    def __str__(self) -> str:
        return f"{self.pattern}: {self.input_per_1k}/{self.output_per_1k}"


class BillingAccount(TenantModel):
    class Interval(models.TextChoices):
        MONTH = "month", "Monthly"
        YEAR = "year", "Yearly"

    organization = models.OneToOneField(  # type: ignore[assignment]
        "accounts.Organization", on_delete=models.CASCADE, related_name="billing"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="accounts")
    interval = models.CharField(max_length=5, choices=Interval.choices, default=Interval.MONTH)
    balance = models.DecimalField(max_digits=14, decimal_places=4, default=ZERO)
    stripe_customer_id = models.CharField(max_length=100, blank=True)
    stripe_subscription_id = models.CharField(max_length=100, blank=True)
    subscription_status = models.CharField(max_length=30, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    last_allocation_at = models.DateTimeField(null=True, blank=True)
    low_balance_threshold = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal("5"))
    low_balance_notified = models.BooleanField(default=False)
    monthly_budget = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="alert when a month's usage passes it",
    )
    budget_alerted_month = models.CharField(max_length=7, blank=True)
    last_stripe_event_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="billing_balance_not_negative")
        ]

    def __str__(self) -> str:
        return f"{self.organization_id}: {self.balance} credits ({self.plan_id})"


class CreditTransaction(TenantModel):
    """Append-only. Amount is signed: grants and releases add, usage and reservations take."""

    class Type(models.TextChoices):
        GRANT = "grant", "Grant"
        PURCHASE = "purchase", "Purchase"
        USAGE = "usage", "Usage"
        RESERVATION = "reservation", "Reservation"
        RELEASE = "release", "Release"
        REFUND = "refund", "Refund"
        EXPIRY = "expiry", "Expiry"
        ADJUSTMENT = "adjustment", "Adjustment"

    type = models.CharField(max_length=12, choices=Type.choices)
    amount = models.DecimalField(max_digits=14, decimal_places=4)
    balance_after = models.DecimalField(max_digits=14, decimal_places=4)
    idempotency_key = models.CharField(max_length=200)
    description = models.CharField(max_length=300, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    agent = models.ForeignKey(
        "agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    run = models.ForeignKey(
        "agents.AgentRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    workflow = models.ForeignKey(
        "workflows.Workflow", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    workflow_run = models.ForeignKey(
        "workflows.WorkflowRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    stripe_object_id = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=160, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="grants that lapse (free credits)")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "idempotency_key"], name="billing_tx_idempotent"),
        ]
        indexes = [
            models.Index(fields=["organization", "type", "-created_at"]),
            models.Index(fields=["organization", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.amount} → {self.balance_after}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError("Ledger entries are append-only; post a new entry instead.")
        super().save(*args, **kwargs)


from billing.models_caps import CostCap  # noqa: E402,F401

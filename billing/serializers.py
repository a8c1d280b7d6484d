"""Billing API serializers: inputs (what clients send) apart from outputs (what they get back).
Credit amounts are decimals with 4 places, sent as strings; prices are integer cents."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.limits import RESOURCES
from billing.models import BillingAccount, CreditPack, CreditTransaction, Plan


def credits_field(**kwargs: Any) -> serializers.DecimalField:
    """A credit amount: 4 decimal places, sent as a string."""
    return serializers.DecimalField(max_digits=14, decimal_places=4, **kwargs)


KINDS = ["pack", "subscription"]
INTERVALS = BillingAccount.Interval.values
GROUPS = ["day", "model", "agent", "user", "workflow"]

# ------------------------------------------------------------------ inputs


class PurchaseInput(serializers.Serializer):
    pack = serializers.SlugField(required=False, help_text="A pack slug from `GET /api/v1/credits/packs`.")
    credits = serializers.IntegerField(
        required=False, help_text="Or the number of credits: must be the size of one of the packs."
    )

    def validate_credits(self, value: int) -> int:
        if value <= 0:
            raise serializers.ValidationError("Must be a positive number of credits.", code="invalid_amount")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("pack") and attrs.get("credits") is None:
            raise serializers.ValidationError("Send a pack or a number of credits.", code="invalid_amount")
        if attrs.get("pack") and attrs.get("credits") is not None:
            raise serializers.ValidationError("Send a pack or a number of credits, not both.")
        return attrs


class CheckoutInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=KINDS)
    pack = serializers.SlugField(required=False, help_text="For kind=pack: the pack slug.")
    credits = serializers.IntegerField(required=False, help_text="For kind=pack: or its number of credits.")
    plan = serializers.SlugField(required=False, help_text="For kind=subscription: basic or pro.")
    interval = serializers.ChoiceField(choices=INTERVALS, default="month")

    def validate_credits(self, value: int) -> int:
        return PurchaseInput().validate_credits(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["kind"] == "pack" and not attrs.get("pack") and attrs.get("credits") is None:
            raise serializers.ValidationError(
                {"pack": ["Name a pack (or send credits)."]}, code="invalid_amount"
            )
        if attrs["kind"] == "subscription" and not attrs.get("plan"):
            raise serializers.ValidationError({"plan": ["Name a plan."]}, code="required")
        return attrs


class UpgradeInput(serializers.Serializer):
    plan = serializers.SlugField(
        help_text="The plan to move to: free, basic or pro (enterprise: contact us)."
    )
    interval = serializers.ChoiceField(choices=INTERVALS, default="month")


class LimitCheckInput(serializers.Serializer):
    resource = serializers.ChoiceField(choices=list(RESOURCES))
    adding = serializers.FloatField(
        min_value=0, default=1, help_text="How many would be created (MB for kb_storage_mb). Default 1."
    )


# ----------------------------------------------------------------- outputs


class PlanOutput(serializers.ModelSerializer):
    monthly_credits = credits_field()
    signup_credits = credits_field()
    is_current = serializers.SerializerMethodField()

    class Meta:
        model = Plan
        fields = [
            "slug",
            "name",
            "description",
            "price_monthly_cents",
            "price_yearly_cents",
            "monthly_credits",
            "signup_credits",
            "signup_credits_expire_days",
            "pack_discount_percent",
            "limits",
            "is_custom",
            "is_current",
        ]

    def get_is_current(self, plan: Plan) -> bool:
        return plan.pk == self.context.get("current_plan_id")


class PackOutput(serializers.ModelSerializer):
    price_for_you_cents = serializers.SerializerMethodField(help_text="After your plan's pack discount.")

    class Meta:
        model = CreditPack
        fields = ["slug", "credits", "price_cents", "price_for_you_cents"]

    def get_price_for_you_cents(self, pack: CreditPack) -> int:
        return pack.price_for(self.context.get("plan"))


class RedirectOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["checkout", "portal"])
    url = serializers.URLField(help_text="Send the buyer here: Stripe Checkout or the customer portal.")
    session_id = serializers.CharField()


class PurchaseOutput(RedirectOutput):
    pack = serializers.CharField()
    credits = serializers.IntegerField()
    price_cents = serializers.IntegerField()


class BalanceOutput(serializers.Serializer):
    balance = credits_field()
    plan = serializers.CharField()
    low_balance_threshold = credits_field()
    payments_configured = serializers.BooleanField()


class UserRef(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.EmailField()


class TransactionOutput(serializers.ModelSerializer):
    amount = credits_field()
    balance_after = credits_field()
    user = serializers.SerializerMethodField()

    class Meta:
        model = CreditTransaction
        fields = [
            "id",
            "type",
            "amount",
            "balance_after",
            "description",
            "user",
            "agent",
            "run",
            "workflow",
            "workflow_run",
            "model",
            "input_tokens",
            "output_tokens",
            "stripe_object_id",
            "expires_at",
            "created_at",
        ]

    @extend_schema_field(UserRef(allow_null=True))
    def get_user(self, entry: CreditTransaction) -> dict[str, Any] | None:
        if entry.user is None:
            return None
        return {"id": entry.user.pk, "name": entry.user.display_name, "email": entry.user.email}


class SubscriptionOutput(serializers.Serializer):
    plan = PlanOutput()
    interval = serializers.ChoiceField(choices=INTERVALS)
    status = serializers.CharField(help_text="Stripe's subscription status; empty without a subscription.")
    has_subscription = serializers.BooleanField()
    current_period_end = serializers.DateTimeField(allow_null=True)
    payments_configured = serializers.BooleanField()


class LimitRow(serializers.Serializer):
    resource = serializers.ChoiceField(choices=list(RESOURCES))
    label = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.label
    limit = serializers.IntegerField(allow_null=True, help_text="null: unlimited")
    used = serializers.FloatField()
    remaining = serializers.FloatField(allow_null=True)


class LimitsOutput(serializers.Serializer):
    plan = serializers.CharField()
    limits = LimitRow(many=True)
    upgrade_url = serializers.URLField()


class LimitCheckOutput(serializers.Serializer):
    resource = serializers.ChoiceField(choices=list(RESOURCES))
    allowed = serializers.BooleanField()
    limit = serializers.IntegerField(allow_null=True)
    used = serializers.FloatField()
    message = serializers.CharField(allow_blank=True)
    upgrade_url = serializers.URLField()


class ExpiringGrant(serializers.Serializer):
    amount = credits_field()
    expires_at = serializers.DateTimeField()
    description = serializers.CharField()


class CreditsOutput(serializers.Serializer):
    balance = credits_field()
    plan = serializers.CharField()
    plan_monthly_credits = credits_field()
    next_allocation_at = serializers.DateTimeField(
        allow_null=True, help_text="When the plan's credits are next granted (the renewal)."
    )
    expiring = ExpiringGrant(many=True, help_text="Grants that lapse, soonest first.")
    expiring_total = credits_field(help_text="At most the balance.")
    used_this_month = credits_field()
    payments_configured = serializers.BooleanField()


class BillingUsageRow(serializers.Serializer):
    key = serializers.CharField(help_text="The day (YYYY-MM-DD), model name, or agent, user or workflow id.")
    label = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.label
    credits = credits_field()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    entries = serializers.IntegerField()


class BillingUsageOutput(serializers.Serializer):
    start_date = serializers.DateField()
    end_date = serializers.DateField()
    group_by = serializers.ChoiceField(choices=GROUPS)
    total_credits = credits_field()
    rows = BillingUsageRow(many=True)

"""Forms of the billing pages and of the admin's credit grant."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.utils import timezone

from billing.models import CreditTransaction

DEFAULT_DAYS = 30
MAX_RANGE_DAYS = 366


def today() -> date:
    return timezone.localdate()


class DateRangeForm(forms.Form):
    """A date range, both ends included. Empty ends fall back to `default_days` up to today (or no
    bound at all when `default_days` is None)."""

    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    default_days: int | None = DEFAULT_DAYS

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        start, end = data.get("start"), data.get("end")
        if start and end and end < start:
            self.add_error("end", "The end date is before the start date.")
        return data

    def window(self) -> tuple[date | None, date | None]:
        """The range to use: the valid input, else the default."""
        data = self.cleaned_data if self.is_valid() else {}
        end = data.get("end")
        start = data.get("start")
        if self.default_days is not None:
            end = end or today()
            start = start or end - timedelta(days=self.default_days - 1)
        return start, end


class UsageRangeForm(DateRangeForm):
    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("start"), data.get("end") or today()
        if start and end and (end - start).days >= MAX_RANGE_DAYS:
            self.add_error("start", f"Pick at most {MAX_RANGE_DAYS} days.")
        return data


class TransactionFilterForm(DateRangeForm):
    """Filters of the transaction history and its CSV export. `user` is checked against the org by
    the view (another org's user is a 404, not an empty list)."""

    default_days = None
    type = forms.ChoiceField(required=False, choices=[("", "All types"), *CreditTransaction.Type.choices])
    user = forms.IntegerField(required=False, min_value=1)


class PurchaseForm(forms.Form):
    pack = forms.SlugField(max_length=40)


class PlanChangeForm(forms.Form):
    plan = forms.SlugField(max_length=40)
    interval = forms.ChoiceField(choices=[("month", "Monthly"), ("year", "Yearly")], required=False)


class AlertSettingsForm(forms.Form):
    low_balance_threshold = forms.DecimalField(
        min_value=Decimal(0),
        max_digits=12,
        decimal_places=2,
        label="Low-balance alert below",
        help_text="We notify the organization's admins when the balance drops under this many credits.",
    )
    monthly_budget = forms.DecimalField(
        required=False,
        min_value=Decimal(0),
        max_digits=12,
        decimal_places=2,
        label="Monthly budget",
        help_text="Alert when a month's usage passes it. Leave empty for no budget.",
    )


class CreditGrantForm(forms.Form):
    """Staff grant or adjust credits from the admin. The token makes a double submit harmless: it
    is the entry's idempotency key."""

    type = forms.ChoiceField(
        choices=[
            (CreditTransaction.Type.GRANT, "Grant (adds credits)"),
            (CreditTransaction.Type.ADJUSTMENT, "Adjustment (adds, or removes with a negative amount)"),
        ]
    )
    amount = forms.DecimalField(max_digits=12, decimal_places=4)
    reason = forms.CharField(max_length=250, widget=forms.TextInput(attrs={"size": 60}))
    token = forms.UUIDField(widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        amount, kind = data.get("amount"), data.get("type")
        if amount is not None:
            if amount == 0:
                self.add_error("amount", "The amount cannot be zero.")
            elif amount < 0 and kind == CreditTransaction.Type.GRANT:
                self.add_error("amount", "A grant adds credits: use an adjustment to remove some.")
        if "reason" in data and not data["reason"].strip():
            self.add_error("reason", "Say why: the reason is on the ledger entry.")
        return data

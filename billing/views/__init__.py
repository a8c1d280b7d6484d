"""Billing pages. Everything is the current organization's: viewers read, admins and owners pay."""

from billing.views.checkout import change_plan, portal, purchase
from billing.views.overview import alert_settings, index, plans
from billing.views.prompts import credits_required
from billing.views.transactions import history, history_csv
from billing.views.usage import usage_json

__all__ = [
    "alert_settings",
    "change_plan",
    "credits_required",
    "history",
    "history_csv",
    "index",
    "plans",
    "portal",
    "purchase",
    "usage_json",
]

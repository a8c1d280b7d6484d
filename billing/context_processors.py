"""The balance chip in the navigation: the current org's credits, read only when a template uses it."""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

logger = logging.getLogger(__name__)


def _nav(org: Any) -> dict[str, Any] | None:
    from billing.ledger import account_for

    try:
        account = account_for(org)
    except Exception:  # the navigation must render even if billing cannot
        logger.warning("no balance for org %s", getattr(org, "pk", None), exc_info=True)
        return None
    from billing.templatetags.billing_ui import credits

    return {
        "balance": account.balance,
        "display": credits(account.balance),
        "is_low": account.balance < account.low_balance_threshold,
        "plan": account.plan.name,
    }


def billing(request: HttpRequest) -> dict[str, Any]:
    org = getattr(request, "org", None)
    if org is None:
        return {"billing_nav": None}
    return {"billing_nav": SimpleLazyObject(lambda: _nav(org))}

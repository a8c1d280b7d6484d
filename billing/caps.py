"""Cost caps per agent and per workflow, and the budget and low-balance alerts.

Caps are checked when a run reserves its credits: a run whose estimate passes the per-run cap, or
that would take the month's spending of its agent or workflow past the monthly cap, is refused with a
`CostCapReached` (a `ServiceError`, 402 `cost_cap`). An agent's month counts its usage plus the
reservations of runs still going, so two runs started together cannot both slip under the cap.

Alerts (`alerts_check`, run by the `check_alerts` task after every debit) tell an organization's
owners and admins, in the app and by email, once per threshold: when the balance falls below the
low-balance threshold (cleared again by a top-up) and when a month's usage passes the budget.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection
from django.db.models import Exists, OuterRef, Sum, Value
from django.db.models.functions import Concat
from django.urls import reverse

from accounts.models import Membership, Role
from accounts.services import ServiceError
from billing.ledger import ZERO, q
from billing.limits import month_start
from billing.models import BillingAccount, CreditTransaction
from billing.models_caps import CostCap
from config.prepared import Prepared

logger = logging.getLogger(__name__)
T = CreditTransaction.Type
__all__ = [
    "CostCap",
    "CostCapReached",
    "alerts_check",
    "cap_set",
    "check_agent_run",
    "check_workflow",
    "check_workflow_start",
    "has_cap",
]


class CostCapReached(ServiceError):
    def __init__(self, message: str):
        super().__init__(message, code="cost_cap", status=402)


def _credits(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01')):,}".rstrip("0").rstrip(".")


# ------------------------------------------------------------ services


def cap_set(
    *,
    org: Any,
    agent: Any = None,
    workflow: Any = None,
    per_run: Any = None,
    per_month: Any = None,
    by: Any = None,
) -> CostCap | None:
    """Set (or, with both limits empty, remove) the cost cap of one agent or one workflow."""
    org_id = org if isinstance(org, int) else org.pk
    target = agent if agent is not None else workflow
    if (agent is None) == (workflow is None):
        raise ServiceError("A cost cap is for one agent or one workflow.", code="invalid")
    if target.organization_id != org_id:
        raise ServiceError("Not found.", code="not_found", status=404)
    limits: dict[str, Decimal | None] = {}
    for name, value in (("per_run", per_run), ("per_month", per_month)):
        if value in (None, ""):
            limits[name] = None
            continue
        try:
            amount = q(value)
        except (ArithmeticError, TypeError, ValueError):
            raise ServiceError(f"The {name.replace('_', ' ')} cap is not a number.", code="invalid")
        if amount < 0:
            raise ServiceError("A cost cap cannot be negative.", code="invalid")
        limits[name] = amount
    lookup = {"agent": agent} if agent is not None else {"workflow": workflow}
    if limits["per_run"] is None and limits["per_month"] is None:
        CostCap.objects.for_org(org_id).filter(**lookup).delete()
        return None
    cap, _ = CostCap.objects.update_or_create(
        organization_id=org_id, **lookup, defaults={**limits, "created_by": by}
    )
    return cap


# -------------------------------------------------------------- spending


def _usage(entries: Any) -> Decimal:
    total = entries.filter(type=T.USAGE).aggregate(s=Sum("amount"))["s"]
    return -q(total or 0)


def agent_month_spend(org_id: int, agent_id: int) -> Decimal:
    """This month's usage of an agent plus what its unfinished runs hold in reservations."""
    month = CreditTransaction.objects.filter(
        organization_id=org_id, agent_id=agent_id, created_at__gte=month_start()
    )
    released = CreditTransaction.objects.filter(
        organization_id=org_id, idempotency_key=Concat(OuterRef("idempotency_key"), Value(":release"))
    )
    held = (
        month.filter(type=T.RESERVATION)
        .annotate(released=Exists(released))
        .filter(released=False)
        .aggregate(s=Sum("amount"))["s"]
    )
    return _usage(month) - q(held or 0)


def workflow_month_spend(org_id: int, workflow_id: int) -> Decimal:
    return _usage(
        CreditTransaction.objects.filter(
            organization_id=org_id, workflow_id=workflow_id, created_at__gte=month_start()
        )
    )


def workflow_run_spend(org_id: int, workflow_run_id: int) -> Decimal:
    return _usage(CreditTransaction.objects.filter(organization_id=org_id, workflow_run_id=workflow_run_id))


def _passes(spent: Decimal, estimate: Decimal, cap: Decimal) -> bool:
    # An estimate of 0 (a step whose cost is not known yet) still needs something left under the cap.
    return spent + estimate > cap or (estimate == 0 and spent >= cap)


# ---------------------------------------------------------------- checks


# Looked up before every agent run: compiled once.
_AGENT_CAP = Prepared(
    lambda org_id, agent_id: CostCap.objects.filter(organization_id=org_id, agent_id=agent_id).select_related(
        "agent"
    ),
    int,
    int,
)


def check_agent_run(org_id: int, agent_id: int, estimate: Any) -> None:
    """Refuse a run of the agent that its cost cap does not allow. Call before reserving."""
    cap = _AGENT_CAP.first(org_id, agent_id)
    if cap is None:
        return
    estimate = q(estimate)
    name = cap.agent.name if cap.agent else f"Agent {agent_id}"
    if cap.per_run is not None and estimate > cap.per_run:
        raise CostCapReached(
            f"{name} is capped at {_credits(cap.per_run)} credits per run and this run is estimated at "
            f"{_credits(estimate)}. Raise the agent's cost cap or lower its maximum answer length."
        )
    if cap.per_month is not None:
        if connection.in_atomic_block:
            # Runs of a capped agent take the account's row lock (their reservation would take it a
            # moment later anyway), so two runs started together see each other's reservation.
            BillingAccount.objects.select_for_update().filter(organization_id=org_id).values_list(
                "pk"
            ).first()
        spent = agent_month_spend(org_id, agent_id)
        if _passes(spent, estimate, cap.per_month):
            raise CostCapReached(
                f"{name} is capped at {_credits(cap.per_month)} credits a month and has used "
                f"{_credits(spent)}; this run (about {_credits(estimate)}) would pass it. Raise the "
                "agent's cost cap or wait until next month."
            )


def check_workflow(
    org_id: int, workflow_id: int, estimate: Any, *, workflow_run_id: int | None = None
) -> None:
    """Refuse a workflow run (or, with `workflow_run_id`, its next step) that its cost cap does not
    allow. `estimate` is the cost about to be spent (0 when it is not known)."""
    cap = (
        CostCap.objects.filter(organization_id=org_id, workflow_id=workflow_id)
        .select_related("workflow")
        .first()
    )
    if cap is None:
        return
    estimate = q(estimate)
    name = cap.workflow.name if cap.workflow else f"Workflow {workflow_id}"
    if cap.per_run is not None:
        if workflow_run_id is None:  # starting: nothing spent yet
            spent, over = ZERO, estimate > cap.per_run
        else:
            spent = workflow_run_spend(org_id, workflow_run_id)
            over = _passes(spent, estimate, cap.per_run)
        if over:
            raise CostCapReached(
                f"{name} is capped at {_credits(cap.per_run)} credits per run; this run has used "
                f"{_credits(spent)} and needs about {_credits(estimate)} more. Raise the workflow's "
                "cost cap to let it go further."
            )
    if cap.per_month is not None:
        spent = workflow_month_spend(org_id, workflow_id)
        if _passes(spent, estimate, cap.per_month):
            raise CostCapReached(
                f"{name} is capped at {_credits(cap.per_month)} credits a month and has used "
                f"{_credits(spent)}. Raise the workflow's cost cap or wait until next month."
            )


# Looked up before every workflow run (a webhook may bring hundreds a second): compiled once.
_WORKFLOW_CAP = Prepared(
    lambda org_id, workflow_id: CostCap.objects.filter(organization_id=org_id, workflow_id=workflow_id),
    int,
    int,
)


def check_workflow_start(*, workflow: Any, version: Any, capped: bool | None = None) -> None:
    """Before a workflow run starts: its cap against one pass through its agent steps (the estimate
    the page shows). Nothing is computed for a workflow without a cap. `capped`: whether the workflow
    has a cap, when the caller read it with the workflow (`has_cap()`); else it is read here."""
    if capped is False:
        return
    if capped is None and _WORKFLOW_CAP.first(workflow.organization_id, workflow.pk) is None:
        return
    from billing.estimates import workflow_estimate

    estimate = workflow_estimate(org_id=workflow.organization_id, graph=version.graph).credits
    check_workflow(workflow.organization_id, workflow.pk, estimate)


def has_cap(**target: Any) -> Exists:
    """An annotation: whether the organization has a cost cap on the target (`agent_id=…` or
    `workflow_id=…`), for a queryset of a model with an `organization_id`."""
    return Exists(CostCap.objects.filter(organization_id=OuterRef("organization_id"), **target))


# ---------------------------------------------------------------- alerts


def _recipients(org_id: int) -> list[Any]:
    members = Membership.objects.filter(
        organization_id=org_id, role__in=[Role.OWNER, Role.ADMIN], user__is_active=True
    ).select_related("user")
    return [m.user for m in members]


def _alert(org_id: int, *, kind: str, subject: str, text: str) -> None:
    from community.models import Notification
    from community.services import notify

    url = reverse("billing_index")
    users = _recipients(org_id)
    for user in users:
        notify(
            user_id=user.pk,
            organization_id=org_id,
            text=text,
            url=url,
            level=Notification.Level.WARNING,
            kind=kind,
        )
    base = settings.SITE_URL.rstrip("/")
    for user in users:
        if not user.email:
            continue
        try:
            send_mail(subject, f"{text}\n\nManage credits: {base}{url}\n", None, [user.email])
        except Exception:  # a mail server that is down must not lose the in-app alert
            logger.warning(
                "could not email the %s alert of org %s to %s", kind, org_id, user.pk, exc_info=True
            )


def alerts_check(*, org_id: int) -> list[str]:
    """Send the low-balance and budget alerts that are due, each once. Returns the kinds sent."""
    account = BillingAccount.objects.filter(organization_id=org_id).select_related("organization").first()
    if account is None:
        return []
    sent = []
    org_name = account.organization.name
    # The conditional updates make each alert go once even when two debits race here.
    if (
        account.balance < account.low_balance_threshold
        and not account.low_balance_notified
        and BillingAccount.objects.filter(pk=account.pk, low_balance_notified=False).update(
            low_balance_notified=True
        )
    ):
        left = _credits(account.balance)
        _alert(
            org_id,
            kind="billing.low_balance",
            subject=f"{org_name}: low credit balance",
            text=f"Low balance: {left} credits left in {org_name}. Add credits to keep agents running.",
        )
        sent.append("low_balance")
    if account.monthly_budget is not None:
        start = month_start()
        this_month = start.strftime("%Y-%m")
        if account.budget_alerted_month != this_month:
            spent = _usage(CreditTransaction.objects.filter(organization_id=org_id, created_at__gte=start))
            if spent > account.monthly_budget and (
                BillingAccount.objects.filter(pk=account.pk)
                .exclude(budget_alerted_month=this_month)
                .update(budget_alerted_month=this_month)
            ):
                _alert(
                    org_id,
                    kind="billing.budget",
                    subject=f"{org_name}: monthly budget passed",
                    text=f"Budget passed: {org_name} has used {_credits(spent)} credits this month, over its "
                    f"budget of {_credits(account.monthly_budget)}.",
                )
                sent.append("budget")
    return sent

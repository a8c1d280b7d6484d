"""Buying credits and changing the plan: admins and owners are sent to Stripe Checkout (or the
customer portal). The Stripe side is `billing.payments`; without Stripe keys nothing is sent and the
page says that payments are not configured."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.decorators import org_role_required
from accounts.models import Role
from accounts.services import ServiceError
from accounts.types import AuthedHttpRequest
from billing.forms import PlanChangeForm, PurchaseForm
from billing.ledger import account_for
from billing.models import CreditPack, Plan
from billing.views import overview
from billing.views.common import NOT_CONFIGURED, payments_configured, payments_module

logger = logging.getLogger(__name__)


def _to_stripe(request: AuthedHttpRequest, back: str, start: Callable[[Any], Any]) -> HttpResponse:
    """Ask `billing.payments` for a Stripe page (`start(payments)`) and send the browser there."""
    module = payments_module()
    if not payments_configured() or module is None:
        messages.error(request, f"{NOT_CONFIGURED}: nothing was charged. Ask an administrator for credits.")
        return redirect(back)
    try:
        target = start(module)
    except ServiceError as exc:
        messages.error(request, str(exc))
        return redirect(back)
    url = getattr(target, "url", None) if not isinstance(target, str) else target
    if not url:
        logger.error("org %s: billing.payments answered without a URL", request.org.pk)
        messages.error(request, "Stripe did not answer with a page to go to. Nothing was charged.")
        return redirect(back)
    return HttpResponseRedirect(url, status=303)


@org_role_required(Role.ADMIN)
@require_POST
def purchase(request: AuthedHttpRequest) -> HttpResponse:
    form = PurchaseForm(request.POST)
    if (
        not form.is_valid()
        or not CreditPack.objects.filter(slug=form.cleaned_data["pack"], is_active=True).exists()
    ):
        messages.error(request, "Pick one of the credit packs.")
        return overview.index_page(request, status=400)
    slug = form.cleaned_data["pack"]
    return _to_stripe(
        request,
        reverse("billing_index") + "#buy",
        lambda payments: payments.create_checkout_session(
            org=request.org, by=request.user, kind=payments.PACK, pack_slug=slug
        ),
    )


@org_role_required(Role.ADMIN)
@require_POST
def change_plan(request: AuthedHttpRequest) -> HttpResponse:
    form = PlanChangeForm(request.POST)
    plan = Plan.objects.filter(slug=form.data.get("plan", ""), is_public=True).first()
    if not form.is_valid() or plan is None:
        messages.error(request, "That plan does not exist.")
        return overview.plans_page(request, status=400)
    if plan.is_custom:
        messages.info(request, f"{plan.name} is arranged with our team: use the “Contact us” button.")
        return redirect("billing_plans")
    interval = form.cleaned_data["interval"] or "month"
    return _to_stripe(
        request,
        reverse("billing_plans"),
        lambda payments: payments.subscription_change(
            org=request.org, by=request.user, plan_slug=plan.slug, interval=interval
        ),
    )


@org_role_required(Role.ADMIN)
@require_POST
def portal(request: AuthedHttpRequest) -> HttpResponse:
    """Stripe's customer portal: invoices, payment method, cancelling the subscription."""
    if not account_for(request.org).stripe_customer_id:
        messages.info(request, "There is no Stripe customer for this organization yet: choose a plan first.")
        return redirect("billing_plans")
    return _to_stripe(
        request,
        reverse("billing_plans"),
        lambda payments: payments.create_portal_session(org=request.org, by=request.user),
    )

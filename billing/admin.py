"""Billing in the admin: the catalog (plans, packs, model prices) is editable; accounts are, except
their balance, which only the ledger moves; ledger entries are read-only. Staff grant or adjust
credits with a reason, through `billing.ledger.post` like everything else."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from accounts.services import audit_log_record
from billing import ledger, pricing
from billing.forms import CreditGrantForm
from billing.models import BillingAccount, CreditPack, CreditTransaction, ModelPrice, Plan
from billing.models_caps import CostCap


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "price_monthly_cents",
        "price_yearly_cents",
        "monthly_credits",
        "pack_discount_percent",
        "is_custom",
        "is_public",
        "sort",
    ]
    list_editable = ["sort"]
    prepopulated_fields = {"slug": ("name",)}

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # accounts point at plans (PROTECT); hide a plan with is_public instead


@admin.register(CreditPack)
class CreditPackAdmin(admin.ModelAdmin):
    list_display = ["slug", "credits", "price_cents", "stripe_price", "is_active"]
    list_editable = ["is_active"]


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = ["pattern", "label", "input_per_1k", "output_per_1k"]
    list_editable = ["input_per_1k", "output_per_1k"]
    search_fields = ["pattern", "label"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        pricing.clear_cache()  # this process prices with the new row at once; others within 30 s

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        super().delete_model(request, obj)
        pricing.clear_cache()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        super().delete_queryset(request, queryset)
        pricing.clear_cache()


@admin.register(BillingAccount)
class BillingAccountAdmin(admin.ModelAdmin):
    list_display = [
        "organization",
        "plan",
        "balance",
        "subscription_status",
        "current_period_end",
        "updated_at",
    ]
    list_filter = ["plan", "subscription_status"]
    list_select_related = ["organization", "plan"]
    search_fields = ["organization__name", "organization__slug", "stripe_customer_id"]
    raw_id_fields = ["organization"]
    readonly_fields = [
        "organization",
        "balance",
        "grant_link",
        "stripe_customer_id",
        "stripe_subscription_id",
        "subscription_status",
        "last_allocation_at",
        "low_balance_notified",
        "budget_alerted_month",
        "last_stripe_event_at",
        "updated_at",
    ]
    fields = [
        "organization",
        "balance",
        "grant_link",
        "plan",
        "interval",
        "current_period_end",
        "low_balance_threshold",
        "monthly_budget",
        "stripe_customer_id",
        "stripe_subscription_id",
        "subscription_status",
        "last_allocation_at",
        "low_balance_notified",
        "budget_alerted_month",
        "last_stripe_event_at",
        "updated_at",
    ]
    actions = ["grant_credits"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # accounts open by themselves with the organization (and its sign-up credits)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # it would take the ledger with it

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # Never write the balance back from a form: only the ledger moves it (and a run may have
        # moved it since the page was opened). Save just the fields that changed here.
        fields = [f for f in form.changed_data if f in self.get_fields(request, obj) and f != "balance"]
        if change:
            if fields:
                obj.save(update_fields=[*fields, "updated_at"])
        else:  # pragma: no cover - adding is disabled
            super().save_model(request, obj, form, change)

    @admin.display(description="Credits")
    def grant_link(self, obj: BillingAccount) -> str:
        if obj.pk is None:
            return "—"
        url = reverse("admin:billing_billingaccount_grant") + f"?ids={obj.pk}"
        entries = (
            reverse("admin:billing_credittransaction_changelist")
            + f"?organization__id__exact={obj.organization_id}"
        )
        return format_html(
            '<a class="button" href="{}">Grant or adjust credits</a> &nbsp; <a href="{}">Ledger entries</a>',
            url,
            entries,
        )

    @admin.action(description="Grant or adjust credits of the selected accounts")
    def grant_credits(self, request: HttpRequest, queryset: QuerySet[BillingAccount]) -> HttpResponse:
        ids = ",".join(str(pk) for pk in queryset.values_list("pk", flat=True))
        return HttpResponseRedirect(reverse("admin:billing_billingaccount_grant") + f"?ids={ids}")

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "grant/",
                self.admin_site.admin_view(self.grant_view),
                name="billing_billingaccount_grant",
            )
        ]
        return own + super().get_urls()

    def grant_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        source = request.POST if request.method == "POST" else request.GET
        ids = [int(x) for x in str(source.get("ids", "")).split(",") if x.strip().isdigit()]
        accounts = list(BillingAccount.objects.filter(pk__in=ids).select_related("organization", "plan"))
        changelist = reverse("admin:billing_billingaccount_changelist")
        if not accounts:
            self.message_user(request, "Choose at least one billing account.", messages.WARNING)
            return HttpResponseRedirect(changelist)
        if request.method == "POST":
            form = CreditGrantForm(request.POST)
            if form.is_valid():
                done, refused = self._post_grants(request, accounts, form.cleaned_data)
                for account, exc in refused:
                    self.message_user(request, f"{account.organization}: {exc}", messages.ERROR)
                if done:
                    self.message_user(
                        request,
                        f"{form.cleaned_data['amount']:+} credits posted to {done} account(s).",
                        messages.SUCCESS,
                    )
                if len(accounts) == 1:
                    return HttpResponseRedirect(
                        reverse("admin:billing_billingaccount_change", args=[accounts[0].pk])
                    )
                return HttpResponseRedirect(changelist)
        else:
            form = CreditGrantForm(initial={"token": uuid.uuid4(), "type": CreditTransaction.Type.GRANT})
        context = {
            **self.admin_site.each_context(request),
            "title": "Grant or adjust credits",
            "opts": self.model._meta,
            "form": form,
            "accounts": accounts,
            "ids": ",".join(str(a.pk) for a in accounts),
        }
        return TemplateResponse(request, "billing/admin_grant.html", context)

    def _post_grants(
        self, request: HttpRequest, accounts: list[BillingAccount], data: dict[str, Any]
    ) -> tuple[int, list[tuple[BillingAccount, Exception]]]:
        amount: Decimal = data["amount"]
        reason = data["reason"].strip()
        done = 0
        refused: list[tuple[BillingAccount, Exception]] = []
        key = f"admin:{data['token']}"
        for account in accounts:
            if (
                CreditTransaction.objects.for_org(account.organization_id)
                .filter(idempotency_key=key)
                .exists()
            ):
                continue  # the same form sent twice: it was posted the first time
            try:
                ledger.post(
                    org=account.organization_id,
                    type=data["type"],
                    amount=amount,
                    key=key,
                    description=reason,
                    created_by=request.user,
                )
            except ledger.InsufficientCredits as exc:
                refused.append((account, exc))
                continue
            audit_log_record(
                action="billing.credits_granted",
                actor=request.user,  # type: ignore[arg-type]
                organization=account.organization,
                target=account,
                request=request,
                type=data["type"],
                amount=str(amount),
                reason=reason,
            )
            done += 1
        return done, refused


@admin.register(CreditTransaction)
class CreditTransactionAdmin(admin.ModelAdmin):
    """The ledger, read-only: entries are never changed or deleted, only followed by new ones."""

    list_display = [
        "created_at",
        "organization",
        "type",
        "amount",
        "balance_after",
        "description",
        "user",
        "model",
    ]
    list_filter = ["type", "created_at"]
    list_select_related = ["organization", "user"]
    search_fields = ["organization__name", "idempotency_key", "description", "stripe_object_id", "model"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CostCap)
class CostCapAdmin(admin.ModelAdmin):
    list_display = ["organization", "agent", "workflow", "per_run", "per_month", "updated_at"]
    list_select_related = ["organization", "agent", "workflow"]
    raw_id_fields = ["organization", "agent", "workflow", "created_by"]
    search_fields = ["organization__name", "agent__name", "workflow__name"]

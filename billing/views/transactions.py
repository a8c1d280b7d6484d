"""The transaction history: filters (type, dates, person), pages, and the same list as a streamed CSV."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from accounts.decorators import org_role_required
from accounts.types import AuthedHttpRequest
from billing.forms import TransactionFilterForm
from billing.ledger import account_for
from billing.models import BillingAccount, CreditTransaction
from billing.views.common import day_bounds, org_users, querystring

PAGE_SIZE = 25
CSV_COLUMNS = [
    "created_at",
    "type",
    "amount",
    "balance_after",
    "description",
    "user",
    "agent",
    "workflow",
    "run_id",
    "workflow_run_id",
    "model",
    "input_tokens",
    "output_tokens",
    "stripe_object_id",
    "idempotency_key",
]


def filtered(request: AuthedHttpRequest, account: BillingAccount) -> tuple[Any, TransactionFilterForm, dict]:
    """The org's entries under the request's filters. A person outside the org is a 404."""
    form = TransactionFilterForm(request.GET)
    entries = CreditTransaction.objects.for_org(account.organization_id).select_related(
        "user", "agent", "workflow"
    )
    params: dict[str, Any] = {}
    if not form.is_valid():
        if "user" in form.errors:
            raise Http404("No such person in this organization.")
        return entries, form, params
    data = form.cleaned_data
    if data["user"]:
        if not org_users(account).filter(pk=data["user"]).exists():
            raise Http404("No such person in this organization.")
        entries = entries.filter(user_id=data["user"])
    if data["type"]:
        entries = entries.filter(type=data["type"])
    start, end = form.window()
    entries = entries.filter(**day_bounds(start, end))
    params = {"type": data["type"], "user": data["user"], "start": start, "end": end}
    return entries, form, params


@org_role_required()
def history(request: AuthedHttpRequest) -> TemplateResponse:
    account = account_for(request.org)
    entries, form, params = filtered(request, account)
    page = Paginator(entries.order_by("-created_at", "-id"), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "account": account,
        "form": form,
        "page": page,
        "types": CreditTransaction.Type.choices,
        "people": org_users(account),
        "filters": params,
        "query": querystring(params),
        "filtered": any(v not in (None, "") for v in params.values()),
    }
    template = "billing/transactions.html"
    if request.htmx and not request.htmx.boosted:
        template += "#history"
    return TemplateResponse(request, template, context)


class _Echo:
    """csv.writer writes into this and gets the line back, so rows can stream one by one."""

    def write(self, value: str) -> str:
        return value


def _safe(text: str) -> str:
    # A cell starting with =, +, - or @ is a formula to a spreadsheet: keep descriptions text.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _rows(entries: Any) -> Iterator[list[Any]]:
    yield CSV_COLUMNS
    for e in entries.iterator(chunk_size=500):
        yield [
            e.created_at.isoformat(),
            e.type,
            e.amount,
            e.balance_after,
            _safe(e.description),
            _safe(e.user.email) if e.user else "",
            _safe(e.agent.name) if e.agent else "",
            _safe(e.workflow.name) if e.workflow else "",
            e.run_id or "",
            e.workflow_run_id or "",
            _safe(e.model),
            e.input_tokens,
            e.output_tokens,
            e.stripe_object_id,
            _safe(e.idempotency_key),
        ]


@org_role_required()  # type: ignore[arg-type]  # a streamed response is not an HttpResponse subclass
def history_csv(request: AuthedHttpRequest) -> StreamingHttpResponse | HttpResponse:
    account = account_for(request.org)
    entries, form, _params = filtered(request, account)
    if not form.is_valid():  # a file of everything is not what was asked for
        errors = "; ".join(str(e) for errs in form.errors.values() for e in errs)
        return HttpResponseBadRequest(f"Check the filters: {errors}", content_type="text/plain")
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in _rows(entries.order_by("-created_at", "-id"))),
        content_type="text/csv; charset=utf-8",
    )
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="credits-{request.org.slug}-{stamp}.csv"'
    return response

"""A fake Stripe API at the HTTP boundary, and signed webhook deliveries.

stripe-python (15.x) talks to api.stripe.com through `requests`, so `responses` stands in for Stripe:
customers, Checkout and portal sessions are created in a small in-memory store, and every object is
served back by id, which is what dj-stripe does when it re-fetches an event's object. An id the store
does not hold answers 404 `resource_missing`, as Stripe would.

Webhook bodies are signed with stripe-python's own `WebhookSignature` scheme and posted to the real
endpoint, so dj-stripe verifies them exactly as it would in production.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from typing import Any
from urllib.parse import parse_qsl, urlparse

import pytest
import responses
import stripe

SECRET_KEY = "sk_test_" + "Fake0Stripe0Secret0Key00000"
PUBLISHABLE_KEY = "pk_test_" + "Fake0Stripe0Public0Key00000"
WEBHOOK_SECRET = "whsec_test_fake_000000000000000"
API = "https://api.stripe.com"
WEBHOOK_PATH = "/api/v1/payments/webhook"
_ids = itertools.count(1)

# REST collection -> the object type it holds (for 404 messages and the fake's create handlers)
COLLECTIONS = {
    "customers": "customer",
    "checkout/sessions": "checkout.session",
    "billing_portal/sessions": "billing_portal.session",
    "subscriptions": "subscription",
    "subscription_items": "subscription_item",
    "invoices": "invoice",
    "prices": "price",
    "products": "product",
    "payment_intents": "payment_intent",
    "charges": "charge",
    "payment_methods": "payment_method",
    "events": "event",
}


def new_id(prefix: str) -> str:
    return f"{prefix}_test{next(_ids):06d}"


def decode_form(body: str | bytes | None) -> dict[str, Any]:
    """Stripe's form encoding (`metadata[org_id]=1`, `line_items[0][price]=x`) back into dicts and lists."""
    if isinstance(body, bytes):
        body = body.decode()
    out: dict[str, Any] = {}
    for key, value in parse_qsl(body or "", keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(out)


def _lists(node: Any) -> Any:
    """{"0": a, "1": b} -> [a, b]"""
    if isinstance(node, dict):
        node = {k: _lists(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


class FakeStripe:
    """The objects Stripe holds, and the requests it received."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.fail_next: int | None = None  # answer the next create with this HTTP status

    # ----------------------------------------------------------- store

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.objects[obj["id"]] = obj
        return obj

    def requests_to(self, method: str, path: str) -> list[dict[str, Any]]:
        return [params for m, p, params in self.calls if m == method and p == path]

    # ---------------------------------------------------------- routes

    def install(self, mock: responses.RequestsMock) -> None:
        pattern = re.compile(re.escape(API) + r"/v1/.*")
        for method in ("GET", "POST", "DELETE"):
            mock.add_callback(method, pattern, callback=self._handle)

    def _handle(self, request: Any) -> tuple[int, dict[str, str], str]:
        url = urlparse(request.url)
        path = url.path.removeprefix("/v1/")
        params = decode_form(request.body) if request.method == "POST" else dict(parse_qsl(url.query))
        self.calls.append((request.method, path, params))
        if request.method == "POST" and self.fail_next:
            status, self.fail_next = self.fail_next, None
            return _error(status, "api_error", "Something went wrong on Stripe's end.")
        if path == "account":
            return _ok(
                {
                    "id": "acct_test_platform",
                    "object": "account",
                    "type": "standard",
                    "country": "US",
                    "default_currency": "usd",
                    "email": "billing@example.com",
                    "settings": {"dashboard": {"display_name": "AgentOS test"}},
                    "charges_enabled": True,
                    "payouts_enabled": True,
                    "created": int(time.time()),
                    "livemode": False,
                    "metadata": {},
                }
            )
        if request.method == "POST" and path == "customers":
            return _ok(self.put(self._customer(params)))
        if request.method == "POST" and path == "checkout/sessions":
            return _ok(self.put(self._checkout_session(params)))
        if request.method == "POST" and path == "billing_portal/sessions":
            sid = new_id("bps")
            return _ok(
                {
                    "id": sid,
                    "object": "billing_portal.session",
                    "customer": params.get("customer"),
                    "return_url": params.get("return_url"),
                    "url": f"https://billing.stripe.com/p/session/{sid}",
                    "livemode": False,
                    "created": int(time.time()),
                }
            )
        if request.method == "GET":
            for collection in sorted(COLLECTIONS, key=len, reverse=True):
                if path == collection:
                    return _ok({"object": "list", "data": [], "has_more": False, "url": f"/v1/{path}"})
                if path.startswith(collection + "/"):
                    rest = path[len(collection) + 1 :]
                    if "/" in rest:  # a sub-list such as invoices/<id>/lines
                        return _ok({"object": "list", "data": [], "has_more": False, "url": f"/v1/{path}"})
                    obj = self.objects.get(rest)
                    if obj is None:
                        return _error(
                            404,
                            "invalid_request_error",
                            f"No such {COLLECTIONS[collection]}: '{rest}'",
                            "resource_missing",
                        )
                    return _ok(obj)
        return _error(400, "invalid_request_error", f"The fake Stripe does not know {request.method} {path}")

    # ------------------------------------------------------- factories

    def _customer(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": new_id("cus"),
            "object": "customer",
            "email": params.get("email"),
            "name": params.get("name"),
            "metadata": params.get("metadata") or {},
            "created": int(time.time()),
            "livemode": False,
            "balance": 0,
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "invoice_settings": {"default_payment_method": None, "custom_fields": None, "footer": None},
            "tax_exempt": "none",
        }

    def _checkout_session(self, params: dict[str, Any]) -> dict[str, Any]:
        sid = new_id("cs")
        return {
            "id": sid,
            "object": "checkout.session",
            "mode": params.get("mode"),
            "status": "open",
            "payment_status": "unpaid",
            "customer": params.get("customer"),
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata") or {},
            "line_items_params": params.get("line_items"),
            "subscription_data_params": params.get("subscription_data"),
            "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"),
            "url": f"https://checkout.stripe.com/c/pay/{sid}",
            "currency": "usd",
            "payment_intent": None,
            "subscription": None,
            "setup_intent": None,
            "livemode": False,
            "created": int(time.time()),
        }

    # ------------------------------------------------ what Stripe sends

    def customer(self, cid: str, **fields: Any) -> dict[str, Any]:
        """A customer created elsewhere (not through this app)."""
        return self.put({**self._customer(fields), "id": cid})

    def complete_checkout(self, session_id: str, *, subscription: str | None = None) -> dict[str, Any]:
        """The buyer paid: the session as Stripe reports it afterwards."""
        session = dict(self.objects[session_id], status="complete", payment_status="paid")
        session["amount_total"] = 0
        if subscription:
            session["subscription"] = subscription
        return self.put(session)

    def product(self, pid: str, name: str) -> dict[str, Any]:
        return self.put(
            {
                "id": pid,
                "object": "product",
                "name": name,
                "active": True,
                "type": "service",
                "metadata": {},
                "created": int(time.time()),
                "livemode": False,
            }
        )

    def price(self, pid: str, product: str, *, cents: int, interval: str) -> dict[str, Any]:
        return self.put(
            {
                "id": pid,
                "object": "price",
                "active": True,
                "currency": "usd",
                "product": product,
                "type": "recurring",
                "unit_amount": cents,
                "recurring": {"interval": interval, "interval_count": 1, "usage_type": "licensed"},
                "billing_scheme": "per_unit",
                "metadata": {},
                "created": int(time.time()),
                "livemode": False,
            }
        )

    def subscription(
        self,
        *,
        customer: str,
        price: str,
        status: str = "active",
        metadata: dict[str, Any] | None = None,
        period_end: int | None = None,
        sid: str | None = None,
    ) -> dict[str, Any]:
        now = int(time.time())
        sid = sid or new_id("sub")
        end = period_end or now + 30 * 86400
        return self.put(
            {
                "id": sid,
                "object": "subscription",
                "customer": customer,
                "status": status,
                "metadata": metadata or {},
                "created": now,
                "start_date": now,
                "livemode": False,
                "cancel_at_period_end": False,
                "collection_method": "charge_automatically",
                "currency": "usd",
                "items": {
                    "object": "list",
                    "has_more": False,
                    "url": f"/v1/subscription_items?subscription={sid}",
                    "data": [
                        {
                            "id": new_id("si"),
                            "object": "subscription_item",
                            "subscription": sid,
                            "price": dict(self.objects[price]),
                            "quantity": 1,
                            "current_period_start": now,
                            "current_period_end": end,
                            "created": now,
                            "metadata": {},
                        }
                    ],
                },
            }
        )

    def invoice(
        self,
        *,
        customer: str,
        subscription: str,
        price: str,
        reason: str = "subscription_create",
        metadata: dict[str, Any] | None = None,
        period_end: int | None = None,
    ) -> dict[str, Any]:
        """A paid subscription invoice in the current API shape (`parent`, `lines[].pricing`)."""
        now = int(time.time())
        iid = new_id("in")
        amount = self.objects[price]["unit_amount"]
        return self.put(
            {
                "id": iid,
                "object": "invoice",
                "customer": customer,
                "status": "paid",
                "paid": True,
                "billing_reason": reason,
                "amount_due": amount,
                "amount_paid": amount,
                "amount_remaining": 0,
                "currency": "usd",
                "collection_method": "charge_automatically",
                "created": now,
                "livemode": False,
                "metadata": {},
                "parent": {
                    "type": "subscription_details",
                    "quote_details": None,
                    "subscription_details": {"subscription": subscription, "metadata": metadata or {}},
                },
                "lines": {
                    "object": "list",
                    "has_more": False,
                    "url": f"/v1/invoices/{iid}/lines",
                    "data": [
                        {
                            "id": new_id("il"),
                            "object": "line_item",
                            "amount": amount,
                            "currency": "usd",
                            "invoice": iid,
                            "quantity": 1,
                            "period": {"start": now, "end": period_end or now + 30 * 86400},
                            "pricing": {
                                "type": "price_details",
                                "price_details": {"price": price, "product": self.objects[price]["product"]},
                            },
                            "metadata": {},
                        }
                    ],
                },
            }
        )


def _ok(body: dict[str, Any]) -> tuple[int, dict[str, str], str]:
    return 200, {"Content-Type": "application/json", "Request-Id": new_id("req")}, json.dumps(body)


def _error(status: int, kind: str, message: str, code: str | None = None) -> tuple[int, dict[str, str], str]:
    error = {"type": kind, "message": message, **({"code": code} if code else {})}
    return status, {"Content-Type": "application/json"}, json.dumps({"error": error})


# ------------------------------------------------------------- webhooks


def event(
    kind: str, obj: dict[str, Any], *, created: int | None = None, eid: str | None = None
) -> dict[str, Any]:
    return {
        "id": eid or new_id("evt"),
        "object": "event",
        "api_version": "2026-05-27.dahlia",
        "created": created or int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }


def deliver(
    client: Any, body: dict[str, Any], *, secret: str = WEBHOOK_SECRET, path: str = WEBHOOK_PATH
) -> Any:
    """POST an event the way Stripe does: the raw JSON body with its `Stripe-Signature` header."""
    payload = json.dumps(body)
    header = stripe.WebhookSignature.generate_signature_header(payload, secret)
    return client.post(path, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)


# ------------------------------------------------------------- fixtures


@pytest.fixture(name="stripe_keys")
def stripe_keys_fixture(settings):
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY = PUBLISHABLE_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    return settings


@pytest.fixture(name="fake_stripe")
def fake_stripe_fixture(stripe_keys):
    fake = FakeStripe()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.install(mock)
        yield fake


# Also importable under the fixture names: `from tests.billing.stripe_fake import fake_stripe, stripe_keys`.
fake_stripe = fake_stripe_fixture
stripe_keys = stripe_keys_fixture

"""The default catalog: plans, credit packs and model prices (doc 001 §24.3). Seeded by a data
migration and editable in the admin afterwards; `sync_catalog()` only adds what is missing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

PLANS: list[dict[str, Any]] = [
    {
        "slug": "free",
        "name": "Free",
        "description": "Try everything: 10 credits at sign-up, valid for 30 days.",
        "price_monthly_cents": 0,
        "price_yearly_cents": 0,
        "monthly_credits": Decimal("0"),
        "signup_credits": Decimal("10"),
        "signup_credits_expire_days": 30,
        "pack_discount_percent": 0,
        "limits": {
            "agents": 3,
            "workflows": 2,
            "kb_storage_mb": 50,
            "integrations": 1,
            "api_keys": 1,
            "runs_per_month": 200,
        },
        "sort": 0,
    },
    {
        "slug": "basic",
        "name": "Basic",
        "description": "100 credits a month and 20% off credit packs.",
        "price_monthly_cents": 2000,
        "price_yearly_cents": 19200,
        "monthly_credits": Decimal("100"),
        "signup_credits": Decimal("0"),
        "pack_discount_percent": 20,
        "limits": {
            "agents": 10,
            "workflows": 10,
            "kb_storage_mb": 1000,
            "integrations": 5,
            "api_keys": 5,
            "runs_per_month": 5000,
        },
        "sort": 1,
    },
    {
        "slug": "pro",
        "name": "Pro",
        "description": "300 credits a month and 30% off credit packs.",
        "price_monthly_cents": 5000,
        "price_yearly_cents": 48000,
        "monthly_credits": Decimal("300"),
        "signup_credits": Decimal("0"),
        "pack_discount_percent": 30,
        "limits": {
            "agents": 50,
            "workflows": 50,
            "kb_storage_mb": 10000,
            "integrations": 20,
            "api_keys": 20,
            "runs_per_month": 50000,
        },
        "sort": 2,
    },
    {
        "slug": "enterprise",
        "name": "Enterprise",
        "description": "Custom limits, credits and terms. Talk to us.",
        "price_monthly_cents": 0,
        "price_yearly_cents": 0,
        "monthly_credits": Decimal("0"),
        "signup_credits": Decimal("0"),
        "pack_discount_percent": 30,
        "limits": {},
        "is_custom": True,
        "sort": 3,
    },
]

PACKS: list[dict[str, Any]] = [
    {"slug": "pack-100", "credits": 100, "price_cents": 1000},
    {"slug": "pack-500", "credits": 500, "price_cents": 4500},
    {"slug": "pack-1000", "credits": 1000, "price_cents": 8000},
    {"slug": "pack-5000", "credits": 5000, "price_cents": 35000},
]

# Credits per 1K tokens (input, output). Prefix patterns end in "*"; "*" alone is the default.
MODEL_PRICES: list[tuple[str, str, str, str]] = [
    ("gpt-3.5*", "GPT-3.5", "1", "1"),
    ("gpt-4*", "GPT-4 class", "3", "3"),
    ("gpt-5*", "GPT-4 class", "3", "3"),
    ("o1*", "GPT-4 class", "3", "3"),
    ("o3*", "GPT-4 class", "3", "3"),
    ("claude-3-haiku*", "Claude Haiku", "2", "2"),
    ("claude-3-5-haiku*", "Claude Haiku", "2", "2"),
    ("claude-haiku*", "Claude Haiku", "2", "2"),
    ("claude-3-5-sonnet*", "Claude Sonnet", "3", "3"),
    ("claude-sonnet*", "Claude Sonnet", "3", "3"),
    ("claude-3-opus*", "Claude Opus", "5", "5"),
    ("claude-opus*", "Claude Opus", "5", "5"),
    ("gemini-pro*", "Gemini Pro", "1.5", "1.5"),
    ("gemini-1.5-pro*", "Gemini Pro", "1.5", "1.5"),
    ("gemini-2.5-pro*", "Gemini Pro", "1.5", "1.5"),
    ("gemini-ultra*", "Gemini Ultra", "4", "4"),
    ("llama*", "Open source", "0.5", "0.5"),
    ("mistral*", "Open source", "0.5", "0.5"),
    ("mixtral*", "Open source", "0.5", "0.5"),
    ("qwen*", "Open source", "0.5", "0.5"),
    ("deepseek*", "Open source", "0.5", "0.5"),
    ("gemma*", "Open source", "0.5", "0.5"),
    ("demo-echo", "Offline demo model (free)", "0", "0"),
    ("text-embedding*", "Embeddings", "0.1", "0"),
    ("*", "Other models (default)", "2", "2"),
]

# Tools (credits per call) and knowledge search context (credits per 1K context tokens).
TOOL_COSTS = {"web_search": Decimal("2"), "knowledge_search": Decimal("1")}
KNOWLEDGE_CONTEXT_PER_1K = Decimal("0.5")


def sync_catalog(apps: Any = None) -> None:
    """Add the default plans, packs and prices that are missing (never overwrite admin edits)."""
    if apps is None:
        from django.apps import apps as registry

        apps = registry
    Plan = apps.get_model("billing", "Plan")  # noqa: N806 - historical models in migrations
    CreditPack = apps.get_model("billing", "CreditPack")  # noqa: N806
    ModelPrice = apps.get_model("billing", "ModelPrice")  # noqa: N806
    for plan in PLANS:
        Plan.objects.get_or_create(slug=plan["slug"], defaults={k: v for k, v in plan.items() if k != "slug"})
    for pack in PACKS:
        CreditPack.objects.get_or_create(
            slug=pack["slug"], defaults={k: v for k, v in pack.items() if k != "slug"}
        )
    for pattern, label, inp, out in MODEL_PRICES:
        ModelPrice.objects.get_or_create(
            pattern=pattern,
            defaults={"label": label, "input_per_1k": Decimal(inp), "output_per_1k": Decimal(out)},
        )

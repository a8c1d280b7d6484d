"""What things cost in credits: tokens by model (the admin-editable table), tools, estimates."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

from billing.catalog import KNOWLEDGE_CONTEXT_PER_1K, TOOL_COSTS
from billing.ledger import q

_cache: dict[str, Any] = {"at": 0.0, "rows": []}
_lock = threading.Lock()
CACHE_SECONDS = 30
DEFAULT_OUTPUT_ESTIMATE = 800  # tokens, when an agent sets no max_tokens


def _rows() -> list[tuple[str, Decimal, Decimal]]:
    with _lock:
        if time.monotonic() - _cache["at"] < CACHE_SECONDS and _cache["rows"]:
            return list(_cache["rows"])
    from billing.models import ModelPrice

    rows = list(ModelPrice.objects.values_list("pattern", "input_per_1k", "output_per_1k"))
    if not rows:
        from billing.catalog import sync_catalog

        sync_catalog()
        rows = list(ModelPrice.objects.values_list("pattern", "input_per_1k", "output_per_1k"))
    # Exact names first, then the longest prefixes, then the default.
    rows.sort(key=lambda r: (r[0] == "*", r[0].endswith("*"), -len(r[0])))
    with _lock:
        _cache.update(at=time.monotonic(), rows=rows)
    return rows


def clear_cache() -> None:
    with _lock:
        _cache.update(at=0.0, rows=[])


def price_of(model: str) -> tuple[Decimal, Decimal]:
    """(input, output) credits per 1K tokens for a model name."""
    name = (model or "").lower().split(":")[-1]
    for pattern, inp, out in _rows():
        p = pattern.lower()
        if p == "*" or p == name or (p.endswith("*") and name.startswith(p[:-1])):
            return Decimal(inp), Decimal(out)
    return Decimal(2), Decimal(2)


def token_cost(model: str, input_tokens: int, output_tokens: int) -> Decimal:
    inp, out = price_of(model)
    return q((inp * input_tokens + out * output_tokens) / 1000)


def tool_cost(tool: str, context_tokens: int = 0) -> Decimal:
    base = TOOL_COSTS.get(tool, Decimal(0))
    if tool == "knowledge_search":
        base += KNOWLEDGE_CONTEXT_PER_1K * Decimal(context_tokens) / 1000
    return q(base)


def estimate_run(model: str, text: str, instructions: str = "", max_tokens: int | None = None) -> Decimal:
    """A run's reservation: its prompt (about 4 characters a token) and the most it may answer."""
    prompt_tokens = (len(text) + len(instructions)) // 4 + 200
    return token_cost(model, prompt_tokens, max_tokens or DEFAULT_OUTPUT_ESTIMATE)

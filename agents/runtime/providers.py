"""Model providers: the registry, where keys come from, cached clients, and agno model construction.

Keys: an organization's own key (ProviderKey, encrypted) wins; else the platform's env key. With
none at all the offline demo model answers, clearly labelled, so a fresh install still chats.
Clients are cached per (provider, base URL, key) — never built per run (an openai client costs ~20 ms).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import httpx2
from django.conf import settings

from accounts.models import Organization
from accounts.services import ServiceError
from agents.runtime.transport import KeepAliveAfterDone, abortable


@dataclass(frozen=True)
class ProviderInfo:
    id: str
    label: str
    kind: str  # openai | openai_compatible | anthropic | gemini | demo
    env_key: str = ""
    env_base_url: str = ""
    default_base_url: str = ""
    models: tuple[str, ...] = ()
    capabilities: dict[str, bool] = field(default_factory=dict)
    # USD per 1M tokens (input, output); per-model overrides below. Billing (#6) owns the final price list.
    price: tuple[str, str] = ("0", "0")
    model_prices: dict[str, tuple[str, str]] = field(default_factory=dict)


_CHAT = {"streaming": True, "tools": True, "structured_output": True, "vision": False}
PROVIDERS: dict[str, ProviderInfo] = {
    p.id: p
    for p in [
        ProviderInfo(
            "openai",
            "OpenAI",
            "openai",
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            "",
            ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1", "o4-mini"),
            {**_CHAT, "vision": True},
            ("0.15", "0.60"),
            {
                "gpt-4o": ("2.50", "10.00"),
                "gpt-4.1": ("2.00", "8.00"),
                "gpt-4.1-mini": ("0.40", "1.60"),
                "o4-mini": ("1.10", "4.40"),
            },
        ),
        ProviderInfo(
            "anthropic",
            "Anthropic",
            "anthropic",
            "ANTHROPIC_API_KEY",
            "",
            "",
            ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"),
            {**_CHAT, "vision": True},
            ("3.00", "15.00"),
        ),
        ProviderInfo(
            "gemini",
            "Google Gemini",
            "gemini",
            "GEMINI_API_KEY",
            "",
            "",
            ("gemini-2.5-flash", "gemini-2.5-pro"),
            {**_CHAT, "vision": True},
            ("0.30", "2.50"),
        ),
        ProviderInfo(
            "openai_compatible", "OpenAI-compatible (any base URL)", "openai_compatible", capabilities=_CHAT
        ),
        ProviderInfo(
            "ollama",
            "Ollama",
            "openai_compatible",
            default_base_url="http://localhost:11434/v1",
            models=("llama3.1", "qwen2.5", "mistral"),
            capabilities=_CHAT,
        ),
        ProviderInfo("vllm", "vLLM", "openai_compatible", capabilities=_CHAT),
        ProviderInfo(
            "deepseek",
            "DeepSeek",
            "openai_compatible",
            default_base_url="https://api.deepseek.com/v1",
            models=("deepseek-chat", "deepseek-reasoner"),
            capabilities=_CHAT,
            price=("0.27", "1.10"),
        ),
        ProviderInfo(
            "groq",
            "Groq",
            "openai_compatible",
            default_base_url="https://api.groq.com/openai/v1",
            models=("llama-3.3-70b-versatile",),
            capabilities=_CHAT,
            price=("0.59", "0.79"),
        ),
        ProviderInfo(
            "openrouter",
            "OpenRouter",
            "openai_compatible",
            default_base_url="https://openrouter.ai/api/v1",
            models=("openai/gpt-4o-mini", "anthropic/claude-sonnet-4.5"),
            capabilities=_CHAT,
        ),
        ProviderInfo(
            "together",
            "Together",
            "openai_compatible",
            default_base_url="https://api.together.xyz/v1",
            models=("meta-llama/Llama-3.3-70B-Instruct-Turbo",),
            capabilities=_CHAT,
        ),
        ProviderInfo(
            "demo",
            "Demo model (offline, no API key)",
            "demo",
            models=("demo-echo",),
            capabilities={"streaming": True, "tools": True, "structured_output": False, "vision": False},
        ),
    ]
}

PREFERENCE = ("openai", "anthropic", "gemini")


@dataclass(frozen=True)
class Credentials:
    provider: str
    api_key: str
    base_url: str
    source: str  # "org" | "platform" | "none"
    trusted_base_url: bool  # platform env URLs are trusted; org URLs go through the outbound guard


def get_provider(provider_id: str) -> ProviderInfo:
    try:
        return PROVIDERS[provider_id]
    except KeyError:
        raise ServiceError(f"Unknown model provider “{provider_id}”.", code="unknown_provider", status=404)


def provider_check(*, org: Organization, provider: str, model: str) -> None:
    get_provider(provider)
    if not model.strip():
        raise ServiceError("Choose a model name.", code="invalid")


def _platform_key(info: ProviderInfo) -> str:
    return os.environ.get(info.env_key, "") if info.env_key else ""


CREDENTIALS_TTL_SECONDS = 5.0
_creds_cache: dict[tuple[int, str], tuple[float, Credentials]] = {}


def credentials_for(*, org: Organization | int, provider_id: str) -> Credentials:
    """Cached briefly per process: a run must not pay a query and a decryption per build. Saving or
    deleting a key clears this process's cache; other workers pick the change up within the TTL."""
    org_id = org if isinstance(org, int) else org.pk
    hit = _creds_cache.get((org_id, provider_id))
    now = time.monotonic()
    if hit is not None and now - hit[0] < CREDENTIALS_TTL_SECONDS:
        return hit[1]
    creds = _load_credentials(org_id, provider_id)
    _creds_cache[(org_id, provider_id)] = (now, creds)
    return creds


def _load_credentials(org_id: int, provider_id: str) -> Credentials:
    from agents.models import ProviderKey
    from integrations.vault import vault_decrypt

    info = get_provider(provider_id)
    byo = ProviderKey.objects.filter(organization_id=org_id, provider=provider_id).first()
    if byo is not None:
        return Credentials(
            provider_id,
            vault_decrypt(byo.encrypted_key),
            byo.base_url or info.default_base_url,
            "org",
            trusted_base_url=False,
        )
    key = _platform_key(info)
    base_url = (os.environ.get(info.env_base_url, "") if info.env_base_url else "") or info.default_base_url
    return Credentials(provider_id, key, base_url, "platform" if key else "none", trusted_base_url=True)


def is_configured(*, org: Organization | int, provider_id: str) -> bool:
    info = get_provider(provider_id)
    if info.kind == "demo":
        return True
    creds = credentials_for(org=org, provider_id=provider_id)
    if info.kind == "openai_compatible":
        return bool(creds.base_url) and creds.source == "org"
    return bool(creds.api_key)


def default_model(*, org: Organization | int) -> tuple[str, str]:
    """DEFAULT_LLM_MODEL ("provider:model", or a bare OpenAI model) if set, else the best configured provider."""
    raw = os.environ.get("DEFAULT_LLM_MODEL", "").strip()
    if raw:
        provider, _, model = raw.partition(":") if ":" in raw else ("openai", "", raw)
        if provider in PROVIDERS and model:
            return provider, model
    for provider_id in PREFERENCE:
        if is_configured(org=org, provider_id=provider_id):
            return provider_id, PROVIDERS[provider_id].models[0]
    return "demo", "demo-echo"


def price_per_million(provider_id: str, model: str) -> tuple[Decimal, Decimal]:
    info = PROVIDERS.get(provider_id)
    if info is None:
        return Decimal(0), Decimal(0)
    inp, out = info.model_prices.get(model, info.price)
    return Decimal(inp), Decimal(out)


def cost_of(provider_id: str, model: str, input_tokens: int, output_tokens: int) -> Decimal:
    pin, pout = price_per_million(provider_id, model)
    return (pin * input_tokens + pout * output_tokens) / Decimal(1_000_000)


# ---------------------------------------------------------------- clients

# The responses currently streaming in this thread, so a cancel can close the socket at once
# (agno leaves the HTTP stream open after cancel_run).
_inflight = threading.local()


def _track_response(response: httpx.Response | httpx2.Response) -> None:
    responses = getattr(_inflight, "responses", None)
    if responses is not None:
        responses.append(response)


def begin_tracking() -> list[Any]:
    _inflight.responses = []
    return _inflight.responses


def close_tracked() -> None:
    for response in getattr(_inflight, "responses", None) or []:
        # closing a half-read stream may raise; there is nothing else to do with it
        with contextlib.suppress(Exception):
            response.close()
    _inflight.responses = []


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


_lock = threading.Lock()
_clients: dict[str, Any] = {}


def _http_client(creds: Credentials) -> httpx2.Client | httpx.Client:
    """The platform's own base URLs go through httpx2, the openai client's HTTP library, so no call
    pays for converting between two libraries; organization-supplied ones through the address guard."""
    seconds = getattr(settings, "LLM_TIMEOUT_SECONDS", 120)
    if creds.trusted_base_url:
        return httpx2.Client(
            timeout=httpx2.Timeout(seconds, connect=10),
            event_hooks={"response": [_track_response]},
            transport=KeepAliveAfterDone(abortable(httpx2.HTTPTransport())),
        )
    from integrations.safe_http import guarded_transport

    return httpx.Client(
        timeout=httpx.Timeout(seconds, connect=10),
        event_hooks={"response": [_track_response]},
        transport=KeepAliveAfterDone(abortable(guarded_transport())),
    )


def openai_client(creds: Credentials) -> Any:
    """A cached openai.OpenAI per (base URL, key). The key itself is never logged or kept elsewhere."""
    import openai

    cache_key = _fingerprint("openai", creds.base_url, creds.api_key)
    client = _clients.get(cache_key)
    if client is None:
        with _lock:
            client = _clients.get(cache_key)
            if client is None:
                client = openai.OpenAI(
                    api_key=creds.api_key or "not-set",
                    base_url=creds.base_url or None,
                    http_client=_http_client(creds),  # type: ignore[arg-type]
                    max_retries=1,
                )
                _clients[cache_key] = client
    return client


def build_model(*, creds: Credentials, model: str, temperature: float, max_tokens: int | None) -> Any:
    info = get_provider(creds.provider)
    if info.kind == "demo":
        from agents.runtime.demo import DemoModel

        return DemoModel()
    if info.kind in ("openai", "openai_compatible"):
        if info.kind == "openai_compatible" and not creds.base_url:
            raise ServiceError(
                f"{info.label} needs a base URL; add one in the organization's model keys.",
                code="provider_not_configured",
                status=409,
            )
        if info.kind == "openai" and not creds.api_key:
            raise ServiceError(
                "No OpenAI key is configured (set OPENAI_API_KEY or add your own key).",
                code="provider_not_configured",
                status=409,
            )
        if not creds.trusted_base_url:
            from integrations.safe_http import validate_url

            validate_url(creds.base_url)
        from agno.models.openai import OpenAIChat
        from agno.models.openai.like import OpenAILike

        cls = OpenAIChat if info.kind == "openai" else OpenAILike
        return cls(id=model, client=openai_client(creds), temperature=temperature, max_tokens=max_tokens)
    if not creds.api_key:
        raise ServiceError(f"No {info.label} key is configured.", code="provider_not_configured", status=409)
    if info.kind == "anthropic":
        from agno.models.anthropic import Claude

        return Claude(id=model, api_key=creds.api_key, temperature=temperature, max_tokens=max_tokens or 4096)
    if info.kind == "gemini":
        from agno.models.google import Gemini

        return Gemini(id=model, api_key=creds.api_key, temperature=temperature, max_output_tokens=max_tokens)
    raise ServiceError(f"Provider kind {info.kind} is not supported.", code="unknown_provider")


def clients_clear() -> None:
    """Forget cached clients (after a key is replaced or deleted)."""
    with _lock:
        _clients.clear()
        _creds_cache.clear()

"""Bring-your-own model keys, kept in one module so the later integrations vault can absorb it.

A key is tested against its provider before it is saved, stored encrypted, shown only masked, and
never logged or put in a prompt. An org-supplied base URL must pass the outbound-address guard.
"""

from __future__ import annotations

import logging

from accounts.models import Organization, User
from accounts.services import ServiceError, audit_log_record
from agents.models import ProviderKey
from agents.runtime.providers import Credentials, build_model, clients_clear, get_provider
from integrations.vault import mask, vault_encrypt

logger = logging.getLogger(__name__)


def provider_key_test(*, provider: str, api_key: str, base_url: str = "", model: str = "") -> None:
    """One tiny completion with the candidate key. Raises ServiceError with a readable reason."""
    info = get_provider(provider)
    if info.kind == "demo":
        raise ServiceError("The demo model needs no key.", code="invalid")
    if base_url:
        from integrations.safe_http import UnsafeURLError, validate_url

        try:
            validate_url(base_url)
        except UnsafeURLError as exc:
            raise ServiceError(str(exc), code="unsafe_url")
    creds = Credentials(provider, api_key, base_url or info.default_base_url, "org", trusted_base_url=False)
    name = model or (info.models[0] if info.models else "")
    if not name:
        raise ServiceError("Give a model name to test this provider with.", code="invalid")
    try:
        from agno.agent import Agent as AgnoAgent

        output = AgnoAgent(
            model=build_model(creds=creds, model=name, temperature=0, max_tokens=5), telemetry=False
        ).run("ping")
    except ServiceError:
        raise
    except Exception as exc:  # the provider's own error type varies; report its class, never the key
        raise ServiceError(f"The provider refused the key ({type(exc).__name__}).", code="key_test_failed")
    finally:
        clients_clear()
    if str(getattr(output, "status", "")).endswith("error"):
        raise ServiceError(
            f"The provider refused the key: {str(output.content)[:200]}", code="key_test_failed"
        )


def provider_key_set(
    *,
    org: Organization,
    by: User,
    provider: str,
    api_key: str,
    base_url: str = "",
    label: str = "",
    test: bool = True,
    model: str = "",
) -> ProviderKey:
    get_provider(provider)
    if not api_key.strip():
        raise ServiceError("The key is empty.", code="invalid")
    if test:
        provider_key_test(provider=provider, api_key=api_key.strip(), base_url=base_url, model=model)
    elif base_url:
        from integrations.safe_http import UnsafeURLError, validate_url

        try:
            validate_url(base_url)
        except UnsafeURLError as exc:
            raise ServiceError(str(exc), code="unsafe_url")
    key, _ = ProviderKey.objects.update_or_create(
        organization=org,
        provider=provider,
        defaults={
            "encrypted_key": vault_encrypt(api_key.strip()),
            "key_hint": mask(api_key.strip()),
            "base_url": base_url,
            "label": label,
            "created_by": by,
        },
    )
    clients_clear()
    audit_log_record(action="provider_key.saved", actor=by, organization=org, target=key, provider=provider)
    return key


def provider_key_delete(*, key: ProviderKey, by: User) -> None:
    audit_log_record(
        action="provider_key.deleted",
        actor=by,
        organization=key.organization,
        target=key,
        provider=key.provider,
    )
    key.delete()
    clients_clear()

"""Organization secrets: store encrypted, read back only at call time, show only masked."""

from __future__ import annotations

import re

from django.db import transaction

from accounts.models import Organization, User
from accounts.services import ServiceError
from integrations.models import Secret
from integrations.vault import mask, vault_decrypt, vault_encrypt

NAME_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


def secret_set(*, org: Organization, name: str, value: str, by: User | None) -> Secret:
    if not NAME_RE.match(name):
        raise ServiceError("Secret names use letters, digits, - and _ (up to 64).", code="invalid")
    if not value:
        raise ServiceError("The secret value is empty.", code="invalid")
    with transaction.atomic():
        if not Secret.objects.for_org(org).filter(name=name).exists():
            from billing import limits

            limits.check(org, "integrations")  # a new secret counts against the plan; an update does not
        secret, _ = Secret.objects.update_or_create(
            organization=org,
            name=name,
            defaults={"encrypted_value": vault_encrypt(value), "hint": mask(value), "created_by": by},
        )
    return secret


def secret_value(*, org_id: int, name: str) -> str:
    secret = Secret.objects.for_org(org_id).filter(name=name).first()
    if secret is None:
        raise KeyError(f"no secret named {name!r} in this organization")
    return vault_decrypt(secret.encrypted_value)

"""Tenancy primitives every app uses.

- `TenantModel`: abstract base with a non-null, indexed `organization` FK and a tenant-aware manager.
- `TenantQuerySet.for_org(org)`: the only way code reaches tenant rows.
- `get_for_org_or_404(Model, org, **lookup)`: a miss (including another tenant's id) is a 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self, TypeVar

from django.db import models
from django.http import Http404

if TYPE_CHECKING:
    from accounts.models import Organization


class TenantQuerySet(models.QuerySet):
    def for_org(self, org: Organization | int | None) -> Self:
        if org is None:
            return self.none()
        org_id = org if isinstance(org, int) else org.pk
        return self.filter(organization_id=org_id)


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):  # type: ignore[misc]
    pass


class TenantModel(models.Model):
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="%(class)ss", db_index=True
    )

    objects = TenantManager()

    class Meta:
        abstract = True


M = TypeVar("M", bound=models.Model)


def get_for_org_or_404(model: type[M], org: Organization | None, **lookup: Any) -> M:
    """Load one tenant row through its organization; anything else is a 404."""
    try:
        return model._default_manager.for_org(org).get(**lookup)  # type: ignore[attr-defined]
    except (model.DoesNotExist, ValueError, TypeError):  # type: ignore[attr-defined]
        raise Http404(f"No {model._meta.verbose_name} matches the given query.")

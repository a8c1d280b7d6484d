"""Template helpers for knowledge bases shown on other apps' pages (the agent's Knowledge tab)."""

from __future__ import annotations

from typing import Any

from django import template

from knowledge.api.common import with_counts
from knowledge.models import KnowledgeBase

register = template.Library()


@register.simple_tag
def knowledge_bases(org: Any, ids: Any = None, *, attached: bool = True) -> list[KnowledgeBase]:
    """The org's knowledge bases among `ids` (in that order), or with attached=False the others."""
    wanted = [int(i) for i in ids or [] if str(i).isdigit()]
    queryset = with_counts(KnowledgeBase.objects.for_org(org))
    if not attached:
        return list(queryset.exclude(pk__in=wanted).order_by("name"))
    found = {kb.pk: kb for kb in queryset.filter(pk__in=wanted)}
    return [found[i] for i in wanted if i in found]


@register.simple_tag
def missing_knowledge_base_ids(org: Any, ids: Any = None) -> list[int]:
    """Ids in a config that are not (or no longer) knowledge bases of the org: deleted since."""
    wanted = [int(i) for i in ids or [] if str(i).isdigit()]
    found = set(KnowledgeBase.objects.for_org(org).filter(pk__in=wanted).values_list("pk", flat=True))
    return [i for i in wanted if i not in found]

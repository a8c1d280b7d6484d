"""The API docs, one Swagger page per area.

The whole schema stays at `/api/schema/` (for clients and code generators). Swagger UI, though,
stops drawing operations once a single spec passes a certain size in the browser, so the pages at
`/api/docs/` show one area each, with links between them in the description.
"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

# area: (title, path prefixes under /api/v1/)
AREAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "core": ("Accounts and organizations", ("", "health", "me", "organizations", "invitations")),
    "agents": (
        "Agents, runs and models",
        ("agents", "models", "users", "runs", "sessions", "messages", "tasks"),
    ),
    "knowledge": ("Knowledge and files", ("knowledge", "knowledge-bases", "files")),
    "workflows": ("Workflows", ("workflows", "workflow-runs", "approvals", "workflow-templates")),
    "billing": ("Billing and credits", ("billing", "credits", "payments")),
}
PREFIX = "/api/v1/"


def _area_of(route: str) -> str | None:
    if not route.startswith(PREFIX):
        return None
    first = route[len(PREFIX) :].split("/", 1)[0]
    for area, (_title, prefixes) in AREAS.items():
        if first in prefixes:
            return area
    return None


def _only(area: str, endpoints: list[Any]) -> list[Any]:
    return [e for e in endpoints if _area_of(e[0]) == area]


# drf-spectacular takes hooks by import path: one per area.
def only_core(endpoints: list[Any], **kwargs: Any) -> list[Any]:
    return _only("core", endpoints)


def only_agents(endpoints: list[Any], **kwargs: Any) -> list[Any]:
    return _only("agents", endpoints)


def only_knowledge(endpoints: list[Any], **kwargs: Any) -> list[Any]:
    return _only("knowledge", endpoints)


def only_workflows(endpoints: list[Any], **kwargs: Any) -> list[Any]:
    return _only("workflows", endpoints)


def only_billing(endpoints: list[Any], **kwargs: Any) -> list[Any]:
    return _only("billing", endpoints)


def _description(area: str) -> str:
    from django.conf import settings

    links = " · ".join(
        f"**{title}**" if name == area else f"[{title}](/api/docs/{'' if name == 'core' else name + '/'})"
        for name, (title, _prefixes) in AREAS.items()
    )
    return (
        f"{settings.SPECTACULAR_SETTINGS['DESCRIPTION']}\n\nAreas: {links}. The whole schema: `/api/schema/`."
    )


def urlpatterns() -> list[URLPattern]:
    patterns = []
    for area, (title, _prefixes) in AREAS.items():
        schema = SpectacularAPIView.as_view(
            custom_settings={
                "PREPROCESSING_HOOKS": [f"config.api_docs.only_{area}"],
                "TITLE": f"AgentOS API: {title}",
                "DESCRIPTION": _description(area),
            }
        )
        patterns.append(path(f"api/schema/{area}/", schema, name=f"api-schema-{area}"))
        docs = SpectacularSwaggerView.as_view(url_name=f"api-schema-{area}")
        patterns.append(
            path(
                "api/docs/" if area == "core" else f"api/docs/{area}/",
                docs,
                name="api-docs" if area == "core" else f"api-docs-{area}",
            )
        )
    return patterns

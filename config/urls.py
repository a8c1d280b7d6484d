from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, register_converter
from drf_spectacular.views import SpectacularAPIView

from accounts import api as accounts_api
from config import api, api_docs
from config.converters import PkConverter
from workflows import webhooks as workflow_webhooks

register_converter(PkConverter, "pk")

api_v1: list[URLPattern | URLResolver] = [
    path("", api.api_root, name="api-root"),
    path("health", api.api_health, name="api-health"),
    path("me", accounts_api.me, name="api-me"),
    path("organizations/", accounts_api.organization_list, name="api-organizations"),
    path("organizations/<pk:org_id>", accounts_api.organization_detail, name="api-organization"),
    path("organizations/<pk:org_id>/members/", accounts_api.member_list, name="api-members"),
    path("organizations/<pk:org_id>/members/<pk:member_id>", accounts_api.member_detail, name="api-member"),
    path("organizations/<pk:org_id>/invitations/", accounts_api.invitation_list, name="api-invitations"),
    path(
        "organizations/<pk:org_id>/invitations/<pk:invitation_id>",
        accounts_api.invitation_detail,
        name="api-invitation",
    ),
    path("invitations/<str:token>/accept", accounts_api.invitation_accept, name="api-invitation-accept"),
    path("organizations/<pk:org_id>/api-keys/", accounts_api.api_key_list, name="api-keys"),
    path("organizations/<pk:org_id>/api-keys/<pk:key_id>", accounts_api.api_key_detail, name="api-key"),
    path("", include("agents.api.urls")),
    path("", include("knowledge.urls_api")),
    path("", include("workflows.urls_api")),
    path("", include("billing.urls_api")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("_allauth/", include("allauth.headless.urls")),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    *api_docs.urlpatterns(),  # /api/docs/ (accounts) and /api/docs/<area>/, one Swagger page per area
    # Stripe webhook endpoints created in the dj-stripe admin (the environment's is /api/v1/payments/webhook).
    path("stripe/", include("djstripe.urls", namespace="djstripe")),
    path("hooks/workflows/<str:token>", workflow_webhooks.workflow_webhook, name="workflow-webhook"),
    path("healthz", api.healthz, name="healthz"),
    path("readyz", api.readyz, name="readyz"),
    path("agents/", include("agents.urls")),
    path("workflows/", include("workflows.urls")),
    path("knowledge/", include("knowledge.urls")),
    path("billing/", include("billing.urls")),
    path("community/", include("community.urls")),
    path("integrations/", include("integrations.urls")),
    path("", include("accounts.urls")),
]

handler404 = "config.views.not_found"

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

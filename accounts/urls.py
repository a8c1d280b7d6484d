from django.urls import path

from accounts import views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("orgs/switch/", views.org_switch, name="org_switch"),
    path("orgs/new/", views.org_create, name="org_create"),
    path("orgs/settings/", views.org_settings, name="org_settings"),
    path("orgs/settings/audit/", views.audit_log, name="audit_log"),
    path("orgs/settings/members/<pk:membership_id>/role/", views.member_role, name="member_role"),
    path("orgs/settings/members/<pk:membership_id>/remove/", views.member_remove, name="member_remove"),
    path("orgs/settings/invitations/", views.invitation_create, name="invitation_create"),
    path(
        "orgs/settings/invitations/<pk:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("orgs/settings/api-keys/", views.api_key_create, name="api_key_create"),
    path("orgs/settings/api-keys/<pk:key_id>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
]

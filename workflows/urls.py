from django.urls import path

from workflows import views

W = "<pk:workflow_id>/"

urlpatterns = [
    path("", views.index, name="workflows_index"),
    path("new/", views.create, name="workflows_create"),
    path("approvals/", views.inbox, name="workflows_approvals"),
    path("approvals/<pk:approval_id>/decide/", views.decide, name="workflows_approval_decide"),
    path("approvals/decide/<str:token>/", views.decide_by_link, name="workflows_approval_link"),
    path("templates/", views.gallery, name="workflows_templates"),
    path("templates/<pk:template_id>/", views.template_detail, name="workflows_template_detail"),
    path("templates/<pk:template_id>/install/", views.template_install, name="workflows_template_install"),
    path("runs/<pk:run_id>/", views.run_detail, name="workflows_run_detail"),
    path("runs/<pk:run_id>/cancel/", views.run_cancel, name="workflows_run_cancel"),
    path(W, views.detail, name="workflows_detail"),
    path(W + "run/", views.run_now, name="workflows_run"),
    path(W + "runs/", views.runs, name="workflows_runs"),
    path(W + "builder/", views.builder, name="workflows_builder"),
    path(W + "builder/save/", views.save, name="workflows_builder_save"),
    path(W + "builder/validate/", views.validate, name="workflows_builder_validate"),
    path(W + "builder/publish/", views.publish, name="workflows_builder_publish"),
    path(W + "builder/test-run/", views.test_run, name="workflows_builder_test_run"),
    path(W + "builder/node/", views.node_panel, name="workflows_builder_node"),
    path(W + "builder/node/apply/", views.node_apply, name="workflows_builder_node_apply"),
]

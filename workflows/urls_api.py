"""Workflows API paths, relative to /api/v1/ (issue 5 "API", doc 001 §4.2)."""

from __future__ import annotations

from django.urls import path

from workflows.api import approvals, catalog, definitions, runs

WF = "workflows/<pk:workflow_id>"
RUN = "workflow-runs/<pk:run_id>"
TPL = "workflow-templates/<pk:template_id>"

urlpatterns = [
    # workflows and their versions
    path("workflows/", definitions.workflow_list, name="api-workflows"),
    path("workflows/nodes", catalog.node_catalog, name="api-workflow-nodes"),
    path(WF, definitions.workflow_detail, name="api-workflow"),
    path(WF + "/archive", definitions.workflow_archive, name="api-workflow-archive"),
    path(WF + "/restore", definitions.workflow_restore, name="api-workflow-restore"),
    path(WF + "/versions", definitions.version_list, name="api-workflow-versions"),
    path(WF + "/versions/<pk:number>", definitions.version_detail, name="api-workflow-version"),
    path(WF + "/validate", definitions.workflow_validate, name="api-workflow-validate"),
    path(WF + "/publish", definitions.workflow_publish, name="api-workflow-publish"),
    path(WF + "/rollback", definitions.workflow_rollback, name="api-workflow-rollback"),
    path(WF + "/webhook", definitions.workflow_webhook, name="api-workflow-webhook"),
    path(WF + "/webhook/rotate", definitions.workflow_webhook_rotate, name="api-workflow-webhook-rotate"),
    # runs
    path(WF + "/run", runs.workflow_run, name="api-workflow-run"),
    path(WF + "/runs", runs.workflow_runs, name="api-workflow-runs"),
    path(RUN, runs.run_detail, name="api-workflow-run-detail"),
    path(RUN + "/cancel", runs.run_cancel, name="api-workflow-run-cancel"),
    path(RUN + "/events", runs.run_events, name="api-workflow-run-events"),
    path(RUN + "/steps/<pk:step_id>/logs", runs.step_logs, name="api-workflow-step-logs"),
    # approvals
    path("approvals/", approvals.approval_list, name="api-approvals"),
    path("approvals/<pk:approval_id>", approvals.approval_detail, name="api-approval"),
    path("approvals/<pk:approval_id>/decide", approvals.approval_decide, name="api-approval-decide"),
    # templates gallery
    path("workflow-templates/", catalog.template_list, name="api-workflow-templates"),
    path(TPL, catalog.template_detail, name="api-workflow-template"),
    path(TPL + "/install", catalog.template_install, name="api-workflow-template-install"),
]

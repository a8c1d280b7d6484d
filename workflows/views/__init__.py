"""Workflows pages. One module per area; each view loads through request.org and checks the role."""

from workflows.views.approvals import decide, decide_by_link, inbox
from workflows.views.builder import builder, node_apply, node_panel, publish, save, test_run, validate
from workflows.views.gallery import gallery, template_detail, template_install
from workflows.views.runs import run_cancel, run_detail, runs
from workflows.views.workflows import create, detail, index, run_now

__all__ = [
    "builder",
    "create",
    "decide",
    "decide_by_link",
    "detail",
    "gallery",
    "inbox",
    "index",
    "node_apply",
    "node_panel",
    "publish",
    "run_cancel",
    "run_detail",
    "run_now",
    "runs",
    "save",
    "template_detail",
    "template_install",
    "test_run",
    "validate",
]

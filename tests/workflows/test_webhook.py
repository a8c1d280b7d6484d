"""`POST /hooks/workflows/<token>`: the signed webhook trigger."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.helpers import assert_envelope
from workflows import services
from workflows.models import WorkflowRun

from .conftest import chain, finished, node

pytestmark = pytest.mark.django_db


def webhook_graph():
    return {
        "nodes": [
            node("hook", "trigger", kind="webhook"),
            node("shape", "transform", mapping={"who": "{{ input.user.name }}"}),
            node("out", "end", output="{{ nodes.shape.output }}"),
        ],
        "edges": chain("hook", "shape", "out"),
    }


@pytest.fixture
def hooked(make_workflow):
    graph = webhook_graph()
    return make_workflow(graph["nodes"], graph["edges"], name="Hooked")


def post(workflow, body: bytes, signature: str | None = "sign", token: str | None = None):
    headers = {}
    if signature == "sign":
        signature = services.webhook_signature(services.webhook_secret(workflow), body)
    if signature is not None:
        headers["HTTP_X_AGENTOS_SIGNATURE"] = signature
    return Client().post(
        f"/hooks/workflows/{token or workflow.webhook_token}",
        body,
        content_type="application/json",
        **headers,
    )


def test_good_signature_starts_a_webhook_run(hooked):
    body = json.dumps({"user": {"name": "Ada"}}).encode()

    response = post(hooked, body)

    assert response.status_code == 202, response.content
    run = WorkflowRun.objects.get(pk=response.json()["run_id"])
    assert (run.workflow_id, run.source, run.input, run.user) == (
        hooked.pk,
        "webhook",
        {"user": {"name": "Ada"}},
        None,
    )
    assert run.steps.get().node_id == "hook"
    assert response.json()["status"] == run.status


@pytest.mark.django_db(transaction=True)
def test_webhook_run_succeeds_on_a_worker(hooked, celery_worker):
    response = post(hooked, b'{"user": {"name": "Grace"}}')

    run = finished(WorkflowRun.objects.get(pk=response.json()["run_id"]))

    assert (run.status, run.output) == ("succeeded", {"who": "Grace"})


@pytest.mark.parametrize("signature", [None, "", "sha256=" + "0" * 64, "nonsense"])
def test_bad_or_missing_signature_is_401_and_starts_nothing(hooked, signature):
    response = post(hooked, b'{"user": {"name": "Eve"}}', signature=signature)

    assert_envelope(response, 401, "bad_signature")
    assert not WorkflowRun.objects.exists()


def test_a_signature_over_another_body_is_refused(hooked):
    signature = services.webhook_signature(services.webhook_secret(hooked), b'{"amount": 1}')

    assert_envelope(post(hooked, b'{"amount": 1000}', signature=signature), 401, "bad_signature")
    assert not WorkflowRun.objects.exists()


def test_the_old_secret_stops_working_after_rotation(hooked, alice):
    body = b"{}"
    old = services.webhook_signature(services.webhook_secret(hooked), body)
    services.webhook_rotate(workflow=hooked, by=alice)

    assert_envelope(post(hooked, body, signature=old), 401, "bad_signature")
    assert post(hooked, body).status_code == 202


def test_unknown_token_is_404(hooked):
    response = post(hooked, b"{}", token="no-such-token")

    assert_envelope(response, 404, "not_found")
    assert_envelope(post(hooked, b"{}", token="x" * 200), 404, "not_found")


def test_invalid_json_is_400_and_other_json_is_wrapped(hooked):
    assert_envelope(post(hooked, b"{not json"), 400, "invalid_json")
    assert not WorkflowRun.objects.exists()

    response = post(hooked, b"[1, 2, 3]")

    assert response.status_code == 202
    assert WorkflowRun.objects.get(pk=response.json()["run_id"]).input == {"body": [1, 2, 3]}


def test_an_empty_body_is_an_empty_input(hooked):
    response = post(hooked, b"")

    assert response.status_code == 202
    assert WorkflowRun.objects.get().input == {}


def test_too_large_a_body_is_413(hooked):
    body = json.dumps({"blob": "x" * (300 * 1024)}).encode()

    assert_envelope(post(hooked, body), 413, "request_too_large")
    assert not WorkflowRun.objects.exists()


def test_a_workflow_without_a_webhook_trigger_is_404(make_workflow, alice):
    wf = make_workflow([node("start", "trigger", kind="manual"), node("out", "end")], chain("start", "out"))
    secret = services.webhook_rotate(workflow=wf, by=alice)  # even with a secret, there is no webhook
    body = b"{}"

    response = post(wf, body, signature=services.webhook_signature(secret, body))

    assert_envelope(response, 404, "no_webhook_trigger")
    assert not WorkflowRun.objects.exists()


def test_an_archived_or_unpublished_workflow_is_409(hooked, make_workflow, alice):
    services.workflow_archive(workflow=hooked, by=alice)
    graph = webhook_graph()
    draft = make_workflow(graph["nodes"], graph["edges"], name="Draft", publish=False)

    assert_envelope(post(hooked, b"{}"), 409, "not_active")
    assert_envelope(post(draft, b"{}", signature="sha256=00"), 409, "not_active")
    assert not WorkflowRun.objects.exists()


def test_only_post(hooked):
    response = Client().get(f"/hooks/workflows/{hooked.webhook_token}")

    assert_envelope(response, 405, "method_not_allowed")


def test_the_workflows_read_brings_its_cost_cap_and_the_runs_keys(hooked, acme, alice):
    """One read before the commit: the workflow with whether it has a cost cap and the keys of the
    run and its trigger step. A capped workflow is still checked (and refused when over)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing import caps

    body = json.dumps({"user": {"name": "Ada"}}).encode()
    with CaptureQueriesContext(connection) as queries:
        response = post(hooked, body)
    assert response.status_code == 202, response.content
    reads = [q["sql"] for q in queries if q["sql"].startswith("SELECT")]
    (read,) = [sql for sql in reads if 'FROM "workflows_workflow"' in sql]
    assert '"billing_costcap"' in read and read.count("nextval(") == 2
    assert not [sql for sql in reads if sql.startswith(("SELECT nextval", 'SELECT "billing_costcap"'))]
    run = WorkflowRun.objects.get(pk=response.json()["run_id"])
    assert run.steps.get().node_id == "hook"

    caps.cap_set(org=acme, workflow=hooked, per_month=0)
    refused = post(hooked, body)
    assert_envelope(refused, 402, "cost_cap")
    assert WorkflowRun.objects.filter(workflow=hooked).count() == 1

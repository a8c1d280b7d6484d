"""/api/v1/workflows/, /workflow-runs/, /approvals/, /workflow-templates/: CRUD, tenancy, roles, runs
on a real worker, approvals and the gallery."""

from __future__ import annotations

import pytest

from accounts.models import Role
from tests.conftest import wait_for
from tests.factories import MembershipFactory, UserFactory
from tests.helpers import as_user, assert_envelope
from workflows import engine, services
from workflows.graph import NODE_TYPES
from workflows.models import Approval, Workflow, WorkflowRun, WorkflowTemplate
from workflows.templates_catalog import sync_templates

from .conftest import chain, edge, finished, node

API = "/api/v1"


def transform_graph(trigger_kind="manual"):
    return {
        "nodes": [
            node("start", "trigger", kind=trigger_kind),
            node("shape", "transform", mapping={"greeting": "Hello {{ input.name }}"}),
            node("out", "end", output="{{ nodes.shape.output }}"),
        ],
        "edges": chain("start", "shape", "out"),
    }


def approval_graph(*assignees):
    return {
        "nodes": [
            node("start", "trigger", kind="manual"),
            node("ok", "approval", title="Ship {{ input.what }}?", assignees=list(assignees)),
            node("yes", "end", output="approved"),
            node("no", "end", output="rejected"),
        ],
        "edges": [edge("start", "ok"), edge("ok", "yes", "approved"), edge("ok", "no", "rejected")],
    }


@pytest.fixture
def viewer(acme):
    user = UserFactory(email="vera@example.com", name="Vera")
    MembershipFactory(organization=acme, user=user, role=Role.VIEWER)
    return user


@pytest.fixture
def charlie_api(charlie, charlie_org):
    return as_user(charlie)


def create(client, **body):
    response = client.post(f"{API}/workflows/", {"name": "Flow", **body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


# ------------------------------------------------------------------ CRUD


@pytest.mark.django_db
def test_create_starts_with_a_draft_version_and_is_listed(alice_api):
    body = create(alice_api, description="Says hello", graph=transform_graph())

    assert (body["status"], body["latest_version"], body["published_version"]) == ("draft", 1, None)
    assert [n["id"] for n in body["graph"]["nodes"]] == ["start", "shape", "out"]
    assert body["created_by"] == "alice@example.com"
    listed = alice_api.get(f"{API}/workflows/").json()
    assert [w["id"] for w in listed["results"]] == [body["id"]]
    assert listed["results"][0]["latest_version"] == 1


@pytest.mark.django_db
def test_create_without_graph_gets_the_starter_graph(alice_api):
    body = create(alice_api)

    assert {n["type"] for n in body["graph"]["nodes"]} == {"trigger", "end"}


@pytest.mark.django_db
def test_list_filters_by_status_and_hides_archived(alice_api, acme, alice):
    draft = services.workflow_create(org=acme, by=alice, name="Draft one")
    gone = services.workflow_create(org=acme, by=alice, name="Old one")
    services.workflow_archive(workflow=gone, by=alice)

    default = {w["id"] for w in alice_api.get(f"{API}/workflows/").json()["results"]}
    archived = {w["id"] for w in alice_api.get(f"{API}/workflows/?status=archived").json()["results"]}

    assert default == {draft.pk} and archived == {gone.pk}
    assert_envelope(alice_api.get(f"{API}/workflows/?status=nope"), 400, "invalid")


@pytest.mark.django_db
def test_invalid_graph_is_400_with_node_level_field_errors(alice_api, acme):
    graph = transform_graph()
    graph["nodes"][1]["config"] = {}  # a transform without its mapping
    graph["nodes"].append(node("lost", "transform", mapping={"a": "b"}))  # nothing leads to it

    response = alice_api.post(f"{API}/workflows/", {"name": "Bad", "graph": graph}, format="json")

    body = assert_envelope(response, 400, "invalid_graph")
    assert "mapping" in " ".join(body["field_errors"]["graph.nodes.shape"])
    assert "reachable" in " ".join(body["field_errors"]["graph.nodes.lost"])
    assert not Workflow.objects.for_org(acme).exists()


@pytest.mark.django_db
def test_graph_level_errors_are_keyed_graph(alice_api):
    response = alice_api.post(f"{API}/workflows/", {"name": "Bad", "graph": {"edges": []}}, format="json")

    body = assert_envelope(response, 400, "invalid_graph")
    assert list(body["field_errors"]) == ["graph"]


@pytest.mark.django_db
def test_loop_without_max_iterations_is_rejected(alice_api):
    wf = create(alice_api)
    graph = {
        "nodes": [
            node("start", "trigger", kind="manual"),
            node("each", "loop", mode="foreach", items="{{ input.items }}"),
            node("step", "transform", mapping={"x": "{{ item }}"}),
        ],
        "edges": [edge("start", "each"), edge("each", "step", "body"), edge("step", "each")],
    }

    response = alice_api.patch(f"{API}/workflows/{wf['id']}", {"graph": graph}, format="json")

    body = assert_envelope(response, 400, "invalid_graph")
    assert "maximum number of iterations" in " ".join(body["field_errors"]["graph.nodes.each"])
    assert alice_api.get(f"{API}/workflows/{wf['id']}").json()["latest_version"] == 1


@pytest.mark.django_db
def test_patch_renames_and_saves_the_graph_as_a_new_version(alice_api):
    wf = create(alice_api)

    response = alice_api.patch(
        f"{API}/workflows/{wf['id']}",
        {"name": "Greeter", "graph": transform_graph(), "note": "add a greeting"},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["name"], body["latest_version"]) == ("Greeter", 2)
    versions = alice_api.get(f"{API}/workflows/{wf['id']}/versions").json()["results"]
    assert [(v["number"], v["note"]) for v in versions] == [(2, "add a greeting"), (1, "Created")]
    v2 = alice_api.get(f"{API}/workflows/{wf['id']}/versions/2").json()
    assert [n["id"] for n in v2["graph"]["nodes"]] == ["start", "shape", "out"]
    assert v2["created_by"] == "alice@example.com"
    assert_envelope(alice_api.get(f"{API}/workflows/{wf['id']}/versions/9"), 404, "not_found")


@pytest.mark.django_db
def test_a_refused_graph_leaves_the_name_unchanged(alice_api):
    wf = create(alice_api)

    response = alice_api.put(
        f"{API}/workflows/{wf['id']}", {"name": "Renamed", "graph": {"nodes": "no"}}, format="json"
    )

    assert_envelope(response, 400, "invalid_graph")
    assert alice_api.get(f"{API}/workflows/{wf['id']}").json()["name"] == "Flow"


@pytest.mark.django_db
def test_validate_answers_errors_by_node_without_saving(alice_api):
    wf = create(alice_api, graph=transform_graph())
    bad = transform_graph()
    bad["nodes"][1]["config"] = {"mapping": {"x": "{{ nodes.ghost.output }}"}}

    invalid = alice_api.post(f"{API}/workflows/{wf['id']}/validate", {"graph": bad}, format="json").json()
    latest = alice_api.post(f"{API}/workflows/{wf['id']}/validate", {}, format="json").json()

    assert invalid["valid"] is False and "ghost" in " ".join(invalid["errors"]["shape"])
    assert latest == {"valid": True, "errors": {}}
    assert alice_api.get(f"{API}/workflows/{wf['id']}").json()["latest_version"] == 1


@pytest.mark.django_db
def test_publish_then_rollback(alice_api):
    wf = create(alice_api)
    alice_api.patch(f"{API}/workflows/{wf['id']}", {"graph": transform_graph()}, format="json")

    published = alice_api.post(f"{API}/workflows/{wf['id']}/publish", {}, format="json")
    assert published.status_code == 200, published.content
    assert (published.json()["status"], published.json()["published_version"]) == ("active", 2)
    assert published.json()["triggers"] == [{"node": "start", "kind": "manual"}]

    rolled = alice_api.post(f"{API}/workflows/{wf['id']}/rollback", {"version": 1}, format="json").json()
    assert rolled["published_version"] == 1
    missing = alice_api.post(f"{API}/workflows/{wf['id']}/rollback", {"version": 7}, format="json")
    assert_envelope(missing, 404, "not_found")
    pinned = alice_api.post(f"{API}/workflows/{wf['id']}/publish", {"version": 2}, format="json").json()
    assert pinned["published_version"] == 2


@pytest.mark.django_db
def test_archive_restore_and_delete(alice_api, acme):
    wf = create(alice_api)
    url = f"{API}/workflows/{wf['id']}"

    assert alice_api.post(url + "/archive").json()["status"] == "archived"
    assert_envelope(alice_api.post(url + "/publish", {}, format="json"), 409, "archived")
    assert alice_api.post(url + "/restore").json()["status"] == "draft"
    assert alice_api.delete(url).status_code == 204

    assert not Workflow.objects.for_org(acme).exists()
    assert_envelope(alice_api.get(url), 404, "not_found")


@pytest.mark.django_db
def test_node_catalog_lists_every_node_type_by_category(alice_api):
    body = alice_api.get(f"{API}/workflows/nodes").json()

    assert {n["type"] for n in body["nodes"]} == set(NODE_TYPES)
    assert {c["id"] for c in body["categories"]} == {"triggers", "ai", "logic", "data", "integrations"}
    loop = next(n for n in body["nodes"] if n["type"] == "loop")
    assert "max_iterations" in loop["required"] and loop["ports"] == ["body", "done", "error"]
    assert next(n for n in body["nodes"] if n["type"] == "router")["dynamic_ports"] == "labels"


# ---------------------------------------------------------- roles, tenancy


@pytest.mark.django_db
def test_viewer_reads_but_cannot_write(viewer, alice_api):
    wf = create(alice_api, graph=transform_graph())
    client = as_user(viewer)
    url = f"{API}/workflows/{wf['id']}"

    assert client.get(url).status_code == 200
    assert client.get(f"{API}/workflows/").json()["count"] == 1
    assert_envelope(
        client.post(f"{API}/workflows/", {"name": "Mine"}, format="json"), 403, "permission_denied"
    )
    assert_envelope(client.patch(url, {"name": "X"}, format="json"), 403, "permission_denied")
    assert_envelope(client.post(url + "/publish", {}, format="json"), 403, "permission_denied")
    assert_envelope(client.post(url + "/run", {"test": True}, format="json"), 403, "permission_denied")
    assert_envelope(client.delete(url), 403, "permission_denied")
    assert not WorkflowRun.objects.exists()


@pytest.fixture
def world(acme, alice, bob):
    """One of everything in Acme: a published workflow, a run waiting at an approval for bob."""
    workflow = services.workflow_create(
        org=acme, by=alice, name="Flow", graph=approval_graph("bob@example.com")
    )
    services.workflow_publish(workflow=workflow, by=alice)
    run = services.run_start(workflow=workflow, by=alice, input={"what": "v2"})
    engine.execute_step(run.steps.get().pk)  # the trigger, in this process (no worker needed)
    step = run.steps.get(node_id="ok")
    engine.execute_step(step.pk)  # the approval step: creates the Approval and waits
    approval = Approval.objects.get(step=step)
    return {"wf": workflow.pk, "run": run.pk, "step": step.pk, "approval": approval.pk}


# (method, path, body) with {wf}, {run}, {step}, {approval} filled from the world
ENDPOINTS = [
    ("get", "workflows/{wf}", None),
    ("patch", "workflows/{wf}", {"name": "x"}),
    ("put", "workflows/{wf}", {"name": "x", "graph": transform_graph()}),
    ("delete", "workflows/{wf}", None),
    ("post", "workflows/{wf}/archive", None),
    ("post", "workflows/{wf}/restore", None),
    ("get", "workflows/{wf}/versions", None),
    ("get", "workflows/{wf}/versions/1", None),
    ("post", "workflows/{wf}/validate", {}),
    ("post", "workflows/{wf}/publish", {"version": 1}),
    ("post", "workflows/{wf}/rollback", {"version": 1}),
    ("get", "workflows/{wf}/webhook", None),
    ("post", "workflows/{wf}/webhook/rotate", None),
    ("post", "workflows/{wf}/run", {"input": {}}),
    ("get", "workflows/{wf}/runs", None),
    ("get", "workflow-runs/{run}", None),
    ("post", "workflow-runs/{run}/cancel", None),
    ("get", "workflow-runs/{run}/events", None),
    ("get", "workflow-runs/{run}/steps/{step}/logs", None),
    ("get", "approvals/{approval}", None),
    ("post", "approvals/{approval}/decide", {"approved": True}),
]
VIEWER_READS = [e for e in ENDPOINTS if e[0] == "get" and not e[1].endswith("/webhook")]
VIEWER_REFUSED = [e for e in ENDPOINTS if e not in VIEWER_READS and not e[1].endswith("/validate")]


def _call(client, world, method, path, body):
    return getattr(client, method)(f"{API}/" + path.format(**world), body, format="json")


def _unchanged(world):
    workflow = Workflow.objects.get(pk=world["wf"])
    assert (workflow.name, workflow.status, workflow.versions.count()) == ("Flow", "active", 1)
    assert WorkflowRun.objects.get(pk=world["run"]).status == "waiting"
    assert WorkflowRun.objects.count() == 1
    assert Approval.objects.get(pk=world["approval"]).decision == "pending"


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
def test_charlie_gets_404_for_acme_ids(world, charlie_api, method, path, body):
    response = _call(charlie_api, world, method, path, body)

    assert_envelope(response, 404, "not_found")
    _unchanged(world)


@pytest.mark.django_db
def test_charlie_lists_none_of_acme(world, charlie_api):
    for path in ("workflows/", "approvals/", "approvals/?scope=all"):
        assert charlie_api.get(f"{API}/{path}").json()["count"] == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "body"), VIEWER_READS, ids=[f"{m} {p}" for m, p, _ in VIEWER_READS]
)
def test_viewer_may_read(world, viewer, method, path, body):
    assert _call(as_user(viewer), world, method, path, body).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "body"), VIEWER_REFUSED, ids=[f"{m} {p}" for m, p, _ in VIEWER_REFUSED]
)
def test_viewer_may_not_write(world, viewer, method, path, body):
    response = _call(as_user(viewer), world, method, path, body)

    assert response.status_code == 403, response.content
    _unchanged(world)


# ------------------------------------------------------------------ runs


@pytest.mark.django_db
def test_running_an_unpublished_workflow_is_409_but_a_test_run_works(alice_api):
    wf = create(alice_api, graph=transform_graph())
    url = f"{API}/workflows/{wf['id']}/run"

    assert_envelope(alice_api.post(url, {"input": {"name": "Ada"}}, format="json"), 409, "not_published")
    response = alice_api.post(url, {"input": {"name": "Ada"}, "test": True}, format="json")

    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["source"], body["version"], body["input"]) == ("test", 1, {"name": "Ada"})
    assert response["Location"] == f"/api/v1/workflow-runs/{body['id']}"


@pytest.mark.django_db
def test_run_input_must_be_an_object_or_a_text(alice_api):
    wf = create(alice_api, graph=transform_graph())
    url = f"{API}/workflows/{wf['id']}/run"

    body = assert_envelope(
        alice_api.post(url, {"input": [1, 2], "test": True}, format="json"), 400, "invalid"
    )
    assert "input" in body["field_errors"]
    text = alice_api.post(url, {"input": "hi", "test": True}, format="json").json()
    assert text["input"] == {"text": "hi"}


@pytest.mark.django_db(transaction=True)
def test_run_through_the_api_succeeds_with_steps_events_and_logs(alice_api, celery_worker):
    wf = create(alice_api, graph=transform_graph())
    alice_api.post(f"{API}/workflows/{wf['id']}/publish", {}, format="json")

    response = alice_api.post(f"{API}/workflows/{wf['id']}/run", {"input": {"name": "Ada"}}, format="json")

    assert response.status_code == 202, response.content
    run = finished(WorkflowRun.objects.get(pk=response.json()["id"]))
    body = alice_api.get(f"{API}/workflow-runs/{run.pk}").json()
    assert (body["status"], body["source"], body["output"]) == ("succeeded", "api", {"greeting": "Hello Ada"})
    assert [s["node_id"] for s in body["steps"]] == ["start", "shape", "out"]
    assert all(s["status"] == "succeeded" for s in body["steps"]) and body["duration_ms"] is not None
    listed = alice_api.get(f"{API}/workflows/{wf['id']}/runs").json()
    assert [r["id"] for r in listed["results"]] == [run.pk]

    events = alice_api.get(f"{API}/workflow-runs/{run.pk}/events").json()
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1)) and events[-1]["type"] == "done"
    later = alice_api.get(f"{API}/workflow-runs/{run.pk}/events?after={seqs[-3]}").json()
    assert [e["seq"] for e in later] == seqs[-2:]
    assert_envelope(alice_api.get(f"{API}/workflow-runs/{run.pk}/events?after=-1"), 400, "invalid")

    shape = next(s for s in body["steps"] if s["node_id"] == "shape")
    logs = alice_api.get(f"{API}/workflow-runs/{run.pk}/steps/{shape['id']}/logs").json()
    assert (logs["node_id"], logs["status"], logs["run_id"]) == ("shape", "succeeded", run.pk)
    assert isinstance(logs["logs"], list)
    assert_envelope(alice_api.get(f"{API}/workflow-runs/{run.pk}/steps/999999/logs"), 404, "not_found")

    assert_envelope(alice_api.post(f"{API}/workflow-runs/{run.pk}/cancel"), 409, "finished")


# ------------------------------------------------------------- approvals


def waiting_approval(client, *assignees) -> Approval:
    wf = create(client, graph=approval_graph(*assignees))
    client.post(f"{API}/workflows/{wf['id']}/publish", {}, format="json")
    response = client.post(f"{API}/workflows/{wf['id']}/run", {"input": {"what": "v2"}}, format="json")
    assert response.status_code == 202, response.content
    return wait_for(lambda: Approval.objects.filter(run_id=response.json()["id"]).first(), timeout=20)


@pytest.mark.django_db(transaction=True)
def test_approval_is_decided_once_by_an_assignee_and_the_run_continues(
    alice_api, bob, viewer, charlie_api, celery_worker
):
    approval = waiting_approval(alice_api, "bob@example.com")
    bob_api = as_user(bob)
    url = f"{API}/approvals/{approval.pk}"

    inbox = bob_api.get(f"{API}/approvals/").json()["results"]
    assert [(a["id"], a["title"], a["can_decide"]) for a in inbox] == [(approval.pk, "Ship v2?", True)]
    assert inbox[0]["assignees"] == ["bob@example.com"] and inbox[0]["node_id"] == "ok"
    assert as_user(viewer).get(f"{API}/approvals/").json()["count"] == 0
    assert as_user(viewer).get(f"{API}/approvals/?scope=all").json()["count"] == 1
    assert_envelope(charlie_api.get(url), 404, "not_found")
    assert_envelope(charlie_api.post(url + "/decide", {"approved": True}, format="json"), 404, "not_found")
    not_assignee = as_user(viewer).post(url + "/decide", {"approved": True}, format="json")
    assert_envelope(not_assignee, 403, "not_assignee")

    decided = bob_api.post(url + "/decide", {"approved": True, "comment": "go"}, format="json")

    assert decided.status_code == 200, decided.content
    body = decided.json()
    assert (body["decision"], body["decided_by"], body["comment"], body["can_decide"]) == (
        "approved",
        "bob@example.com",
        "go",
        False,
    )
    twice = bob_api.post(url + "/decide", {"approved": False}, format="json")
    assert_envelope(twice, 409, "already_decided")
    run = finished(approval.run)
    assert (run.status, run.output) == ("succeeded", "approved")
    assert bob_api.get(f"{API}/approvals/").json()["count"] == 0
    assert bob_api.get(f"{API}/approvals/?decision=approved").json()["count"] == 1


@pytest.mark.django_db(transaction=True)
def test_cancelling_a_waiting_run_stops_it(alice_api, celery_worker):
    approval = waiting_approval(alice_api)

    response = alice_api.post(f"{API}/workflow-runs/{approval.run_id}/cancel")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    assert_envelope(alice_api.post(f"{API}/workflow-runs/{approval.run_id}/cancel"), 409, "finished")


# ------------------------------------------------------------- templates


@pytest.mark.django_db
def test_templates_gallery_filters_and_installs_into_my_org(alice_api, viewer, acme):
    sync_templates()
    sales = alice_api.get(f"{API}/workflow-templates/?category=sales").json()["results"]
    assert sales and {t["category"] for t in sales} == {"sales"}
    template = WorkflowTemplate.objects.get(pk=sales[0]["id"])
    detail = alice_api.get(f"{API}/workflow-templates/{template.pk}").json()
    assert detail["graph"]["nodes"] and detail["node_count"] == len(detail["graph"]["nodes"])
    assert_envelope(
        as_user(viewer).post(f"{API}/workflow-templates/{template.pk}/install"), 403, "permission_denied"
    )

    response = alice_api.post(f"{API}/workflow-templates/{template.pk}/install")

    assert response.status_code == 201, response.content
    workflow = Workflow.objects.for_org(acme).get(pk=response.json()["id"])
    assert workflow.template_id == template.pk and response.json()["name"] == template.name
    template.refresh_from_db()
    assert template.installs == 1
    assert_envelope(alice_api.get(f"{API}/workflow-templates/?category=toys"), 400, "invalid")
    assert_envelope(alice_api.get(f"{API}/workflow-templates/999999"), 404, "not_found")


# --------------------------------------------------------------- webhook


@pytest.mark.django_db
def test_webhook_settings_are_for_admins_and_rotate_changes_the_secret(alice_api, bob):
    wf = create(alice_api, graph=transform_graph("webhook"))
    url = f"{API}/workflows/{wf['id']}/webhook"
    before = alice_api.get(url).json()
    assert (before["enabled"], before["has_secret"], before["secret"]) == (False, False, None)
    alice_api.post(f"{API}/workflows/{wf['id']}/publish", {}, format="json")

    info = alice_api.get(url).json()

    token = Workflow.objects.get(pk=wf["id"]).webhook_token
    assert info["path"] == f"/hooks/workflows/{token}" and info["url"].endswith(info["path"])
    assert info["enabled"] and info["has_secret"] and len(info["secret"]) > 20
    assert_envelope(as_user(bob).get(url), 403, "permission_denied")
    assert_envelope(as_user(bob).post(url + "/rotate"), 403, "permission_denied")
    rotated = alice_api.post(url + "/rotate").json()
    assert rotated["secret"] != info["secret"] and alice_api.get(url).json()["secret"] == rotated["secret"]

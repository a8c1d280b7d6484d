"""The workflows pages: list and create, the builder's endpoints (save, validate, publish, test run, node
panel), run history and detail, approvals (inbox and emailed link), and the templates gallery.
Charlie sees none of Acme's ids (404); viewers read but cannot write (403)."""

from __future__ import annotations

import json

import pytest

from accounts.models import Role
from agents import services as agent_services
from tests.agents.conftest import make_config
from tests.factories import MembershipFactory, UserFactory
from workflows import engine, services
from workflows.graph import NODE_TYPES
from workflows.models import Approval, Workflow, WorkflowRun, WorkflowTemplate, WorkflowVersion

from .conftest import chain, edge, node

pytestmark = pytest.mark.django_db


def _login(client, user, org):
    client.force_login(user)
    client.post("/orgs/switch/", {"org": org.pk})
    return client


def simple_graph():
    return {
        "nodes": [
            node("start", "trigger", kind="manual"),
            node("shape", "transform", mapping={"greeting": "Hello {{ input.text }}"}),
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


def post_json(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


@pytest.fixture
def viewer(acme):
    user = UserFactory(email="vera@example.com", name="Vera")
    MembershipFactory(organization=acme, user=user, role=Role.VIEWER)
    return user


@pytest.fixture
def flow(acme, alice):
    return services.workflow_create(org=acme, by=alice, name="Greeter", graph=simple_graph())


@pytest.fixture
def waiting(acme, alice):
    """A published workflow whose run waits at an approval assigned to bob (steps run in this process)."""
    workflow = services.workflow_create(
        org=acme, by=alice, name="Ship it", graph=approval_graph("bob@example.com")
    )
    services.workflow_publish(workflow=workflow, by=alice)
    run = services.run_start(workflow=workflow, by=alice, input={"what": "v2"})
    engine.execute_step(run.steps.get().pk)
    engine.execute_step(run.steps.get(node_id="ok").pk)
    return Approval.objects.get(run=run)


# ---------------------------------------------------------------- list and create


def test_list_shows_status_last_run_and_run_count(client, alice, acme, flow):
    services.workflow_publish(workflow=flow, by=alice)
    run = services.run_start(workflow=flow, by=alice, input="hi")
    response = _login(client, alice, acme).get("/workflows/")
    assert response.status_code == 200
    rows = response.context["page"].object_list
    assert [(w.name, w.status, w.runs_count, w.last_run_id) for w in rows] == [
        ("Greeter", "active", 1, run.pk)
    ]
    html = response.content.decode()
    assert f"/workflows/{flow.pk}/builder/" in html
    assert f"/workflows/{flow.pk}/run/" in html  # the run button, for a published workflow


def test_empty_list_points_to_templates(client, alice, acme):
    html = _login(client, alice, acme).get("/workflows/").content.decode()
    assert "No workflows in Acme yet" in html
    assert 'href="/workflows/templates/"' in html


def test_create_with_blank_name_shows_the_error_beside_the_field(client, alice, acme):
    response = _login(client, alice, acme).post("/workflows/new/", {"name": "  ", "description": "x"})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_name_errors"' in html
    assert 'aria-invalid="true"' in html
    assert not Workflow.objects.exists()


def test_create_makes_a_starter_version_and_opens_the_builder(client, alice, acme):
    response = _login(client, alice, acme).post("/workflows/new/", {"name": "Onboarding", "description": ""})
    workflow = Workflow.objects.get(organization=acme)
    assert response.status_code == 302 and response["Location"] == f"/workflows/{workflow.pk}/builder/"
    assert workflow.name == "Onboarding" and workflow.versions.count() == 1


def test_run_now_on_an_unpublished_workflow_says_why(client, alice, acme, flow):
    response = _login(client, alice, acme).post(f"/workflows/{flow.pk}/run/", follow=True)
    assert "Publish the workflow before running it" in response.content.decode()
    assert not WorkflowRun.objects.exists()


def test_run_now_starts_the_published_version(client, alice, acme, flow):
    services.workflow_publish(workflow=flow, by=alice)
    response = _login(client, alice, acme).post(f"/workflows/{flow.pk}/run/", {"input": '{"text": "Ada"}'})
    run = WorkflowRun.objects.get()
    assert response["Location"] == f"/workflows/runs/{run.pk}/"
    assert (run.source, run.input, run.user) == ("manual", {"text": "Ada"}, alice)


# ---------------------------------------------------------------- builder


def test_builder_page_carries_the_graph_and_the_palette(client, alice, acme, flow):
    response = _login(client, alice, acme).get(f"/workflows/{flow.pk}/builder/")
    assert response.status_code == 200
    config = response.context["builder_config"]
    assert [n["id"] for n in config["graph"]["nodes"]] == ["start", "shape", "out"]
    assert config["readOnly"] is False
    catalog = {t["type"]: t for t in config["catalog"]}
    assert catalog["condition"]["ports"] == ["true", "false", "error"]
    assert catalog["router"]["dynamic_ports"] == "labels"
    assert catalog["end"]["error_port"] is False and catalog["trigger"]["inputs"] == 0
    html = response.content.decode()
    for label in ("Triggers", "AI", "Logic", "Data", "Integrations"):
        assert f">{label}</h3>" in html
    assert 'data-testid="palette-transform"' in html and "drawflow.min.js" in html


def test_save_with_an_invalid_graph_answers_errors_per_node(client, alice, acme, flow):
    graph = simple_graph()
    graph["nodes"].append(node("again", "loop", mode="while", condition="len(last) < 3"))
    graph["nodes"].append(node("lost", "transform", mapping={"x": "{{ nodes.nowhere.output }}"}))
    graph["edges"].append(edge("shape", "again"))
    response = post_json(_login(client, alice, acme), f"/workflows/{flow.pk}/builder/save/", {"graph": graph})
    assert response.status_code == 400
    body = response.json()
    assert body["ok"] is False and "marked in red" in body["detail"]
    assert any("maximum number of iterations" in m for m in body["errors"]["again"])
    assert any("not reachable" in m for m in body["errors"]["lost"])
    assert any("'nowhere'" in m for m in body["errors"]["lost"])
    assert "shape" not in body["errors"]
    assert flow.versions.count() == 1


def test_save_makes_a_new_draft_version_only_when_the_graph_changed(client, alice, acme, flow):
    client = _login(client, alice, acme)
    url = f"/workflows/{flow.pk}/builder/save/"
    same = post_json(client, url, {"graph": flow.latest_version().graph})
    assert same.status_code == 200 and same.json()["created"] is False
    graph = simple_graph()
    graph["nodes"][1]["position"] = {"x": 300, "y": 80}
    moved = post_json(client, url, {"graph": graph})
    assert moved.status_code == 200 and moved.json() == {
        "ok": True,
        "version": 2,
        "created": True,
        "detail": "Saved as version 2 (draft).",
    }
    version = flow.latest_version()
    assert version.number == 2 and version.graph["nodes"][1]["position"] == {"x": 300, "y": 80}
    flow.refresh_from_db()
    assert flow.status == "draft" and flow.published_version is None


def test_save_of_a_graph_that_is_not_json_is_refused(client, alice, acme, flow):
    response = _login(client, alice, acme).post(
        f"/workflows/{flow.pk}/builder/save/", "{nodes:", content_type="application/json"
    )
    assert response.status_code == 400 and "Not valid JSON" in response.json()["detail"]


def test_validate_checks_without_saving(client, alice, acme, flow):
    client = _login(client, alice, acme)
    bad = {"nodes": [node("out", "end")], "edges": []}
    response = post_json(client, f"/workflows/{flow.pk}/builder/validate/", {"graph": bad})
    assert response.status_code == 400 and response.json()["errors"]["graph"] == [
        "A workflow needs a trigger node."
    ]
    good = post_json(client, f"/workflows/{flow.pk}/builder/validate/", {"graph": simple_graph()})
    assert good.json() == {"ok": True, "detail": "The workflow is valid."}
    assert flow.versions.count() == 1


def test_publish_saves_and_makes_the_version_live(client, alice, acme, flow):
    graph = simple_graph()
    graph["nodes"][0]["config"]["kind"] = "webhook"
    response = post_json(
        _login(client, alice, acme), f"/workflows/{flow.pk}/builder/publish/", {"graph": graph}
    )
    assert response.status_code == 200 and response.json()["version"] == 2
    flow.refresh_from_db()
    assert flow.status == "active" and flow.published_version.number == 2
    assert flow.triggers[0]["kind"] == "webhook"


def test_test_run_saves_the_canvas_and_runs_that_version(client, alice, acme, flow):
    graph = simple_graph()
    graph["nodes"][1]["config"]["mapping"] = {"greeting": "Hi {{ input.text }}"}
    response = post_json(
        _login(client, alice, acme),
        f"/workflows/{flow.pk}/builder/test-run/",
        {"graph": graph, "input": "Ada"},
    )
    assert response.status_code == 201, response.content
    run = WorkflowRun.objects.get()
    assert response.json()["ws_url"] == f"/ws/workflow-runs/{run.pk}/?format=json"
    assert (run.source, run.input, run.version.number) == ("test", {"text": "Ada"}, 2)
    assert run.version.graph["nodes"][1]["config"]["mapping"] == {"greeting": "Hi {{ input.text }}"}


def test_test_run_with_bad_json_input_is_refused(client, alice, acme, flow):
    response = post_json(
        _login(client, alice, acme),
        f"/workflows/{flow.pk}/builder/test-run/",
        {"graph": simple_graph(), "input": "{oops"},
    )
    assert response.status_code == 400 and "not valid JSON" in response.json()["detail"]
    assert not WorkflowRun.objects.exists()


@pytest.mark.parametrize("node_type", sorted(NODE_TYPES))
def test_every_node_type_has_a_panel_form(client, alice, acme, flow, node_type):
    spec = NODE_TYPES[node_type]
    draft = {"id": "n1", "type": node_type, "name": spec.label, "config": dict(spec.defaults)}
    response = _login(client, alice, acme).post(
        f"/workflows/{flow.pk}/builder/node/", {"node": json.dumps(draft)}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert f'name="node_type" value="{node_type}"' in html and 'value="n1"' in html
    assert spec.label in html and "Apply</button>" in html


def test_node_panel_offers_only_this_orgs_agents(client, alice, acme, flow, charlie, charlie_org, make_agent):
    mine = make_agent(name="Writer")
    theirs = agent_services.agent_create(
        org=charlie_org, by=charlie, name="Spy", config=make_config(), publish=True
    )
    draft = {"id": "draft", "type": "agent", "name": "Draft", "config": {"agent_id": mine.pk}}
    response = _login(client, alice, acme).post(
        f"/workflows/{flow.pk}/builder/node/", {"node": json.dumps(draft), "other_ids": "start,out"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert f'<option value="{mine.pk}" selected>Writer</option>' in html
    assert ">Spy<" not in html and f'<option value="{theirs.pk}"' not in html
    assert "{{ input.text }}</textarea>" in html  # the type's default input template


def test_node_apply_turns_fields_into_config_for_the_canvas(client, alice, acme, flow):
    response = _login(client, alice, acme).post(
        f"/workflows/{flow.pk}/builder/node/apply/",
        {
            "node_type": "router",
            "original_id": "router",
            "other_ids": "start,out",
            "node_id": "triage",
            "name": "Triage",
            "labels": "billing, tech , sales",
            "input": "{{ input.text }}",
            "instructions": "",
            "agent_id": "",
            "retry_max_attempts": "2",
            "retry_backoff_seconds": "1.5",
            "node_timeout_seconds": "",
        },
    )
    assert response.status_code == 200
    event = json.loads(response["HX-Trigger"])["wf-node-saved"]
    assert event == {
        "original_id": "router",
        "node": {
            "type": "router",
            "id": "triage",
            "name": "Triage",
            "config": {"labels": ["billing", "tech", "sales"], "input": "{{ input.text }}"},
            "retry": {"max_attempts": 2, "backoff_seconds": 1.5},
        },
    }
    assert 'data-node-id="triage"' in response.content.decode()


@pytest.mark.parametrize(
    ("node_type", "fields", "field", "message"),
    [
        ("router", {"labels": "only-one"}, "labels", "at least two labels"),
        ("loop", {"mode": "while", "condition": "len(last) < 3"}, "max_iterations", "This field is required"),
        ("condition", {"expression": "__import__('os')"}, "expression", ""),
        ("transform", {"mapping": "no colon here"}, "mapping", "write `name: value`"),
        (
            "approval",
            {"title": "OK?", "on_timeout": "timeout", "assignees": "stranger@example.com"},
            "assignees",
            "Not members",
        ),
        ("trigger", {"kind": "schedule", "cron": "every day"}, "cron", ""),
    ],
)
def test_node_apply_shows_field_errors_in_the_panel(
    client, alice, acme, flow, node_type, fields, field, message
):
    data = {
        "node_type": node_type,
        "original_id": "n",
        "node_id": "n",
        "retry_max_attempts": "1",
        "retry_backoff_seconds": "2",
    }
    response = _login(client, alice, acme).post(
        f"/workflows/{flow.pk}/builder/node/apply/", {**data, **fields}
    )
    assert response.status_code == 200
    assert "HX-Trigger" not in response
    html = response.content.decode()
    assert f'id="wfn-{field}_errors"' in html
    assert message in html


def test_node_apply_rejects_a_duplicate_id(client, alice, acme, flow):
    response = _login(client, alice, acme).post(
        f"/workflows/{flow.pk}/builder/node/apply/",
        {
            "node_type": "parallel",
            "original_id": "p",
            "node_id": "shape",
            "other_ids": "start,shape,out",
            "retry_max_attempts": "1",
            "retry_backoff_seconds": "2",
        },
    )
    assert "Another step already has this id." in response.content.decode() and "HX-Trigger" not in response


# ---------------------------------------------------------------- roles and tenancy


def test_viewer_reads_the_builder_but_cannot_change_anything(client, viewer, acme, flow):
    client = _login(client, viewer, acme)
    page = client.get(f"/workflows/{flow.pk}/builder/")
    assert page.status_code == 200 and page.context["builder_config"]["readOnly"] is True
    html = page.content.decode()
    assert 'data-action="save"' not in html and "palette-transform" not in html
    panel = client.post(
        f"/workflows/{flow.pk}/builder/node/", {"node": json.dumps(simple_graph()["nodes"][1])}
    )
    assert (
        panel.status_code == 200
        and "disabled" in panel.content.decode()
        and "Apply</button>" not in panel.content.decode()
    )
    for action in ("save", "validate", "publish", "test-run"):
        response = post_json(client, f"/workflows/{flow.pk}/builder/{action}/", {"graph": simple_graph()})
        assert response.status_code == 403, action
    assert client.post(f"/workflows/{flow.pk}/builder/node/apply/", {"node_type": "end"}).status_code == 403
    assert client.post("/workflows/new/", {"name": "Nope"}).status_code == 403
    assert client.post(f"/workflows/{flow.pk}/run/").status_code == 403
    assert flow.versions.count() == 1 and Workflow.objects.count() == 1 and not WorkflowRun.objects.exists()


@pytest.fixture
def acme_ids(acme, alice, flow, waiting):
    return {"wf": flow.pk, "run": waiting.run_id, "approval": waiting.pk}


ACME_PAGES = [
    ("get", "/workflows/{wf}/"),
    ("get", "/workflows/{wf}/builder/"),
    ("get", "/workflows/{wf}/runs/"),
    ("get", "/workflows/runs/{run}/"),
    ("post", "/workflows/{wf}/builder/save/"),
    ("post", "/workflows/{wf}/builder/validate/"),
    ("post", "/workflows/{wf}/builder/publish/"),
    ("post", "/workflows/{wf}/builder/test-run/"),
    ("post", "/workflows/{wf}/builder/node/"),
    ("post", "/workflows/{wf}/builder/node/apply/"),
    ("post", "/workflows/{wf}/run/"),
    ("post", "/workflows/runs/{run}/cancel/"),
    ("post", "/workflows/approvals/{approval}/decide/"),
]


@pytest.mark.parametrize(("method", "path"), ACME_PAGES)
def test_charlie_gets_404_for_acme_ids(client, charlie, charlie_org, acme_ids, method, path):
    client = _login(client, charlie, charlie_org)
    url = path.format(**acme_ids)
    response = (
        client.get(url) if method == "get" else client.post(url, {"decision": "approve", "node_type": "end"})
    )
    assert response.status_code == 404, url
    assert Approval.objects.get(pk=acme_ids["approval"]).decision == "pending"
    assert WorkflowVersion.objects.filter(workflow_id=acme_ids["wf"]).count() == 1


def test_charlie_sees_none_of_acme_in_lists(client, charlie, charlie_org, acme_ids):
    client = _login(client, charlie, charlie_org)
    assert "Greeter" not in client.get("/workflows/").content.decode()
    assert "Ship v2" not in client.get("/workflows/approvals/").content.decode()


def test_anonymous_is_sent_to_sign_in(client, flow):
    response = client.get(f"/workflows/{flow.pk}/builder/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# ---------------------------------------------------------------- runs


def test_run_detail_shows_each_step_and_the_approval_buttons_to_its_assignee(client, bob, acme, waiting):
    response = _login(client, bob, acme).get(f"/workflows/runs/{waiting.run_id}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert [s["step"].node_id for s in response.context["steps"]] == ["start", "ok"]
    assert 'data-status="waiting"' in html and "Waiting for approval" in html
    assert f"/workflows/approvals/{waiting.pk}/decide/" in html
    assert f'ws-connect="/ws/workflow-runs/{waiting.run_id}/?after={waiting.run.last_seq}"' in html
    assert f"/workflows/runs/{waiting.run_id}/cancel/" in html


def test_run_detail_hides_approval_buttons_from_others(client, alice, acme, waiting):
    # alice owns the org (admins may decide too), so use a plain member who is not the assignee
    other = UserFactory(email="mo@example.com")
    MembershipFactory(organization=acme, user=other, role=Role.MEMBER)
    html = _login(client, other, acme).get(f"/workflows/runs/{waiting.run_id}/").content.decode()
    assert f"/workflows/approvals/{waiting.pk}/decide/" not in html
    assert "You are not one of the people who can decide it." in html


def test_runs_list_paginates(client, alice, acme, flow):
    services.workflow_publish(workflow=flow, by=alice)
    for i in range(27):
        services.run_start(workflow=flow, by=alice, input={"text": str(i)})
    client = _login(client, alice, acme)
    first = client.get(f"/workflows/{flow.pk}/runs/")
    assert len(first.context["page"].object_list) == 25 and "Page 1 of 2" in first.content.decode()
    assert len(client.get(f"/workflows/{flow.pk}/runs/?page=2").context["page"].object_list) == 2
    assert client.get(f"/workflows/{flow.pk}/runs/?status=succeeded").context["page"].paginator.count == 0


def test_cancel_an_active_run_then_cancelling_again_explains_why(client, alice, acme, waiting):
    client = _login(client, alice, acme)
    response = client.post(f"/workflows/runs/{waiting.run_id}/cancel/", follow=True)
    assert f"Run #{waiting.run_id} is cancelled." in response.content.decode()
    assert WorkflowRun.objects.get(pk=waiting.run_id).status == "cancelled"
    again = client.post(f"/workflows/runs/{waiting.run_id}/cancel/", follow=True)
    assert "nothing to cancel" in again.content.decode()


def test_viewer_cannot_cancel(client, viewer, acme, waiting):
    assert _login(client, viewer, acme).post(f"/workflows/runs/{waiting.run_id}/cancel/").status_code == 403
    assert WorkflowRun.objects.get(pk=waiting.run_id).status == "waiting"


# ---------------------------------------------------------------- approvals


def test_inbox_lists_what_the_user_may_decide(client, bob, acme, waiting):
    response = _login(client, bob, acme).get("/workflows/approvals/")
    assert [a.pk for a in response.context["pending"]] == [waiting.pk]
    assert "Ship v2?" in response.content.decode()


def test_inbox_hides_approvals_for_someone_else(client, acme, waiting):
    other = UserFactory(email="mo@example.com")
    MembershipFactory(organization=acme, user=other, role=Role.MEMBER)
    response = _login(client, other, acme).get("/workflows/approvals/")
    assert (
        response.context["pending"] == [] and "Nothing waits for your decision." in response.content.decode()
    )


def test_decide_from_the_inbox_then_twice_is_409(client, bob, acme, waiting):
    client = _login(client, bob, acme)
    url = f"/workflows/approvals/{waiting.pk}/decide/"
    response = client.post(url, {"decision": "approve", "comment": "ship it"})
    assert response.status_code == 302 and response["Location"] == "/workflows/approvals/"
    waiting.refresh_from_db()
    assert (waiting.decision, waiting.decided_by, waiting.comment) == ("approved", bob, "ship it")
    again = client.post(url, {"decision": "reject"})
    assert again.status_code == 409
    assert "This approval was already approved." in again.content.decode()
    recent = client.get("/workflows/approvals/")
    assert [a.pk for a in recent.context["decided"]] == [waiting.pk]


def test_decide_by_someone_not_assigned_is_403_and_changes_nothing(client, acme, waiting):
    other = UserFactory(email="mo@example.com")
    MembershipFactory(organization=acme, user=other, role=Role.MEMBER)
    response = _login(client, other, acme).post(
        f"/workflows/approvals/{waiting.pk}/decide/", {"decision": "approve"}
    )
    assert response.status_code == 403
    assert "not one of the people" in response.content.decode()
    waiting.refresh_from_db()
    assert waiting.decision == "pending"


def test_decide_over_htmx_refreshes_or_answers_the_error_inline(client, bob, acme, waiting):
    client = _login(client, bob, acme)
    url = f"/workflows/approvals/{waiting.pk}/decide/"
    ok = client.post(url, {"decision": "reject"}, HTTP_HX_REQUEST="true")
    assert ok.status_code == 204 and ok["HX-Refresh"] == "true"
    late = client.post(url, {"decision": "approve"}, HTTP_HX_REQUEST="true")
    assert late.status_code == 200 and late["HX-Retarget"] == f"#approval-{waiting.pk}-alert"
    assert "already rejected" in late.content.decode()


def test_emailed_link_shows_the_approval_and_decides_as_its_assignee(client, bob, waiting):
    token = services.approval_token(waiting, bob)
    page = client.get(f"/workflows/approvals/decide/{token}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Ship v2?" in html and "bob@example.com" in html and 'value="approve"' in html
    done = client.post(f"/workflows/approvals/decide/{token}/", {"decision": "reject", "comment": "not now"})
    assert done.status_code == 200 and "recorded as rejected" in done.content.decode()
    waiting.refresh_from_db()
    assert (waiting.decision, waiting.decided_by, waiting.comment) == ("rejected", bob, "not now")
    again = client.post(f"/workflows/approvals/decide/{token}/", {"decision": "approve"})
    assert again.status_code == 409 and "already rejected" in again.content.decode()


def test_emailed_link_with_a_bad_token_is_a_clear_404(client, bob, waiting):
    token = services.approval_token(waiting, bob)
    response = client.get(f"/workflows/approvals/decide/{token[:-2]}xx/")
    assert response.status_code == 404
    assert "This link does not work" in response.content.decode()
    waiting.refresh_from_db()
    assert waiting.decision == "pending"


def test_emailed_link_after_expiry_is_400(client, bob, waiting):
    from datetime import timedelta

    from django.utils import timezone

    Approval.objects.filter(pk=waiting.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    token = services.approval_token(waiting, bob)
    response = client.post(f"/workflows/approvals/decide/{token}/", {"decision": "approve"})
    assert response.status_code == 400 and "expired" in response.content.decode()
    waiting.refresh_from_db()
    assert waiting.decision == "pending"


# ---------------------------------------------------------------- templates gallery


@pytest.fixture
def gallery_templates(db):
    graph = simple_graph()
    return [
        WorkflowTemplate.objects.create(
            slug="ui-test-greeter", name="UI greeter", category="hr", description="Says hello.", graph=graph
        ),
        WorkflowTemplate.objects.create(
            slug="ui-test-hidden",
            name="UI hidden",
            category="hr",
            description="Not published.",
            graph=graph,
            is_published=False,
        ),
        WorkflowTemplate.objects.create(
            slug="ui-test-sales", name="UI pipeline", category="sales", description="Sales.", graph=graph
        ),
    ]


def test_gallery_filters_by_category_and_lists_steps(client, alice, acme, gallery_templates):
    response = _login(client, alice, acme).get("/workflows/templates/?category=hr")
    slugs = [item["template"].slug for item in response.context["items"]]
    assert "ui-test-greeter" in slugs and "ui-test-sales" not in slugs and "ui-test-hidden" not in slugs
    assert all(item["template"].category == "hr" for item in response.context["items"])
    greeter = next(i for i in response.context["items"] if i["template"].slug == "ui-test-greeter")
    assert [s["id"] for s in greeter["steps"]] == ["start", "shape", "out"]


def test_template_preview_and_install(client, alice, acme, gallery_templates):
    template = gallery_templates[0]
    client = _login(client, alice, acme)
    preview = client.get(f"/workflows/templates/{template.pk}/")
    assert preview.status_code == 200 and preview.context["builder_config"]["readOnly"] is True
    assert client.get(f"/workflows/templates/{gallery_templates[1].pk}/").status_code == 404
    response = client.post(f"/workflows/templates/{template.pk}/install/")
    workflow = Workflow.objects.get(organization=acme)
    assert response["Location"] == f"/workflows/{workflow.pk}/builder/"
    assert (
        workflow.template == template and workflow.latest_version().graph["edges"] == template.graph["edges"]
    )
    template.refresh_from_db()
    assert template.installs == 1


def test_viewer_cannot_install(client, viewer, acme, gallery_templates):
    response = _login(client, viewer, acme).post(f"/workflows/templates/{gallery_templates[0].pk}/install/")
    assert response.status_code == 403 and not Workflow.objects.exists()

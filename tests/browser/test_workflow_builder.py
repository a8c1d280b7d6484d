"""Build a three-step workflow on the Drawflow canvas (trigger -> transform -> end) from the palette,
connect the steps by dragging from outputs to inputs, see an unconnected step marked in red on save,
then test-run it and watch every step light up green over the websocket with the output shown.
daphne serves the app (live_server is WSGI only, without websockets); a real Celery worker runs it."""

from __future__ import annotations

import pytest

from accounts.services import organization_create
from tests.browser.conftest import daphne
from tests.conftest import PASSWORD
from tests.factories import UserFactory
from workflows.models import Workflow, WorkflowRun

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def asgi_server(transactional_db):
    with daphne() as url:
        yield url


def _center(locator):
    box = locator.bounding_box()
    assert box, "the element is not on screen"
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def _connect(page, source: str, target: str, port: str = "out"):
    """Drag from a node's output port to another node's input, like a person with a mouse."""
    out = page.locator(f'[data-testid="node-{source}"] .output[data-port="{port}"]')
    into = page.locator(f'[data-testid="node-{target}"] .input')
    page.locator("#wf-canvas").scroll_into_view_if_needed()
    x1, y1 = _center(out)
    x2, y2 = _center(into)
    page.mouse.move(x1, y1)
    page.mouse.down()
    page.mouse.move((x1 + x2) / 2, (y1 + y2) / 2 + 20, steps=5)
    page.mouse.move(x2, y2, steps=5)
    page.mouse.up()


def test_build_three_steps_on_the_canvas_and_watch_a_test_run_succeed(
    asgi_server, celery_worker, page, artifacts
):
    organization_create(name="Pat Labs", owner=UserFactory(email="pat@example.com", name="Pat"))

    page.goto(asgi_server + "/accounts/login/")
    page.fill("input[name=login]", "pat@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url("**/dashboard/")

    # Create a workflow from the list page; it opens in the builder.
    page.goto(asgi_server + "/workflows/")
    page.get_by_role("link", name="New workflow").click()
    page.fill("#id_name", "Greeter")
    page.get_by_role("button", name="Create and open the builder").click()
    page.wait_for_url("**/builder/")
    workflow = Workflow.objects.get(name="Greeter")
    page.wait_for_selector('[data-testid="node-start"]')  # the starter graph is drawn

    # Start from an empty canvas and build trigger -> transform -> end from the palette.
    page.get_by_role("button", name="Clear").click()
    assert page.locator(".drawflow-node").count() == 0
    canvas = page.locator("#wf-canvas")
    for kind, x in (("trigger", 60), ("transform", 330), ("end", 600)):
        page.drag_and_drop(
            f'[data-testid="palette-{kind}"]', "#wf-canvas", target_position={"x": x, "y": 140}
        )
        page.wait_for_selector(f'[data-testid="node-{kind}"]')
        page.wait_for_selector(f'[data-node-panel][data-node-id="{kind}"]')  # its settings open beside
    assert canvas.locator(".drawflow-node").count() == 3
    assert page.locator('[data-testid="node-transform"] .output').count() == 2  # out and error

    # Configure the transform in its side panel.
    page.locator('[data-testid="node-transform"] .wf-node-name').click()
    page.wait_for_selector('[data-node-panel][data-node-id="transform"]')
    page.fill("#wfn-mapping", "greeting: Hello {{ input.text }}")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_selector('[data-testid="node-applied"]')

    # Saving now fails: nothing is connected, and the canvas marks the stranded steps in red.
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_selector('[data-testid="node-transform"].wf-node-error')
    assert (
        "not reachable from a trigger"
        in page.locator('[data-testid="node-transform"] .wf-node-errors').inner_text()
    )
    assert "wf-node-error" not in (page.locator('[data-testid="node-trigger"]').get_attribute("class") or "")
    assert workflow.versions.count() == 1

    # Connect by dragging output -> input.
    _connect(page, "trigger", "transform")
    _connect(page, "transform", "end")
    assert page.locator(".drawflow .connection").count() == 2

    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_selector("#wf-alerts .alert-success")
    version = workflow.latest_version()
    assert version.number == 2
    assert sorted((e["source"], e["target"], e["port"]) for e in version.graph["edges"]) == [
        ("transform", "end", "out"),
        ("trigger", "transform", "out"),
    ]
    nodes = {n["id"]: n for n in version.graph["nodes"]}
    assert nodes["transform"]["config"] == {"mapping": {"greeting": "Hello {{ input.text }}"}}
    assert nodes["transform"]["position"]["x"] > nodes["trigger"]["position"]["x"]
    assert page.locator(".wf-node-error").count() == 0

    # Test run: the steps light up as the worker runs them, then the output shows.
    page.fill("#wf-test-input", "Ada")
    page.get_by_role("button", name="▶ Test run").click()
    for step in ("trigger", "transform", "end"):
        page.wait_for_selector(f'[data-testid="node-{step}"].wf-st-succeeded', timeout=30_000)
    page.wait_for_selector('#wf-run-status[data-status="succeeded"]')
    assert "Hello Ada" in page.locator('[data-testid="run-output"]').inner_text()

    run = WorkflowRun.objects.get(workflow=workflow)
    assert (run.source, run.status, run.version.number) == ("test", "succeeded", 2)
    assert run.output == {"greeting": "Hello Ada"}
    page.screenshot(path=str(artifacts / "workflow_builder.png"), full_page=True)

    # The run's page shows the timeline of the three steps.
    page.locator("#wf-run-link").click()
    page.wait_for_url(f"**/workflows/runs/{run.pk}/")
    steps = page.locator('[data-testid="run-step"]')
    assert steps.count() == 3
    assert [steps.nth(i).get_attribute("data-status") for i in range(3)] == ["succeeded"] * 3


def test_a_test_run_refused_for_credits_offers_add_credits_beside_the_message(asgi_server, page, artifacts):
    from billing import ledger
    from tests.billing.test_views import gpt_agent
    from tests.workflows.conftest import agent_graph
    from workflows import services as workflows

    owner = UserFactory(email="pat@example.com", name="Pat")
    org = organization_create(name="Pat Labs", owner=owner)
    graph = agent_graph(gpt_agent(org, owner).pk)
    workflow = workflows.workflow_create(org=org, by=owner, name="Pipeline", graph=graph)
    ledger.post(org=org, type="usage", amount=-ledger.balance(org), key="drain", description="Used up")

    page.goto(asgi_server + "/accounts/login/")
    page.fill("input[name=login]", "pat@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url("**/dashboard/")
    page.goto(f"{asgi_server}/workflows/{workflow.pk}/builder/")
    page.fill("#wf-test-input", "Hello")
    page.get_by_role("button", name="▶ Test run").click()

    alert = page.locator("#wf-alerts [role=alert]")
    alert.wait_for()
    assert "Not enough credits" in alert.inner_text()
    link = alert.get_by_role("link", name="Add credits")
    assert link.get_attribute("href") == "/billing/#buy"
    page.screenshot(path=str(artifacts / "builder-credits-refusal.png"))
    assert not WorkflowRun.objects.filter(workflow=workflow).exists()
    link.click()
    page.wait_for_url("**/billing/#buy")

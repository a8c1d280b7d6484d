"""The templates gallery: the catalog, installing into an org, and running every template on the demo model."""

from __future__ import annotations

import pytest

from agents import services as agent_services
from agents.models import Agent
from agents.runtime.providers import clients_clear
from tests.conftest import wait_for
from workflows import services
from workflows.graph import MAX_LOOP_ITERATIONS, GraphError, validate_graph
from workflows.models import Approval, StepRun, WorkflowRun, WorkflowTemplate
from workflows.templates_catalog import AGENT_TEMPLATES, CATALOG, CATALOG_BY_SLUG, materialize, sync_templates

SLUGS = [t.slug for t in CATALOG]


@pytest.fixture(autouse=True)
def no_llm_keys(monkeypatch):
    """No provider is configured: installed agents get the offline demo model."""
    for name in (
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "DEFAULT_LLM_MODEL",
    ):
        monkeypatch.delenv(name, raising=False)
    clients_clear()
    yield
    clients_clear()


def gallery(slug: str) -> WorkflowTemplate:
    # Transactional tests flush the seeded rows, so upsert them again (the same function the migration runs).
    sync_templates()
    return WorkflowTemplate.objects.get(slug=slug)


def agent_ids(graph: dict) -> set[int]:
    ids: set[int] = set()
    for node in graph["nodes"]:
        cfg = node.get("config") or {}
        ids |= {cfg[k] for k in ("agent_id", "fallback_agent_id") if k in cfg}
        ids |= set(cfg.get("agent_ids") or [])
    return ids


# ------------------------------------------------------------------------ catalog


def test_migration_seeds_the_gallery(db):
    assert set(WorkflowTemplate.objects.values_list("slug", flat=True)) == set(SLUGS)


def test_catalog_has_eight_templates_across_all_five_categories():
    assert len(CATALOG) >= 8
    assert {t.category for t in CATALOG} == set(WorkflowTemplate.Category.values)
    assert len(set(SLUGS)) == len(SLUGS)
    for spec in CATALOG:
        assert spec.complexity in WorkflowTemplate.Complexity.values
        assert 3 <= float(spec.rating) <= 5
        assert len(spec.description) > 60, spec.slug
        assert spec.sample_input, spec.slug
        assert spec.agent_templates() <= set(AGENT_TEMPLATES), spec.slug


def test_catalog_uses_a_realistic_mix_of_nodes():
    used = {n["type"] for spec in CATALOG for n in spec.graph["nodes"]}
    assert {
        "trigger",
        "agent",
        "team",
        "router",
        "condition",
        "switch",
        "loop",
        "parallel",
        "join",
        "approval",
        "transform",
        "set_variable",
        "end",
    } <= used
    kinds = {n["config"]["kind"] for spec in CATALOG for n in spec.graph["nodes"] if n["type"] == "trigger"}
    assert {"manual", "webhook", "schedule"} <= kinds
    for spec in CATALOG:
        for node in spec.graph["nodes"]:
            if node["type"] == "loop":
                assert 1 <= node["config"]["max_iterations"] <= MAX_LOOP_ITERATIONS


def test_catalog_covers_the_orchestration_patterns():
    def types(slug):
        return [n["type"] for n in CATALOG_BY_SLUG[slug].graph["nodes"]]

    def node(slug, nid):
        return next(n for n in CATALOG_BY_SLUG[slug].graph["nodes"] if n["id"] == nid)

    triage = CATALOG_BY_SLUG["support-triage"].graph
    routed = {e["port"] for e in triage["edges"] if e["source"] == "classify"}
    assert {"billing", "technical", "account", "default"} <= routed  # triage routing to specialists
    assert [t for t in types("blog-post-pipeline") if t == "agent"] == [
        "agent"
    ] * 4  # research > outline > draft > edit
    loop = node("cold-email-review-loop", "rounds")["config"]
    assert (loop["mode"], loop["max_iterations"]) == ("while", 3) and "PASS" in loop["condition"]
    assert {"parallel", "join"} <= set(types("campaign-fan-out"))
    assert "set_variable" in types("candidate-screening")  # shared context
    summarize = node("incident-summary", "summarize")
    assert summarize["retry"]["max_attempts"] > 1 and summarize["config"]["fallback_agent_template"]


# ------------------------------------------------------------------------ install


@pytest.mark.parametrize("slug", SLUGS)
def test_every_template_installs_into_a_fresh_org_and_validates(slug, acme, alice):
    template = gallery(slug)

    workflow = services.template_install(template=template, org=acme, by=alice)

    graph = workflow.latest_version().graph
    validate_graph(graph, org=acme, workflow=workflow)
    assert workflow.template_id == template.pk and workflow.name == template.name
    assert not any("agent_template" in str(n.get("config")) for n in graph["nodes"])
    ids = agent_ids(graph)
    assert ids and Agent.objects.for_org(acme).filter(pk__in=ids).count() == len(ids)
    template.refresh_from_db()
    assert template.installs == 1


def test_installed_agents_run_on_the_demo_model_when_no_key_is_configured(acme, alice):
    services.template_install(template=gallery("blog-post-pipeline"), org=acme, by=alice)

    agents = Agent.objects.for_org(acme)
    assert sorted(agents.values_list("role", flat=True)) == ["editor", "research", "writer"]
    for agent in agents:
        assert agent.status == Agent.Status.ACTIVE
        model = agent.published_version.config["model"]
        assert (model["provider"], model["name"]) == ("demo", "demo-echo")


def test_install_reuses_agents_hired_from_the_template(acme, alice):
    hired = agent_services.agent_create(
        org=acme,
        by=alice,
        name="Our researcher",
        role="research",
        publish=True,
        config={"instructions": "Dig deep.", "model": {"provider": "demo", "name": "demo-echo"}},
    )
    first = services.template_install(template=gallery("blog-post-pipeline"), org=acme, by=alice)
    count = Agent.objects.for_org(acme).count()

    second = services.template_install(template=gallery("blog-post-pipeline"), org=acme, by=alice)

    nodes = {n["id"]: n for n in first.latest_version().graph["nodes"]}
    assert nodes["research"]["config"]["agent_id"] == hired.pk
    assert nodes["outline"]["config"]["agent_id"] == nodes["draft"]["config"]["agent_id"]  # one writer
    assert Agent.objects.for_org(acme).count() == count == 3
    assert agent_ids(second.latest_version().graph) == agent_ids(first.latest_version().graph)


def test_install_ignores_archived_and_other_orgs_agents(acme, alice, charlie, charlie_org):
    config = {"instructions": "x", "model": {"provider": "demo", "name": "demo-echo"}}
    theirs = agent_services.agent_create(
        org=charlie_org, by=charlie, name="Researcher", role="research", publish=True, config=config
    )
    archived = agent_services.agent_create(
        org=acme, by=alice, name="Old", role="research", publish=True, config=config
    )
    Agent.objects.filter(pk=archived.pk).update(status=Agent.Status.ARCHIVED)

    workflow = services.template_install(template=gallery("blog-post-pipeline"), org=acme, by=alice)

    research = next(n for n in workflow.latest_version().graph["nodes"] if n["id"] == "research")
    assert research["config"]["agent_id"] not in (theirs.pk, archived.pk)
    assert Agent.objects.get(pk=research["config"]["agent_id"]).organization_id == acme.pk


def test_materialize_fills_team_and_fallback_agents_and_leaves_the_template_alone(acme, alice):
    spec = CATALOG_BY_SLUG["onboarding-plan"]
    before = repr(spec.graph)

    graph = materialize(spec.graph, org=acme, by=alice)

    plan = next(n for n in graph["nodes"] if n["id"] == "plan")["config"]
    assert len(plan["agent_ids"]) == 2 and "agent_templates" not in plan
    summarize = next(
        n
        for n in materialize(CATALOG_BY_SLUG["incident-summary"].graph, org=acme, by=alice)["nodes"]
        if n["id"] == "summarize"
    )["config"]
    assert Agent.objects.get(pk=summarize["fallback_agent_id"]).role == "assistant"
    assert Agent.objects.get(pk=summarize["agent_id"]).role == "analyst"
    assert repr(spec.graph) == before


def test_an_unknown_agent_template_is_an_error_on_its_node(acme, alice):
    graph = {
        "nodes": [
            {"id": "start", "type": "trigger", "config": {"kind": "manual"}},
            {
                "id": "ask",
                "type": "agent",
                "config": {"agent_template": "astrologer", "input": "{{ input.text }}"},
            },
        ],
        "edges": [{"source": "start", "target": "ask", "port": "out"}],
    }

    with pytest.raises(GraphError) as caught:
        materialize(graph, org=acme, by=alice)

    assert list(caught.value.errors) == ["ask"]
    assert not Agent.objects.for_org(acme).exists()


# ------------------------------------------------------------------- end to end


def finished_or_waiting(run_id: int) -> WorkflowRun | None:
    run = WorkflowRun.objects.get(pk=run_id)
    if run.is_finished:
        return run
    if (
        run.status == WorkflowRun.Status.WAITING
        and run.approvals.filter(decision=Approval.Decision.PENDING).exists()
    ):
        return run
    return None


def run_template(slug: str, org, user, input=None, approve: bool = True) -> WorkflowRun:
    workflow = services.template_install(template=gallery(slug), org=org, by=user)
    services.workflow_publish(workflow=workflow, by=user)
    run = services.run_start(workflow=workflow, by=user, input=input or CATALOG_BY_SLUG[slug].sample_input)
    run_id = run.pk
    for _ in range(3):
        run = wait_for(lambda: finished_or_waiting(run_id), timeout=30)
        if run.is_finished:
            return run
        approval = run.approvals.get(decision=Approval.Decision.PENDING)
        services.approval_decide(approval=approval, by=user, approved=approve, comment="Looks fine.")
    pytest.fail(f"{slug} kept waiting for approvals")


@pytest.mark.parametrize("slug", SLUGS)
def test_every_template_runs_to_success_on_the_demo_model(slug, acme, alice, celery_worker):
    run = run_template(slug, acme, alice)

    assert run.status == WorkflowRun.Status.SUCCEEDED, (
        run.error,
        list(run.steps.values("node_id", "status", "error")),
    )
    assert run.output
    assert not run.steps.filter(status__in=[StepRun.Status.FAILED, *StepRun.ACTIVE]).exists()
    assert run.steps.filter(node_type="agent", status=StepRun.Status.SUCCEEDED).exists()


def test_reviewer_loop_stops_after_three_rounds_when_the_reviewer_never_says_pass(acme, alice, celery_worker):
    # The demo model echoes, so its review never starts with PASS: the loop's maximum ends it.
    run = run_template("cold-email-review-loop", acme, alice)

    assert run.status == WorkflowRun.Status.SUCCEEDED
    assert run.steps.filter(node_id="review", status=StepRun.Status.SUCCEEDED).count() == 3
    assert run.output["rounds"] == 3


def test_refund_over_the_limit_waits_for_a_manager_and_a_rejection_declines(acme, alice, celery_worker):
    run = run_template("refund-approval", acme, alice, approve=False)

    assert run.status == WorkflowRun.Status.SUCCEEDED
    assert run.approvals.get().decision == Approval.Decision.REJECTED
    ran = set(run.steps.filter(status=StepRun.Status.SUCCEEDED).values_list("node_id", flat=True))
    assert "decline" in ran and "confirm" not in ran


def test_small_refund_is_approved_without_waiting(acme, alice, celery_worker):
    run = run_template("refund-approval", acme, alice, input={"order_id": "B-7", "amount": 12})

    assert run.status == WorkflowRun.Status.SUCCEEDED
    assert not run.approvals.exists()
    assert run.output["order"] == "B-7"


def test_weekly_digest_reviews_every_area_in_the_loop(acme, alice, celery_worker):
    run = run_template("weekly-ops-digest", acme, alice, input={"areas": ["Returns", "Hiring", "Fleet"]})

    assert run.status == WorkflowRun.Status.SUCCEEDED
    assert run.steps.filter(node_id="review", status=StepRun.Status.SUCCEEDED).count() == 3
    assert [note.split(":")[0] for note in run.output["notes"]] == ["Returns", "Hiring", "Fleet"]

"""Per-agent handoffs (doc 001 §4.3) and tools (§4.4), the tools catalog and output types."""

from __future__ import annotations

import pytest

from agents import services
from tests.agents.conftest import make_config
from tests.helpers import assert_envelope

pytestmark = pytest.mark.django_db

PUBLIC_IP = "93.184.215.14"  # an address literal: validating it needs no DNS


def http_tool(url=f"https://{PUBLIC_IP}/items/{{id}}", **config):
    return {
        "type": "http",
        "name": "lookup",
        "description": "Look an item up.",
        "config": {
            "url": url,
            "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
            **config,
        },
    }


# ------------------------------------------------------------------ handoffs


def test_add_handoff_creates_a_draft_version(alice_api, make_agent):
    billing = make_agent(name="Billing")
    triage = make_agent(name="Triage")

    response = alice_api.post(
        f"/api/v1/agents/{triage.pk}/handoffs",
        {"agent_id": billing.pk, "description": "Invoices"},
        format="json",
    )

    body = response.json()
    assert response.status_code == 201, body
    assert (body["agent_id"], body["agent_name"], body["description"], body["version"]) == (
        billing.pk,
        "Billing",
        "Invoices",
        2,
    )
    assert triage.latest_version().config["handoffs"] == [
        {"id": body["id"], "agent_id": billing.pk, "description": "Invoices"}
    ]
    triage.refresh_from_db()
    assert triage.published_version.number == 1  # a draft until published


def test_list_update_and_delete_handoff(alice_api, make_agent):
    billing, support = make_agent(name="Billing"), make_agent(name="Support")
    triage = make_agent(name="Triage")
    base = f"/api/v1/agents/{triage.pk}/handoffs"
    handoff_id = alice_api.post(base, {"agent_id": billing.pk}, format="json").json()["id"]

    changed = alice_api.put(
        f"{base}/{handoff_id}", {"agent_id": support.pk, "description": "Help"}, format="json"
    )
    listed = alice_api.get(base).json()

    assert changed.status_code == 200, changed.content
    assert (listed["mode"], listed["version"]) == ("route", 3)
    assert [(h["id"], h["agent_name"], h["description"]) for h in listed["handoffs"]] == [
        (handoff_id, "Support", "Help")
    ]
    assert alice_api.delete(f"{base}/{handoff_id}").status_code == 204
    assert alice_api.get(base).json()["handoffs"] == []
    assert triage.versions.count() == 4
    assert_envelope(alice_api.delete(f"{base}/{handoff_id}"), 404, "not_found")


def test_handoff_cycle_is_a_field_error(alice_api, make_agent):
    first = make_agent(name="First")
    second = make_agent(name="Second", handoffs=[{"agent_id": first.pk}])

    response = alice_api.post(f"/api/v1/agents/{first.pk}/handoffs", {"agent_id": second.pk}, format="json")

    body = assert_envelope(response, 400, "invalid")
    assert "cycle" in body["field_errors"]["config.handoffs"][0]
    assert first.versions.count() == 1


def test_handoff_to_itself_is_refused(alice_api, make_agent):
    agent = make_agent()

    response = alice_api.post(f"/api/v1/agents/{agent.pk}/handoffs", {"agent_id": agent.pk}, format="json")

    assert "config.handoffs" in assert_envelope(response, 400, "invalid")["field_errors"]


def test_handoff_to_another_orgs_agent_is_404(alice_api, make_agent, charlie, charlie_org):
    theirs = services.agent_create(org=charlie_org, by=charlie, name="Theirs", config=make_config())
    agent = make_agent()

    response = alice_api.post(f"/api/v1/agents/{agent.pk}/handoffs", {"agent_id": theirs.pk}, format="json")

    assert_envelope(response, 404, "not_found")
    assert agent.versions.count() == 1


def test_duplicate_handoff_is_refused(alice_api, make_agent):
    billing, triage = make_agent(name="Billing"), make_agent(name="Triage")
    base = f"/api/v1/agents/{triage.pk}/handoffs"
    alice_api.post(base, {"agent_id": billing.pk}, format="json")

    response = alice_api.post(base, {"agent_id": billing.pk}, format="json")

    assert "agent_id" in assert_envelope(response, 400, "invalid")["field_errors"]


# --------------------------------------------------------------------- tools


def test_add_tool_creates_a_version_and_returns_the_stored_tool(alice_api, make_agent):
    agent = make_agent()

    response = alice_api.post(f"/api/v1/agents/{agent.pk}/tools", http_tool(), format="json")

    body = response.json()
    assert response.status_code == 201, body
    assert (body["type"], body["name"], body["version"], body["ask_before_run"]) == (
        "http",
        "lookup",
        2,
        False,
    )
    assert body["config"]["method"] == "GET"  # validation filled the default in
    assert agent.latest_version().config["tools"][0]["id"] == body["id"]


def test_list_update_and_delete_tool(alice_api, make_agent):
    agent = make_agent(tools=[{"type": "calculator"}])
    base = f"/api/v1/agents/{agent.pk}/tools"
    [calculator] = alice_api.get(base).json()

    changed = alice_api.put(f"{base}/{calculator['id']}", {"ask_before_run": True}, format="json")

    assert changed.status_code == 200, changed.content
    assert changed.json()["ask_before_run"] is True and changed.json()["type"] == "calculator"
    assert alice_api.delete(f"{base}/{calculator['id']}").status_code == 204
    assert alice_api.get(base).json() == []
    assert agent.versions.count() == 3
    assert_envelope(alice_api.put(f"{base}/nope", {"name": "x"}, format="json"), 404, "not_found")


def test_invalid_json_schema_in_http_tool_parameters_is_a_field_error(alice_api, make_agent):
    agent = make_agent(tools=[{"type": "calculator"}])
    tool = http_tool()
    tool["config"]["parameters"] = {"type": "object", "properties": {"id": {"type": "nope"}}}

    response = alice_api.post(f"/api/v1/agents/{agent.pk}/tools", tool, format="json")

    body = assert_envelope(response, 400, "invalid")
    assert list(body["field_errors"]) == ["config.tools.1.config.parameters"]
    assert "JSON Schema" in body["field_errors"]["config.tools.1.config.parameters"][0]
    assert agent.versions.count() == 1


@pytest.mark.parametrize("host", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "localhost"])
def test_http_tool_on_a_private_address_is_refused_at_save(alice_api, make_agent, host):
    agent = make_agent()

    response = alice_api.post(
        f"/api/v1/agents/{agent.pk}/tools", http_tool(url=f"http://{host}/x"), format="json"
    )

    body = assert_envelope(response, 400, "invalid")
    assert "Refusing" in body["field_errors"]["config.tools.0.config.url"][0]
    assert agent.versions.count() == 1


def test_private_tool_url_in_a_full_config_is_refused_too(alice_api, make_agent):
    agent = make_agent()
    config = {"tools": [{"type": "calculator"}, http_tool(url="http://10.0.0.5/x")]}

    response = alice_api.patch(f"/api/v1/agents/{agent.pk}", {"config": config}, format="json")

    assert "config.tools.1.config.url" in assert_envelope(response, 400, "invalid")["field_errors"]


def test_agent_tool_pointing_at_another_org_is_404(alice_api, make_agent, charlie, charlie_org):
    theirs = services.agent_create(org=charlie_org, by=charlie, name="Theirs", config=make_config())
    agent = make_agent()
    tool = {"type": "agent", "name": "ask", "config": {"agent_id": theirs.pk}}

    response = alice_api.post(f"/api/v1/agents/{agent.pk}/tools", tool, format="json")

    assert_envelope(response, 404, "not_found")


def test_unknown_tool_type_is_a_field_error(alice_api, make_agent):
    agent = make_agent()

    response = alice_api.post(f"/api/v1/agents/{agent.pk}/tools", {"type": "teleport"}, format="json")

    assert "type" in assert_envelope(response, 400, "invalid_choice")["field_errors"]


# ------------------------------------------------------------------ catalogs


def test_tools_available_lists_the_catalog(alice_api):
    body = alice_api.get("/api/v1/agents/tools/available").json()

    by_type = {t["type"]: t for t in body}
    assert {"calculator", "datetime", "web_search", "http", "agent"} <= set(by_type)
    assert by_type["http"]["config_schema"]["required"] == ["url"]
    assert by_type["calculator"]["label"] == "Calculator"


def test_output_types(alice_api):
    listed = alice_api.get("/api/v1/agents/output-types/available").json()
    one = alice_api.get("/api/v1/agents/output-types/classification").json()

    assert [t["name"] for t in listed] == ["text", "classification", "extraction", "summary"]
    assert one["schema"]["required"] == ["label", "confidence"]
    assert_envelope(alice_api.get("/api/v1/agents/output-types/poem"), 404, "not_found")

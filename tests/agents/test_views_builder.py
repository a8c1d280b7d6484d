"""The seven-step builder: errors beside the fields (also over htmx), save = new draft, publish."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.http import QueryDict

from agents.models import Agent, AgentVersion

pytestmark = pytest.mark.django_db


def _login(client, user, org):
    client.force_login(user)
    client.post("/orgs/switch/", {"org": org.pk})
    return client


def _form(**overrides):
    """A complete, valid builder POST for a new agent."""
    data = {
        "name": "Builder Bob",
        "description": "Builds things.",
        "avatar": "🤖",
        "role": "developer",
        "category": "Engineering",
        "visibility": "org",
        "instructions": "You build things.",
        "memory_max_items": "20",
        "provider": "openai",
        "model_name": "fake-gpt",
        "temperature": "0.5",
        "max_tokens": "",
        "fallback_provider": "",
        "fallback_model": "",
        "tool_calculator": "on",
        "tool_call_limit": "10",
        "handoff_mode": "route",
        "output_type": "text",
        "output_name": "",
        "output_schema": "",
        "gr_blocked_topics": "",
        "gr_output_schema": "",
        "http-TOTAL_FORMS": "1",
        "http-INITIAL_FORMS": "0",
        "http-MIN_NUM_FORMS": "0",
        "http-MAX_NUM_FORMS": "20",
        "http-0-method": "GET",
        "action": "save",
    }
    data.update(overrides)
    return data


def _errors_near(body: str, field_id: str) -> str:
    """The error list rendered right after the input with this id."""
    match = re.search(rf'<ul class="field-error" id="{field_id}_errors"[^>]*>(.*?)</ul>', body, re.S)
    assert match, f"no errors beside #{field_id}"
    return html.unescape(match.group(1))


def test_new_builder_renders_seven_steps_with_tooltips(client, alice, acme):
    body = _login(client, alice, acme).get("/agents/new/").content.decode()

    for label in ["Basics", "Instructions", "Model", "Tools", "Handoffs", "Output type", "Guardrails"]:
        assert label in body
    assert body.count('role="tooltip"') >= 20
    assert "OpenAI · " in body and "Demo model (offline, no API key) · configured" in body


def test_saving_a_new_agent_creates_a_draft_version(client, alice, acme):
    response = _login(client, alice, acme).post("/agents/new/", _form())

    agent = Agent.objects.get(organization=acme, name="Builder Bob")
    assert response.status_code == 302 and response["Location"] == f"/agents/{agent.pk}/versions/"
    assert agent.status == Agent.Status.DRAFT and agent.published_version is None
    version = agent.versions.get()
    assert version.config["model"] == {
        "provider": "openai",
        "name": "fake-gpt",
        "temperature": 0.5,
        "max_tokens": None,
        "fallback": None,
    }
    assert [t["type"] for t in version.config["tools"]] == ["calculator"]


def test_save_and_publish_publishes(client, alice, acme):
    response = _login(client, alice, acme).post("/agents/new/", _form(action="publish"))

    agent = Agent.objects.get(organization=acme, name="Builder Bob")
    assert response["Location"] == f"/agents/{agent.pk}/"
    assert agent.status == Agent.Status.ACTIVE
    assert agent.published_version == agent.versions.get()


def test_http_tool_on_loopback_is_refused_beside_the_url(client, alice, acme):
    data = _form(
        **{
            "http-0-name": "local",
            "http-0-description": "Internal API",
            "http-0-url": "http://127.0.0.1:8000/admin/",
            "http-0-parameters": "",
        }
    )

    response = _login(client, alice, acme).post("/agents/new/", data)

    assert response.status_code == 200
    body = response.content.decode()
    assert "loopback address" in _errors_near(body, "id_http-0-url")
    assert not Agent.objects.filter(organization=acme).exists()


def test_invalid_json_schema_in_http_parameters_is_shown_beside_it(client, alice, acme):
    data = _form(
        **{
            "http-0-name": "lookup",
            "http-0-description": "Find an item",
            "http-0-url": "https://api.example.com/items/{id}",
            "http-0-parameters": json.dumps({"type": "object", "properties": {"id": {"type": "strin"}}}),
        }
    )

    body = _login(client, alice, acme).post("/agents/new/", data).content.decode()

    assert "not a valid JSON Schema" in _errors_near(body, "id_http-0-parameters")


def test_unparseable_json_is_a_field_error(client, alice, acme):
    data = _form(output_type="custom", output_schema="{not json")

    body = _login(client, alice, acme).post("/agents/new/", data).content.decode()

    assert "not valid JSON" in _errors_near(body, "id_output_schema")


def test_custom_output_schema_must_be_an_object_schema(client, alice, acme):
    data = _form(output_type="custom", output_name="items", output_schema=json.dumps({"type": "array"}))

    body = _login(client, alice, acme).post("/agents/new/", data).content.decode()

    assert "top-level type must be 'object'" in _errors_near(body, "id_output_schema")


def test_fallback_provider_without_model_is_an_error(client, alice, acme):
    body = _login(client, alice, acme).post("/agents/new/", _form(fallback_provider="demo")).content.decode()

    assert "Name the fallback model" in _errors_near(body, "id_fallback_model")


def test_the_first_step_with_errors_opens(client, alice, acme):
    body = _login(client, alice, acme).post("/agents/new/", _form(gr_max_length="0")).content.decode()

    assert "step: 'guardrails'" in body
    assert _errors_near(body, "id_gr_max_length")


def test_validate_endpoint_rerenders_one_step_with_errors(client, alice, acme):
    response = _login(client, alice, acme).post(
        "/agents/new/validate/?step=model", _form(temperature="3"), HTTP_HX_REQUEST="true"
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<fieldset id="step-model"')
    assert "less than or equal to 2" in _errors_near(body, "id_temperature")
    assert 'id="step-flag-model" hx-swap-oob="true"' in body


def test_validate_endpoint_shows_schema_errors_beside_http_fields(client, alice, acme):
    data = _form(
        **{
            "http-0-name": "lookup",
            "http-0-description": "Find",
            "http-0-url": "https://api.example.com/x",
            "http-0-parameters": json.dumps({"type": "array"}),
        }
    )

    body = _login(client, alice, acme).post("/agents/new/validate/?step=tools", data).content.decode()

    assert "top-level type must be 'object'" in _errors_near(body, "id_http-0-parameters")


def test_edit_prefills_and_saving_creates_a_new_version(client, alice, acme, make_agent):
    agent = make_agent(name="Helper", tools=[{"type": "datetime"}])
    c = _login(client, alice, acme)

    page = c.get(f"/agents/{agent.pk}/edit/").content.decode()
    response = c.post(f"/agents/{agent.pk}/edit/", _form(name="Helper", instructions="New rules."))

    assert 'value="Helper"' in page and "You are helpful." in page
    assert response.status_code == 302
    latest = agent.latest_version()
    assert latest.number == 2 and latest.config["instructions"] == "New rules."
    agent.refresh_from_db()
    assert agent.published_version.number == 1  # saved as a draft, not published


def test_saving_an_unchanged_config_makes_no_new_version(client, alice, acme, make_agent):
    agent = make_agent(name="Helper")
    c = _login(client, alice, acme)
    c.post(f"/agents/{agent.pk}/edit/", _form(name="Helper"))
    count = AgentVersion.objects.filter(agent=agent).count()

    c.post(f"/agents/{agent.pk}/edit/", _form(name="Helper renamed"))

    agent.refresh_from_db()
    assert AgentVersion.objects.filter(agent=agent).count() == count
    assert agent.name == "Helper renamed"


def test_handoffs_and_agent_tools_are_saved(client, alice, acme, make_agent):
    triage = make_agent(name="Triage")
    billing = make_agent(name="Billing")
    c = _login(client, alice, acme)

    c.post(
        f"/agents/{triage.pk}/edit/",
        _form(
            name="Triage",
            handoff_agents=[str(billing.pk)],
            **{f"handoff_desc_{billing.pk}": "Money questions"},
            agent_tools=[str(billing.pk)],
            handoff_mode="coordinate",
        ),
    )

    config = triage.latest_version().config
    assert config["handoffs"][0]["agent_id"] == billing.pk
    assert config["handoffs"][0]["description"] == "Money questions"
    assert config["handoff_mode"] == "coordinate"
    assert any(t["type"] == "agent" and t["config"]["agent_id"] == billing.pk for t in config["tools"])


def test_handoff_cycle_is_shown_on_the_handoffs_step(client, alice, acme, make_agent):
    a = make_agent(name="A")
    b = make_agent(name="B", handoffs=[{"agent_id": a.pk}])

    body = (
        _login(client, alice, acme)
        .post(f"/agents/{a.pk}/edit/", _form(name="A", handoff_agents=[str(b.pk)]))
        .content.decode()
    )

    assert "handoff cycle" in body
    assert a.versions.count() == 1


def test_http_tool_round_trips_through_the_builder(client, alice, acme, make_agent):
    agent = make_agent(name="Caller")
    c = _login(client, alice, acme)
    c.post(
        f"/agents/{agent.pk}/edit/",
        _form(
            **{
                "name": "Caller",
                "http-0-name": "weather",
                "http-0-description": "Weather by city",
                "http-0-url": "https://api.example.com/weather/{city}",
                "http-0-method": "GET",
                "http-0-headers": '{"X-Key": "{{secret:WEATHER}}"}',
                "http-0-parameters": json.dumps(
                    {"type": "object", "properties": {"city": {"type": "string"}}}
                ),
            }
        ),
    )

    page = c.get(f"/agents/{agent.pk}/edit/").content.decode()

    tool = next(t for t in agent.latest_version().config["tools"] if t["type"] == "http")
    assert tool["config"]["url"] == "https://api.example.com/weather/{city}"
    assert tool["config"]["headers"] == {"X-Key": "{{secret:WEATHER}}"}
    assert "https://api.example.com/weather/{city}" in page
    assert 'name="http-TOTAL_FORMS" value="2"' in page  # the saved tool plus an empty row


def test_duplicate_tool_names_are_reported_on_the_tools_step(client, alice, acme):
    tool = {"description": "d", "url": "https://api.example.com/a", "method": "GET", "parameters": ""}
    data = _form(
        **{
            "http-TOTAL_FORMS": "2",
            **{f"http-{i}-{k}": v for i in (0, 1) for k, v in tool.items()},
            "http-0-name": "same",
            "http-1-name": "same",
        }
    )

    body = _login(client, alice, acme).post("/agents/new/validate/?step=tools", data).content.decode()

    assert "tool names must be unique" in html.unescape(body)


def test_config_error_paths_land_beside_their_fields(alice, acme, make_agent):
    from agents.views import builder_state as bs

    agent = make_agent(name="Paths")
    data = QueryDict(mutable=True)
    data.update(_form(name="Paths"))
    state = bs.state_for(org=acme, agent=agent, data=data)
    assert state.form.is_valid() and state.http.is_valid()
    state.tool_sources = [("builtin", "calculator"), ("http", 0)]

    bs.attach_errors(
        state,
        {
            "tools.1.config.url": ["bad url"],
            "tools.1.config.parameters": ["bad schema"],
            "model.fallback.name": ["name it"],
            "guardrails.output.json_schema": ["bad output schema"],
            "output_type.schema": ["bad custom schema"],
            "tools.0": ["calculator broke"],
        },
    )

    assert state.http.forms[0].errors["url"] == ["bad url"]
    assert state.http.forms[0].errors["parameters"] == ["bad schema"]
    assert state.form.errors["fallback_model"] == ["name it"]
    assert state.form.errors["gr_output_schema"] == ["bad output schema"]
    assert state.form.errors["output_schema"] == ["bad custom schema"]
    assert state.step_errors["tools"] == ["builtin tool: calculator broke"]

"""Chat tab: sending queues a run and answers with a bubble that streams over the websocket;
reload mid-stream, stop, regenerate, feedback, and the run-event fragments the consumer sends."""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string

from agents import services
from agents.models import AgentRun, ChatSession, Message, RunEvent
from agents.runtime.executor import execute_run

pytestmark = pytest.mark.django_db


def _login(client, user, org):
    client.force_login(user)
    client.post("/orgs/switch/", {"org": org.pk})
    return client


def _event(run, seq, type, **payload):
    return RunEvent.objects.create(run=run, seq=seq, type=type, payload=payload)


def test_empty_chat_shows_composer_and_examples(client, alice, acme):
    _login(client, alice, acme).post("/agents/hire/", {"template": "research", "name": "Rita"})
    agent = acme.agents.get()

    body = client.get(f"/agents/{agent.pk}/").content.decode()

    assert "Say hello to Rita." in body
    assert 'id="composer"' in body
    assert "Summarize the state of solid-state batteries" in body


def test_send_creates_a_run_and_returns_a_streaming_bubble(client, alice, acme, make_agent):
    agent = make_agent()

    response = _login(client, alice, acme).post(
        f"/agents/{agent.pk}/chat/send/", {"message": "Hello there"}, HTTP_HX_REQUEST="true"
    )

    run = AgentRun.objects.get(agent=agent)
    body = response.content.decode()
    assert response.status_code == 200
    assert run.status == AgentRun.Status.QUEUED and run.input == "Hello there"
    assert Message.objects.get(run=run, role="user").content == "Hello there"
    assert f'ws-connect="/ws/runs/{run.pk}/?after=0"' in body
    assert f'id="run-{run.pk}-text"' in body and f'id="run-{run.pk}-bubble"' in body
    assert f'id="session-field" value="{run.session_id}" hx-swap-oob="true"' in body
    assert response["HX-Push-Url"] == f"/agents/{agent.pk}/?session={run.session_id}"


def test_send_without_htmx_redirects_to_the_conversation(client, alice, acme, make_agent):
    agent = make_agent()

    response = _login(client, alice, acme).post(f"/agents/{agent.pk}/chat/send/", {"message": "Hi"})

    run = AgentRun.objects.get(agent=agent)
    assert response.status_code == 302
    assert response["Location"] == f"/agents/{agent.pk}/?session={run.session_id}"


def test_send_into_an_existing_session(client, alice, acme, make_agent):
    agent = make_agent()
    first = services.run_create(agent=agent, user=alice, input="one")

    _login(client, alice, acme).post(
        f"/agents/{agent.pk}/chat/send/", {"message": "two", "session": first.session_id}
    )

    assert ChatSession.objects.filter(agent=agent).count() == 1
    assert list(first.session.messages.values_list("content", flat=True)) == ["one", "two"]


def test_cannot_post_into_another_users_session(client, alice, bob, acme, make_agent):
    agent = make_agent()
    bobs = services.run_create(agent=agent, user=bob, input="mine")

    response = _login(client, alice, acme).post(
        f"/agents/{agent.pk}/chat/send/", {"message": "hi", "session": bobs.session_id}
    )

    assert response.status_code == 404
    assert (
        _login(client, alice, acme).get(f"/agents/{agent.pk}/?session={bobs.session_id}").status_code == 404
    )


def test_empty_message_creates_nothing(client, alice, acme, make_agent):
    agent = make_agent()

    response = _login(client, alice, acme).post(
        f"/agents/{agent.pk}/chat/send/", {"message": "   "}, HTTP_HX_REQUEST="true"
    )

    assert "the message is empty" in response.content.decode()
    assert response["HX-Retarget"] == "#agent-alerts"
    assert not AgentRun.objects.exists()


def test_archived_agent_refuses_to_chat(client, alice, acme, make_agent):
    agent = make_agent()
    services.agent_archive(agent=agent)

    response = _login(client, alice, acme).post(
        f"/agents/{agent.pk}/chat/send/", {"message": "hi"}, follow=True
    )

    assert "archived" in response.content.decode()
    assert not AgentRun.objects.exists()


def test_reload_mid_stream_renders_text_so_far_and_resumes_after_it(client, alice, acme, make_agent):
    agent = make_agent()
    run = services.run_create(agent=agent, user=alice, input="Tell me")
    AgentRun.objects.filter(pk=run.pk).update(status=AgentRun.Status.RUNNING)
    _event(run, 1, "status", status="running")
    _event(run, 2, "delta", text="Hel")
    _event(run, 3, "tool_call", id="call_1", name="calculator", args={"expression": "1+1"})
    _event(run, 4, "delta", text="lo <b>")

    body = _login(client, alice, acme).get(f"/agents/{agent.pk}/?session={run.session_id}").content.decode()

    assert f'ws-connect="/ws/runs/{run.pk}/?after=4"' in body
    assert (
        f'id="run-{run.pk}-text" class="whitespace-pre-wrap break-words" data-testid="stream-text">Hello &lt;b&gt;</div>'
        in body
    )
    assert f'id="run-{run.pk}-step-call_1"' in body and "running…" in body
    assert "■ Stop" in body


def test_finished_reply_renders_markdown_with_actions(client, alice, acme, make_agent, llm):
    agent = make_agent()
    run = services.run_create(agent=agent, user=alice, input="[[reply:**bold** <script>x</script>]]")
    execute_run(run.pk)

    body = _login(client, alice, acme).get(f"/agents/{agent.pk}/?session={run.session_id}").content.decode()

    assert "<strong>bold</strong>" in body
    assert "<script>x</script>" not in body and "&lt;script&gt;" in body
    assert "/ws/runs/" not in body
    message = Message.objects.get(run=run, role="assistant")
    assert f"/agents/{agent.pk}/messages/{message.pk}/feedback/" in body
    assert f"/agents/{agent.pk}/runs/{run.pk}/regenerate/" in body
    assert "Copy the reply" in body


def test_failed_run_shows_the_reason(client, alice, acme, make_agent, llm):
    agent = make_agent()
    run = services.run_create(agent=agent, user=alice, input="[[error:503]] hi")
    execute_run(run.pk)

    body = _login(client, alice, acme).get(f"/agents/{agent.pk}/?session={run.session_id}").content.decode()

    assert 'data-testid="run-error"' in body and "openai/fake-gpt" in body


def test_feedback_sets_and_toggles(client, alice, acme, make_agent, llm):
    agent = make_agent()
    run = services.run_create(agent=agent, user=alice, input="hi")
    execute_run(run.pk)
    message = Message.objects.get(run=run, role="assistant")
    c = _login(client, alice, acme)
    url = f"/agents/{agent.pk}/messages/{message.pk}/feedback/"

    response = c.post(url, {"value": "1"}, HTTP_HX_REQUEST="true")
    message.refresh_from_db()
    assert message.feedback == 1
    assert 'aria-pressed="true"' in response.content.decode()

    c.post(url, {"value": "-1"})
    message.refresh_from_db()
    assert message.feedback == -1

    c.post(url, {"value": "-1"})
    message.refresh_from_db()
    assert message.feedback == 0


def test_feedback_on_another_users_message_is_404(client, alice, bob, acme, make_agent, llm):
    agent = make_agent()
    run = services.run_create(agent=agent, user=bob, input="hi")
    execute_run(run.pk)
    message = Message.objects.get(run=run, role="assistant")

    response = _login(client, alice, acme).post(
        f"/agents/{agent.pk}/messages/{message.pk}/feedback/", {"value": "1"}
    )

    assert response.status_code == 404


def test_stop_cancels_a_queued_run(client, alice, acme, make_agent):
    agent = make_agent()
    run = services.run_create(agent=agent, user=alice, input="hi")

    response = _login(client, alice, acme).post(
        f"/agents/{agent.pk}/runs/{run.pk}/cancel/", HTTP_HX_REQUEST="true"
    )

    run.refresh_from_db()
    assert response.status_code == 204
    assert run.status == AgentRun.Status.CANCELLED
    assert RunEvent.objects.filter(run=run, type="done", payload__status="cancelled").exists()


def test_regenerate_asks_again_in_the_same_session(client, alice, acme, make_agent, llm):
    agent = make_agent()
    run = services.run_create(agent=agent, user=alice, input="again please")
    execute_run(run.pk)

    response = _login(client, alice, acme).post(
        f"/agents/{agent.pk}/runs/{run.pk}/regenerate/", HTTP_HX_REQUEST="true"
    )

    new = AgentRun.objects.exclude(pk=run.pk).get(agent=agent)
    assert new.input == "again please" and new.session_id == run.session_id
    assert f'ws-connect="/ws/runs/{new.pk}/?after=0"' in response.content.decode()


def test_conversation_list_shows_only_my_sessions(client, alice, bob, acme, make_agent):
    agent = make_agent()
    services.run_create(agent=agent, user=alice, input="alice topic")
    services.run_create(agent=agent, user=bob, input="bob topic")

    body = _login(client, alice, acme).get(f"/agents/{agent.pk}/").content.decode()

    assert "alice topic" in body and "bob topic" not in body


def test_delete_conversation(client, alice, acme, make_agent):
    agent = make_agent()
    run = services.run_create(agent=agent, user=alice, input="bye")

    _login(client, alice, acme).post(f"/agents/{agent.pk}/sessions/{run.session_id}/delete/")

    assert not ChatSession.objects.filter(pk=run.session_id).exists()


# ------------------------------------------------------------ fragments the consumer sends


def _fragment(run_id, seq, type, **payload):
    event = {"seq": seq, "type": type, "payload": payload, "at": "2025-01-01T00:00:00Z"}
    return render_to_string("agents/_run_event.html", {"event": event, "run_id": run_id})


def test_delta_fragment_appends_escaped_text():
    html = _fragment(7, 3, "delta", text="a <img src=x> b")

    assert (
        html.strip() == '<span data-seq="3" hx-swap-oob="beforeend:#run-7-text">a &lt;img src=x&gt; b</span>'
    )


def test_tool_call_and_result_fragments_target_the_steps():
    call = _fragment(7, 4, "tool_call", id="call 1", name="calculator", args={"expression": "6*7"})
    result = _fragment(7, 5, "tool_result", id="call 1", name="calculator", result="42", error=False)

    assert 'hx-swap-oob="beforeend:#run-7-steps"' in call and "<details" in call
    assert 'id="run-7-step-call_1"' in call and "&quot;expression&quot;: &quot;6*7&quot;" in call
    assert 'id="run-7-step-call_1-result" hx-swap-oob="true"' in result and "42" in result


def test_guardrail_and_error_fragments_are_visible_notes():
    trip = _fragment(7, 2, "guardrail", stage="input", rule="pii", message="Redacted an email")
    error = _fragment(7, 3, "error", message="Boom", final=True)

    assert 'hx-swap-oob="beforeend:#run-7-notes"' in trip and "guardrail-chip" in trip
    assert 'class="alert alert-error"' in error and "Boom" in error


def test_done_fragment_replaces_the_bubble_with_the_final_message(alice, make_agent, llm):
    agent = make_agent()
    run = services.run_create(agent=agent, user=alice, input="[[reply:# Title]]")
    execute_run(run.pk)
    done = RunEvent.objects.get(run=run, type="done")

    html = _fragment(run.pk, done.seq, "done", **done.payload)

    assert f'id="run-{run.pk}-bubble"' in html and 'hx-swap-oob="true"' in html
    assert "<h1>Title</h1>" in html and "ws-connect" not in html

"""POST /api/v1/agents/<id>/run (waiting and SSE) and /api/v1/runs/: through a real Celery worker and
agno to the fake LLM over HTTP."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.test import AsyncClient, Client

from agents import services
from agents.models import AgentRun, ChatSession, Message, RunEvent
from agents.runtime.executor import execute_run
from tests.conftest import PASSWORD
from tests.helpers import as_user, assert_envelope, bearer


def run_url(agent):
    return f"/api/v1/agents/{agent.pk}/run"


def read_sse(response) -> list[dict]:
    """Drain an async streaming response and parse its Server-Sent Events."""

    async def collect():
        return b"".join([chunk async for chunk in response.streaming_content])

    events = []
    for block in async_to_sync(collect)().decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if fields:
            events.append(
                {"id": fields.get("id"), "event": fields["event"], "data": json.loads(fields["data"])}
            )
    return events


@pytest.fixture
def short_wait(settings):
    settings.AGENT_RUN_WAIT_SECONDS = 0.3


# ------------------------------------------------------------ waiting runs


def test_run_waits_and_returns_output_usage_and_cost(llm, make_agent, alice_api, celery_worker):
    agent = make_agent()

    response = alice_api.post(run_url(agent), {"input": "hi"}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["output"], body["error"]) == ("succeeded", "Echo: hi", "")
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] == 2
    assert float(body["cost"]) > 0 and body["latency_ms"] is not None
    run = AgentRun.objects.get(pk=body["run_id"])
    assert run.session_id == body["session_id"] and run.user.email == "alice@example.com"
    assert Message.objects.get(session_id=body["session_id"], role="assistant").content == "Echo: hi"


def test_run_continues_a_conversation(llm, make_agent, alice_api, celery_worker):
    agent = make_agent()
    first = alice_api.post(run_url(agent), {"input": "my name is Ada"}, format="json").json()

    second = alice_api.post(
        run_url(agent), {"input": "what is my name?", "session_id": first["session_id"]}, format="json"
    ).json()

    assert second["session_id"] == first["session_id"]
    contents = [m["content"] for m in llm.requests[-1]["body"]["messages"]]
    assert "my name is Ada" in contents and "Echo: my name is Ada" in contents


def test_provider_down_without_fallback_is_a_failed_run_with_a_reason(
    llm, make_agent, alice_api, celery_worker
):
    agent = make_agent()

    response = alice_api.post(run_url(agent), {"input": "[[error:503]] hi"}, format="json")

    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "failed"
    assert "The model failed" in body["error"] and "openai/fake-gpt" in body["error"]


def test_api_key_can_run(llm, make_agent, acme_key, celery_worker):
    agent = make_agent()

    response = bearer(acme_key).post(run_url(agent), {"input": "hi"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["output"] == "Echo: hi"


@pytest.mark.django_db
def test_run_still_going_after_the_wait_is_202_with_its_id(make_agent, alice_api, short_wait):
    agent = make_agent()  # no worker here: the run stays queued

    response = alice_api.post(run_url(agent), {"input": "hi"}, format="json")

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and AgentRun.objects.filter(pk=body["run_id"]).exists()
    assert response["Location"] == f"/api/v1/runs/{body['run_id']}"


def _through_our_handler(path: str, key: str, body: dict) -> dict:
    """POST through config.handlers.ASGIHandler, as daphne serves it: the wait is deferred to the loop."""
    from channels.testing import HttpCommunicator

    from config.handlers import ASGIHandler

    handler = ASGIHandler()
    raw = json.dumps(body).encode()
    headers = [
        (b"host", b"testserver"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(raw)).encode()),
        (b"authorization", f"Bearer {key}".encode()),
    ]

    async def go():
        communicator = HttpCommunicator(handler, "POST", path, body=raw, headers=headers)
        return await communicator.get_response(timeout=30)

    try:
        return async_to_sync(go)()
    finally:
        for thread in handler.threads.free:
            thread.shutdown(wait=True)


def test_under_daphnes_handler_the_run_is_awaited_on_the_loop(llm, make_agent, acme_key, celery_worker):
    agent = make_agent()

    response = _through_our_handler(run_url(agent), acme_key, {"input": "via the loop"})

    assert response["status"] == 200, response["body"]
    body = json.loads(response["body"])
    assert (body["status"], body["output"]) == ("succeeded", "Echo: via the loop")
    assert AgentRun.objects.get(pk=body["run_id"]).output == "Echo: via the loop"


@pytest.mark.django_db(transaction=True)
def test_under_daphnes_handler_a_run_still_going_is_202(make_agent, acme_key, short_wait):
    agent = make_agent()  # no worker here: the run stays queued

    response = _through_our_handler(run_url(agent), acme_key, {"input": "hi"})

    assert response["status"] == 202
    body = json.loads(response["body"])
    assert body["status"] == "queued" and AgentRun.objects.filter(pk=body["run_id"]).exists()
    assert dict(response["headers"])[b"Location"] == f"/api/v1/runs/{body['run_id']}".encode()


# ---------------------------------------------------------------- streaming


def test_stream_sends_deltas_in_order_and_ends_with_done(llm, make_agent, alice_api, celery_worker):
    agent = make_agent()

    response = alice_api.post(run_url(agent), {"input": "hello stream", "stream": True}, format="json")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    events = read_sse(response)
    assert events[0]["event"] == "run" and events[0]["id"] is None
    run_id = events[0]["data"]["run_id"]
    assert response["X-Run-Id"] == str(run_id)
    body = events[1:]
    assert [int(e["id"]) for e in body] == list(range(1, len(body) + 1))
    assert (
        "".join(e["data"]["payload"]["text"] for e in body if e["event"] == "delta") == "Echo: hello stream"
    )
    assert body[-1]["event"] == "done" and body[-1]["data"]["payload"]["status"] == "succeeded"
    assert len(body) == RunEvent.objects.filter(run_id=run_id).count()


def test_stream_with_a_tool_call(llm, make_agent, alice_api, celery_worker):
    agent = make_agent(tools=[{"type": "calculator"}])

    events = read_sse(
        alice_api.post(
            run_url(agent),
            {"input": '[[tool:calculator {"expression": "6*7"}]]', "stream": True},
            format="json",
        )
    )

    kinds = [e["event"] for e in events]
    assert kinds.index("tool_call") < kinds.index("tool_result") < kinds.index("done")
    assert next(e for e in events if e["event"] == "tool_result")["data"]["payload"]["result"] == "42"


# ------------------------------------------------------------------ refusals


@pytest.mark.django_db
def test_archived_agent_is_409(make_agent, alice_api):
    agent = make_agent()
    services.agent_archive(agent=agent)

    assert_envelope(alice_api.post(run_url(agent), {"input": "hi"}, format="json"), 409, "agent_archived")


@pytest.mark.django_db
def test_empty_input_is_400(make_agent, alice_api):
    agent = make_agent()

    response = alice_api.post(run_url(agent), {"input": ""}, format="json")

    assert "input" in assert_envelope(response, 400, "blank")["field_errors"]


@pytest.mark.django_db
def test_someone_elses_or_another_agents_session_is_404(make_agent, alice, bob, alice_api):
    agent, other = make_agent(name="One"), make_agent(name="Two")
    bobs = services.run_create(agent=agent, user=bob, input="mine").session
    other_agents = services.run_create(agent=other, user=alice, input="elsewhere").session

    for session in (bobs, other_agents):
        response = alice_api.post(run_url(agent), {"input": "hi", "session_id": session.pk}, format="json")
        assert_envelope(response, 404, "not_found")
    assert ChatSession.objects.count() == 2


@pytest.mark.django_db
def test_browser_session_needs_csrf(make_agent, alice):
    agent = make_agent()
    client = Client(enforce_csrf_checks=True)
    client.login(email=alice.email, password=PASSWORD)

    response = client.post(run_url(agent), {"input": "hi"}, content_type="application/json")

    assert "CSRF" in assert_envelope(response, 403, "permission_denied")["detail"]
    assert not AgentRun.objects.exists()


@pytest.mark.django_db
def test_api_key_needs_no_csrf(make_agent, acme_key, short_wait):
    agent = make_agent()
    client = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Bearer {acme_key}")

    response = client.post(run_url(agent), {"input": "hi"}, content_type="application/json")

    assert response.status_code == 202, response.content


@pytest.mark.django_db
def test_unauthenticated_run_is_401(make_agent):
    agent = make_agent()

    response = Client().post(run_url(agent), {"input": "hi"}, content_type="application/json")

    assert_envelope(response, 401, "not_authenticated")
    assert not AgentRun.objects.exists()


# ------------------------------------------------------------------ runs API


@pytest.mark.django_db
def test_run_detail_and_events_after(llm, make_agent, alice, alice_api):
    agent = make_agent()
    run = services.run_create(agent=agent, user=alice, input="hi")
    execute_run(run.pk)

    detail = alice_api.get(f"/api/v1/runs/{run.pk}").json()
    events = alice_api.get(f"/api/v1/runs/{run.pk}/events").json()
    later = alice_api.get(f"/api/v1/runs/{run.pk}/events?after=2").json()

    assert (detail["status"], detail["output"], detail["model_used"]) == (
        "succeeded",
        "Echo: hi",
        "openai/fake-gpt",
    )
    assert detail["input_tokens"] > 0 and detail["version"] == 1 and detail["finished_at"]
    assert [t["type"] for t in detail["trace"]] == ["model"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["seq"] for e in later] == [e["seq"] for e in events][2:]
    assert events[-1]["type"] == "done"


@pytest.mark.django_db
def test_run_events_as_sse_replay_from_last_event_id(llm, make_agent, alice, alice_api):
    agent = make_agent()
    run = services.run_create(agent=agent, user=alice, input="hi")
    execute_run(run.pk)
    total = RunEvent.objects.filter(run=run).count()

    response = alice_api.get(
        f"/api/v1/runs/{run.pk}/events", HTTP_ACCEPT="text/event-stream", HTTP_LAST_EVENT_ID="2"
    )

    assert response["Content-Type"] == "text/event-stream"
    events = read_sse(response)
    assert [int(e["id"]) for e in events] == list(range(3, total + 1))
    assert events[-1]["event"] == "done"


@pytest.mark.django_db
def test_cancel_a_queued_run(make_agent, alice, alice_api):
    agent = make_agent()
    run = services.run_create(agent=agent, user=alice, input="hi")  # no worker: stays queued

    response = alice_api.post(f"/api/v1/runs/{run.pk}/cancel")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    assert RunEvent.objects.get(run=run).type == "done"
    assert alice_api.get(f"/api/v1/runs/{run.pk}").json()["status"] == "cancelled"


@pytest.mark.django_db
def test_runs_list_filters(make_agent, alice, alice_api):
    one, two = make_agent(name="One"), make_agent(name="Two")
    services.run_create(agent=one, user=alice, input="a")
    services.run_create(agent=two, user=alice, input="b")

    listed = alice_api.get(f"/api/v1/runs/?agent={one.pk}&status=queued").json()["results"]

    assert [r["input"] for r in listed] == ["a"]
    assert_envelope(alice_api.get("/api/v1/runs/?status=bogus"), 400, "invalid")


@pytest.mark.django_db
def test_viewer_cannot_run_or_cancel(make_agent, acme, alice):
    from accounts.models import Role
    from tests.factories import MembershipFactory, UserFactory

    viewer = UserFactory()
    MembershipFactory(organization=acme, user=viewer, role=Role.VIEWER)
    agent = make_agent()
    run = services.run_create(agent=agent, user=alice, input="hi")
    client = as_user(viewer)

    assert_envelope(client.post(run_url(agent), {"input": "hi"}, format="json"), 403, "permission_denied")
    assert_envelope(client.post(f"/api/v1/runs/{run.pk}/cancel"), 403, "permission_denied")
    assert client.get(f"/api/v1/runs/{run.pk}").status_code == 200


# ------------------------------------------------------- natively async (as under daphne)


async def test_async_client_waits_for_the_run(llm, make_agent, acme_key, celery_worker):
    agent = await sync_to_async(make_agent)()
    auth = {"Authorization": f"Bearer {acme_key}"}

    response = await AsyncClient().post(
        run_url(agent), {"input": "async hi"}, content_type="application/json", headers=auth
    )

    assert response.status_code == 200, response.content
    assert response.json()["output"] == "Echo: async hi"


async def test_async_client_streams_the_run(llm, make_agent, acme_key, celery_worker):
    agent = await sync_to_async(make_agent)()
    auth = {"Authorization": f"Bearer {acme_key}"}

    response = await AsyncClient().post(
        run_url(agent),
        {"input": "async stream", "stream": True},
        content_type="application/json",
        headers=auth,
    )

    text = b"".join([chunk async for chunk in response.streaming_content]).decode()
    assert text.startswith("event: run\n")
    assert "event: delta" in text and text.rstrip().split("\n")[-2] == "event: done"


@pytest.mark.django_db(transaction=True)
async def test_sse_holds_a_live_event_until_the_table_fills_the_gap(make_agent, alice):
    """Deltas reach the table in small batches while their notices go out at once: a notice that
    arrives ahead of a missing event waits for it, and nothing is sent twice."""
    from channels.layers import get_channel_layer

    from agents.api.sse import run_event_stream
    from agents.runtime.events import run_group

    run = await sync_to_async(lambda: services.run_create(agent=make_agent(), user=alice, input="hi"))()
    save = sync_to_async(
        lambda seq, type, payload: RunEvent.objects.create(
            run_id=run.pk, seq=seq, type=type, payload=payload
        ).as_dict()
    )
    layer = get_channel_layer()

    async def notify(event):
        await layer.group_send(run_group(run.pk), {"type": "run.event", "event": event})

    await save(1, "status", {"status": "running"})
    stream = run_event_stream(run.pk)
    received = [await anext(stream)]  # from the table; the stream has joined the group by now
    await notify({"seq": 3, "type": "delta", "payload": {"text": "c"}, "at": ""})  # 2 not in the table yet
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.15)
    assert not pending.done()
    await save(2, "delta", {"text": "b"})
    await save(3, "delta", {"text": "c"})
    received.append(await asyncio.wait_for(pending, 2))
    received.append(await asyncio.wait_for(anext(stream), 2))
    await notify(await save(4, "done", {"status": "succeeded"}))
    received += [chunk async for chunk in stream]

    ids = [chunk.decode().split("\n", 1)[0] for chunk in received]
    assert ids == ["id: 1", "id: 2", "id: 3", "id: 4"]


@pytest.mark.django_db(transaction=True)
async def test_sse_sends_every_event_of_notices_sent_together(make_agent, alice):
    """A `run.events` notice (several events the worker published at the same moment) streams each
    of them, in order, before they reach the table."""
    from channels.layers import get_channel_layer

    from agents.api.sse import run_event_stream
    from agents.runtime.events import run_group

    run = await sync_to_async(lambda: services.run_create(agent=make_agent(), user=alice, input="hi"))()
    await sync_to_async(RunEvent.objects.create)(run_id=run.pk, seq=1, type="status", payload={})
    stream = run_event_stream(run.pk)
    received = [await anext(stream)]  # from the table; the stream has joined the group by now
    events = [{"seq": s, "type": "delta", "payload": {"text": str(s)}, "at": ""} for s in (2, 3)]
    events.append({"seq": 4, "type": "done", "payload": {"status": "succeeded"}, "at": ""})
    await get_channel_layer().group_send(run_group(run.pk), {"type": "run.events", "events": events})

    async def rest() -> list[bytes]:
        return [chunk async for chunk in stream]

    received += await asyncio.wait_for(rest(), 10)  # none of 2-4 is in the table: only the notice has them

    heads = [chunk.decode().split("\n", 2)[:2] for chunk in received]
    assert heads == [
        ["id: 1", "event: status"],
        ["id: 2", "event: delta"],
        ["id: 3", "event: delta"],
        ["id: 4", "event: done"],
    ]


@pytest.mark.django_db(transaction=True)
async def test_sse_replays_a_long_finished_run_at_once_and_past_a_gap_that_stays(make_agent, alice):
    """More rows than one read (500) come in one go, not one read per keepalive; and a number that
    was never written does not hold back `done`, which is written after everything else."""
    import time

    from agents.api.sse import run_event_stream

    run = await sync_to_async(lambda: services.run_create(agent=make_agent(), user=alice, input="hi"))()
    seqs = [s for s in range(1, 1301) if s != 700]  # 700 never written: its writer died

    def write():
        rows = [RunEvent(run_id=run.pk, seq=s, type="delta", payload={"text": "x"}) for s in seqs]
        rows.append(RunEvent(run_id=run.pk, seq=1301, type="done", payload={"status": "succeeded"}))
        RunEvent.objects.bulk_create(rows)

    await sync_to_async(write)()
    started = time.monotonic()

    chunks = [chunk async for chunk in run_event_stream(run.pk)]

    assert time.monotonic() - started < 5  # a keepalive wait per read would take 15 s each
    ids = [int(chunk.decode().split("\n", 1)[0].removeprefix("id: ")) for chunk in chunks]
    assert ids == [*seqs, 1301]

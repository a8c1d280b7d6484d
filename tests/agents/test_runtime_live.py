"""Runtime behaviour that needs committed rows: cancel mid-stream, websocket replay, HTTP tools."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from agents import services
from agents.models import AgentRun, RunEvent
from agents.runtime.executor import execute_run
from config.asgi import application
from tests.conftest import wait_for
from tests.helpers import execute_in_thread, session_ws_headers

pytestmark = pytest.mark.django_db(transaction=True)

LONG = " ".join(f"w{i}" for i in range(60))


def _start(agent, user, text):
    run = services.run_create(agent=agent, user=user, input=text)
    thread = threading.Thread(target=execute_in_thread, args=(run.pk,), daemon=True)
    thread.start()
    return run, thread


def test_cancel_stops_a_streaming_run_within_a_second(llm, make_agent, alice):
    run, thread = _start(make_agent(), alice, f"[[latency:50]] {LONG}")
    wait_for(
        lambda: (
            RunEvent.objects.filter(run=run, type="delta").exists()
            or AgentRun.objects.get(pk=run.pk).last_seq > 3
        ),
        timeout=10,
    )

    asked = time.monotonic()
    services.run_cancel(run=AgentRun.objects.get(pk=run.pk))
    thread.join(timeout=5)
    stopped_after = time.monotonic() - asked

    run.refresh_from_db()
    assert run.status == AgentRun.Status.CANCELLED
    assert stopped_after < 1.0
    assert len(run.output.split()) < 40  # it did not run to the end
    assert RunEvent.objects.filter(run=run, type="done", payload__status="cancelled").exists()
    from agents.runtime import cancel

    assert not cancel.is_requested(run.pk)  # the done signal cleared the flag


def test_the_done_signal_clears_the_cancel_flag_in_its_round_trip(llm, make_agent, alice, monkeypatch):
    """A run that ends has nothing left to cancel: its flag goes with the done signal's pipeline, not
    in a round trip of its own. (A flag set just now may or may not be seen by the run; either way
    it is gone once the run ends.)"""
    from agents.runtime import cancel

    cleared, clear = [], cancel.clear
    monkeypatch.setattr(cancel, "clear", lambda run_id: (cleared.append(run_id), clear(run_id)))
    run = services.run_create(agent=make_agent(), user=alice, input="Hello", enqueue=False)
    cancel.request(run.pk)
    assert execute_run(run.pk) in (AgentRun.Status.SUCCEEDED, AgentRun.Status.CANCELLED)
    assert not cancel.is_requested(run.pk)
    assert cleared == []


async def _collect(user, run_id, after):
    headers = await database_sync_to_async(session_ws_headers)(user)
    ws = WebsocketCommunicator(application, f"/ws/runs/{run_id}/?after={after}&format=json", headers=headers)
    connected, _ = await ws.connect()
    assert connected
    events = []
    while True:
        event = json.loads(await ws.receive_from(timeout=10))
        events.append(event)
        if event["type"] == "done":
            break
    await ws.disconnect()
    return events


async def test_reconnect_replays_missed_events_without_gaps_or_duplicates(llm, make_agent, alice):
    agent = await database_sync_to_async(make_agent)()
    run, thread = await database_sync_to_async(_start)(agent, alice, f"[[latency:15]] {LONG}")

    # First connection: read a few events, then drop.
    headers = await database_sync_to_async(session_ws_headers)(alice)
    first = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/?format=json", headers=headers)
    assert (await first.connect())[0]
    seen = [json.loads(await first.receive_from(timeout=10)) for _ in range(5)]
    await first.disconnect()

    # Reconnect from the last sequence number seen, while the run is still streaming.
    rest = await _collect(alice, run.pk, after=seen[-1]["seq"])
    thread.join(timeout=10)

    seqs = [e["seq"] for e in seen + rest]
    assert seqs == list(range(1, len(seqs) + 1))
    text = "".join(e["payload"]["text"] for e in seen + rest if e["type"] == "delta")
    assert text == f"Echo: {LONG}"


async def test_other_org_cannot_open_the_run_socket(llm, make_agent, alice, charlie, charlie_org):
    agent = await database_sync_to_async(make_agent)()
    run = await database_sync_to_async(services.run_create)(agent=agent, user=alice, input="hi")
    headers = await database_sync_to_async(session_ws_headers)(charlie)

    ws = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/", headers=headers)
    connected, code = await ws.connect()

    assert not connected and code == 4404


class _Api(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = json.dumps({"path": self.path, "auth": self.headers.get("Authorization")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def local_api(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.OUTBOUND_ALLOW_HOSTS = ["127.0.0.1"]
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_http_tool_calls_the_api_with_secret_header(llm, make_agent, alice, acme, local_api):
    from integrations.secrets import secret_set

    secret_set(org=acme, name="ORDERS_TOKEN", value="tok-123", by=alice)
    tool = {
        "type": "http",
        "name": "get_order",
        "description": "Fetch an order by id",
        "config": {
            "method": "GET",
            "url": local_api + "/orders/{order_id}",
            "headers": {"Authorization": "Bearer {{secret:ORDERS_TOKEN}}"},
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
        },
    }
    agent = make_agent(tools=[tool])

    run = services.run_create(agent=agent, user=alice, input='[[tool:get_order {"order_id": "A/7"}]]')
    execute_run(run.pk)
    run.refresh_from_db()

    assert run.status == AgentRun.Status.SUCCEEDED, run.error
    result = RunEvent.objects.get(run=run, type="tool_result").payload["result"]
    assert '"path": "/orders/A%2F7"' in result
    assert '"auth": "Bearer tok-123"' in result
    assert "tok-123" not in json.dumps(
        list(RunEvent.objects.filter(run=run, type="tool_call").values("payload"))
    )


def test_http_tool_on_a_private_address_is_refused_at_save(make_agent, settings):
    from agents.config import ConfigError

    settings.OUTBOUND_ALLOW_HOSTS = []
    tool = {
        "type": "http",
        "name": "peek",
        "description": "internal",
        "config": {"url": "http://10.1.2.3/admin"},
    }

    with pytest.raises(ConfigError) as exc:
        make_agent(tools=[tool])
    assert "tools.0.config.url" in exc.value.errors


def test_http_tool_is_checked_again_at_call_time(llm, make_agent, alice, settings):
    # Allowed when saved, forbidden by the time it runs (an operator tightened the allow-list).
    settings.OUTBOUND_ALLOW_HOSTS = ["10.0.0.0/8"]
    tool = {
        "type": "http",
        "name": "peek",
        "description": "internal",
        "config": {"url": "http://10.1.2.3/admin"},
    }
    agent = make_agent(tools=[tool])
    settings.OUTBOUND_ALLOW_HOSTS = []

    run = services.run_create(agent=agent, user=alice, input="[[tool:peek {}]]")
    execute_run(run.pk)

    result = RunEvent.objects.get(run_id=run.pk, type="tool_result").payload["result"]
    assert "Refusing to connect" in result


def test_api_approval_resumes_the_waiting_run_on_the_worker(llm, make_agent, alice, celery_worker):
    from rest_framework.test import APIClient

    agent = make_agent(tools=[{"type": "calculator", "ask_before_run": True}])
    client = APIClient()
    client.force_authenticate(alice)
    response = client.post(
        f"/api/v1/agents/{agent.pk}/run",
        {"input": '[[tool:calculator {"expression": "3*3"}]]'},
        format="json",
    )
    run_id = response.json()["run_id"]
    wait_for(lambda: AgentRun.objects.get(pk=run_id).status == AgentRun.Status.WAITING)

    decided = client.post(f"/api/v1/runs/{run_id}/approve", {"approved": True}, format="json")

    assert decided.status_code == 200, decided.content
    wait_for(lambda: AgentRun.objects.get(pk=run_id).status == AgentRun.Status.SUCCEEDED)
    assert AgentRun.objects.get(pk=run_id).output == "Tool result: 9"
    again = client.post(f"/api/v1/runs/{run_id}/approve", {"approved": True}, format="json")
    assert again.status_code == 409

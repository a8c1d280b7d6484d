"""How a run ends, recorded: the answer, a pause for a tool approval, or a failure; each with its
bill (the reservation settled in the same transaction) and its closing events."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from agents.config import ModelChoice
from agents.models import AgentRun, Message
from agents.runtime.events import EventWriter
from agents.runtime.guardrails import Trip, check_output
from config import prepared


class RunFailed(Exception):
    pass


class ModelFailed(Exception):
    """The provider failed before any output was produced (so a fallback may take over)."""


class Paused(Exception):
    """A tool marked "ask before running" wants approval; the run waits in the database."""

    def __init__(self, output: Any):
        super().__init__("paused")
        self.output = output


class Outcome:
    """The ending half of `executor.Execution`: what the stream gathered is written here."""

    run: AgentRun
    events: EventWriter
    text: list[str]
    tool_calls: dict[str, dict[str, Any]]
    citations: dict[int, dict[str, Any]]
    trace: list[dict[str, Any]]
    input_tokens: int
    output_tokens: int
    cost: Decimal
    credits: Decimal
    cancelled: bool
    structured: Any
    buffer_output: bool
    built: Any
    final_status: str
    _choice: ModelChoice

    def ms(self) -> int:
        raise NotImplementedError

    def on_trip(self, trip: Trip) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        run = self.run
        text = "".join(self.text)
        output_json = None
        content: Any = self.structured if self.structured is not None else text
        if not self.cancelled:
            content, notes, blocking = check_output(content, self.built.config.guardrails, self.built.schema)
            for note in notes:
                self.on_trip(note)
            if blocking is not None:
                self.on_trip(blocking)
                raise RunFailed(f"Blocked by output guardrail: {blocking.message}")
        if isinstance(content, dict | list):
            output_json = content
            text = json.dumps(content, ensure_ascii=False, indent=2)
        else:
            text = str(content)
        if self.buffer_output and text and not self.cancelled:
            with self.events.held():  # its row goes with the COMMIT below
                self.events.emit("delta", {"text": text})
        status = AgentRun.Status.CANCELLED if self.cancelled else AgentRun.Status.SUCCEEDED
        self.final_status = status
        # One transaction for the answer, the run's final fields, the bill and the remaining events
        # ("done" included); "done" is announced after the commit, so a client that reacts to it
        # finds the final rows.
        with transaction.atomic():
            message = None
            if run.session_id and text:
                # Keyed at the run's load (`reply_id`), it goes out with the COMMIT like the rest.
                reply_id = getattr(run, "reply_id", None)
                (message,) = prepared.insert(
                    [
                        Message(
                            pk=reply_id,
                            organization_id=run.organization_id,
                            session_id=run.session_id,
                            role=Message.Role.ASSISTANT,
                            content=text,
                            structured=output_json,
                            run=run,
                            tool_calls=[
                                {k: v for k, v in c.items() if k in ("id", "name", "args", "result", "error")}
                                for c in self.tool_calls.values()
                            ],
                            citations=list(self.citations.values()),
                        )
                    ],
                    at_commit=reply_id is not None,
                )
            latency_ms = self.ms()
            prepared.update(  # this, the message, the events and the settle go out with the COMMIT, in one flight
                AgentRun,
                at_commit=True,
                where={"id": run.pk},
                values={
                    "status": status,
                    "output": text,
                    "output_json": output_json,
                    "model_used": f"{self._choice.provider}/{self._choice.name}",
                    "input_tokens": self.input_tokens,
                    "output_tokens": self.output_tokens,
                    "cost": self.cost,
                    "latency_ms": latency_ms,
                    "trace": self.trace,
                    "last_seq": self.events.seq + 1,
                    "finished_at": timezone.now(),
                    "error": "Cancelled by the user." if self.cancelled else "",
                },
            )
            done = self.events.stage(
                "done",
                {
                    "status": status,
                    "message_id": message.pk if message else None,
                    "input_tokens": self.input_tokens,
                    "output_tokens": self.output_tokens,
                    "cost": str(self.cost),
                    "latency_ms": latency_ms,
                },
            )
            self.events.flush(at_commit=True)
            self._settle(status)  # last: it locks the organization's balance row, so it rides with the COMMIT
        self.events.result = {
            "session_id": run.session_id,
            "status": status,
            "output": text,
            "output_json": output_json,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": str(self.cost),
            "latency_ms": latency_ms,
            "error": "Cancelled by the user." if self.cancelled else "",
        }
        self.events.announce(done)

    def wait_for_approval(self, output: Any) -> None:
        """Park the run: its agno state goes to the database, nothing sleeps in the worker."""
        self.final_status = AgentRun.Status.WAITING
        state = json.loads(json.dumps(output.to_dict(), default=str))
        tools = [
            {"name": t.tool_name, "args": t.tool_args or {}}
            for t in (output.tools or [])
            if t.requires_confirmation and t.confirmed is None
        ]
        self.events.flush()
        AgentRun.objects.filter(pk=self.run.pk).update(
            status=AgentRun.Status.WAITING,
            paused_state=state,
            output="".join(self.text),
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost=self.cost,
            trace=self.trace,
            last_seq=self.events.seq + 1,
        )
        self.events.emit("approval", {"tools": tools, "status": "waiting"})
        from agents.runtime.events import done_signal

        # A caller waiting for the answer gets the question.
        self.events.signalled = done_signal(self.run.pk, AgentRun.Status.WAITING)

    def _settle(self, status: str) -> None:
        """Billing: release the reservation and charge what was used, last in the run's final
        transaction (sent with its COMMIT, billing.hooks)."""
        from billing.hooks import settle_agent_run

        choice = getattr(self, "_choice", None)
        settle_agent_run(
            run=self.run,
            credits=self.credits,
            model=choice.name if choice else "",
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            status=status,
        )

    def fail(self, reason: str) -> None:
        run = self.run
        self.final_status = AgentRun.Status.FAILED
        self.events.flush()
        with transaction.atomic():
            AgentRun.objects.filter(pk=run.pk).update(
                status=AgentRun.Status.FAILED,
                error=reason[:5000],
                output="".join(self.text),
                input_tokens=self.input_tokens,
                output_tokens=self.output_tokens,
                cost=self.cost,
                latency_ms=self.ms(),
                trace=self.trace,
                last_seq=self.events.seq + 2,
                finished_at=timezone.now(),
            )
            self._settle(AgentRun.Status.FAILED)
        self.events.emit("error", {"message": reason, "final": True})
        self.events.emit("done", {"status": AgentRun.Status.FAILED, "error": reason})

"""Executing one AgentRun in a worker: claim it, build the agent, stream, record, settle.

Steps (ARCHITECTURE "A chat message, end to end", 4 and 7):
- claim the run with a conditional update, so a redelivered task is harmless;
- re-check that the run's user may still use the agent's organization;
- stream from the model; every delta, tool call, handoff and guardrail trip is a RunEvent;
- if the primary model fails before producing anything, try the fallback model;
- save the assistant message, tokens, cost, latency and trace in one transaction (`outcome`).
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any

from agno.agent import Agent as AgnoAgent
from agno.run.agent import RunOutput
from agno.run.team import TeamRunOutput
from django.db.models import Case, Exists, OuterRef, When
from django.utils import timezone

from accounts.models import Membership
from accounts.services import ServiceError
from agents.config import ModelChoice
from agents.models import AgentRun, Message
from agents.runtime import cancel
from agents.runtime.builder import build_agent
from agents.runtime.citations import citations_in
from agents.runtime.context import approved_output, extra_context, history_messages, with_context
from agents.runtime.events import EventWriter
from agents.runtime.guardrails import Trip
from agents.runtime.outcome import ModelFailed, Outcome, Paused, RunFailed
from agents.runtime.providers import begin_tracking, close_tracked, cost_of
from agents.runtime.tools import ToolContext
from billing.hooks import run_keys, settle_reads
from billing.pricing import token_cost, tool_cost
from config import prepared
from config.db import release
from config.prepared import Prepared

logger = logging.getLogger(__name__)
CANCEL_POLL_SECONDS = 0.1


class Execution(Outcome):
    def __init__(self, run: AgentRun):
        self.run = run
        self.events = EventWriter(run.pk, run.last_seq)
        self.text: list[str] = []
        self.tool_calls: dict[str, dict[str, Any]] = {}
        self.citations: dict[int, dict[str, Any]] = {}  # by chunk id, in the order first returned
        self.trace: list[dict[str, Any]] = []
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost = Decimal(0)
        self.credits = Decimal(0)  # what billing charges: tokens by model, plus paid tools
        self.started = time.monotonic()
        self.started_at = time.time()
        self.cancelled = False
        self.structured: Any = None
        self.final_status = ""
        self.buffer_output = False
        self.input_blocked = False

    def ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    # ---------------------------------------------------------------- trips
    def on_trip(self, trip: Trip) -> None:
        self.input_blocked = self.input_blocked or trip.blocks
        self.events.emit("guardrail", {"stage": trip.stage, "rule": trip.rule, "message": trip.message})

    # --------------------------------------------------------------- stream
    def stream(self, choice: ModelChoice | None, resume_state: dict[str, Any] | None = None) -> None:
        run = self.run
        config_built = build_agent(
            agent=run.agent,
            version=run.version,
            ctx=ToolContext(run.organization_id, run.agent_id, run.pk, run.user_id),
            model_choice=choice,
            history=history_messages(run),
            extra_context=self._context,
            on_trip=self.on_trip,
        )
        self.built = config_built
        self.buffer_output = (
            config_built.config.guardrails.output.pii_redaction or config_built.schema is not None
        )
        self.events.emit("model", {"model": config_built.model_label, "phase": "start", "at_ms": self.ms()})
        if resume_state is None and not run.streamed and isinstance(config_built.runner, AgnoAgent):
            self.answer_whole(config_built.runner)
            return
        produced = False
        last_poll = time.monotonic()
        begin_tracking()
        if resume_state is not None:
            iterator: Any = config_built.runner.continue_run(  # type: ignore[union-attr, call-overload]
                approved_output(resume_state), stream=True, stream_events=True, yield_run_output=True
            )
        else:
            iterator = config_built.runner.run(
                run.input, stream=True, stream_events=True, yield_run_output=True
            )
        final: Any = None
        release()  # no database connection is held while the model thinks
        for ev in iterator:
            name = getattr(ev, "event", "") or ""
            if time.monotonic() - last_poll > CANCEL_POLL_SECONDS:
                last_poll = time.monotonic()
                if cancel.is_requested(run.pk):
                    self.cancelled = True
                    close_tracked()  # agno leaves the HTTP stream open; close it so the provider stops
                    break
            if name.endswith("RunContent"):
                content = ev.content
                if isinstance(content, str):
                    if content:
                        produced = True
                        self.text.append(content)
                        if not self.buffer_output:
                            self.events.emit("delta", {"text": content})
                elif content is not None:
                    produced = True
                    self.structured = content
            elif name.endswith("ToolCallStarted"):
                produced = True
                self._tool_started(ev.tool)
            elif name.endswith("ToolCallCompleted") or name.endswith("ToolCallError"):
                self._tool_completed(ev.tool)
            elif name.endswith("ModelRequestCompleted"):
                self._model_call(ev)
            elif name.endswith("RunError"):
                error_type = getattr(ev, "error_type", "") or ""
                message = str(getattr(ev, "content", "") or "The model call failed.")
                if error_type in ("input_check_error",):
                    raise RunFailed(f"Blocked by input guardrail: {message}")
                if error_type in ("output_check_error",):
                    raise RunFailed(f"Blocked by output guardrail: {message}")
                raise self._failed(message, produced)
            elif isinstance(ev, RunOutput | TeamRunOutput):
                final = ev  # the last item, with yield_run_output
        if final is not None:
            self._take_totals(final)
        status = str(getattr(final, "status", "") or "")
        if final is not None and status.endswith("paused") and not self.cancelled:
            raise Paused(final)
        if final is not None and status.endswith("error") and not self.cancelled:
            raise self._failed(str(final.content or "The model call failed."), produced)
        if final is not None and self.structured is None and not isinstance(final.content, str):
            self.structured = final.content

    def answer_whole(self, runner: AgnoAgent) -> None:
        """The answer in one piece, for a run nobody follows token by token (`AgentRun.streamed`):
        the model is not asked to stream, which spares agno's and the relay's work on every chunk.
        Its model calls, tool calls and results become events once it is done, in their order, and
        its text one delta at the finish (`buffer_output`); their rows go with the run's final
        transaction. A cancel shuts the connection the
        answer is read from (`cancel.watching`)."""
        self.buffer_output = True
        release()  # no database connection is held while the model thinks
        with cancel.watching(self.run.pk) as watch:
            final = runner.run(self.run.input)
        self.cancelled = watch.fired
        status = str(final.status or "")
        if status.endswith("error"):
            if self.cancelled:
                return  # the shut connection: nothing came of the call
            raise self._failed(str(final.content or "The model call failed."), bool(final.tools))
        tools = {tool.tool_call_id: tool for tool in final.tools or []}
        with self.events.held():  # their rows go with the final transaction
            for said in final.messages or []:  # the history's messages carry no metrics
                metrics = said.metrics
                if said.role == "assistant" and metrics and (metrics.input_tokens or metrics.output_tokens):
                    self._model_call(metrics)
                elif said.role == "tool" and said.tool_call_id in tools:
                    tool = tools.pop(said.tool_call_id)
                    timed = tool.metrics
                    self._tool_started(tool, self._ms_at(timed.start_time if timed else None))
                    self._tool_completed(tool, self._ms_at(timed.end_time if timed else None))
        self._take_totals(final)
        if status.endswith("paused") and not self.cancelled:
            raise Paused(final)
        if isinstance(final.content, str):
            self.text.append(final.content)
        elif final.content is not None:
            self.structured = final.content

    def _failed(self, message: str, produced: bool) -> Exception:
        """How a failed model call ends the run: blocked by the input guardrail; else, with nothing
        produced yet, the fallback model may take over (`ModelFailed`); else the run fails."""
        if self.input_blocked:
            return RunFailed(f"Blocked by input guardrail: {message}")
        return RunFailed(message) if produced else ModelFailed(message)

    def _take_totals(self, final: Any) -> None:
        """The run's token totals, when its model calls reported no usage of their own."""
        if getattr(final, "metrics", None) is not None and not self.trace_has_tokens:
            self.input_tokens = final.metrics.input_tokens or 0
            self.output_tokens = final.metrics.output_tokens or 0

    def _ms_at(self, epoch: float | None) -> int:
        """A wall-clock time as milliseconds into the run, as `ms` counts them."""
        return self.ms() if not epoch else max(0, int((epoch - self.started_at) * 1000))

    @property
    def trace_has_tokens(self) -> bool:
        return self.input_tokens > 0 or self.output_tokens > 0

    def _tool_started(self, tool: Any, at_ms: int | None = None) -> None:
        call_id = tool.tool_call_id or f"t{len(self.tool_calls) + 1}"
        start_ms = self.ms() if at_ms is None else at_ms
        entry = {"id": call_id, "name": tool.tool_name, "args": tool.tool_args or {}, "start_ms": start_ms}
        self.tool_calls[call_id] = entry
        if tool.tool_name in ("delegate_task_to_member", "delegate_task_to_members"):
            args = tool.tool_args or {}
            self.events.emit(
                "handoff",
                {
                    "id": call_id,
                    "to": args.get("member_id", "all members"),
                    "task": str(args.get("task", ""))[:2000],
                },
            )
        else:
            self.events.emit(
                "tool_call", {"id": call_id, "name": tool.tool_name, "args": tool.tool_args or {}}
            )

    def _tool_completed(self, tool: Any, at_ms: int | None = None) -> None:
        call_id = tool.tool_call_id or next(reversed(self.tool_calls), "t0")
        end_ms = self.ms() if at_ms is None else at_ms
        entry = self.tool_calls.setdefault(
            call_id, {"id": call_id, "name": tool.tool_name, "start_ms": end_ms}
        )
        full = str(tool.result if tool.result is not None else "")
        if not tool.tool_call_error:
            for citation in citations_in(full):
                self.citations.setdefault(citation["chunk_id"], citation)
        result = full[:4000]
        entry.update(result=result, error=bool(tool.tool_call_error), end_ms=end_ms)
        kind = "handoff" if tool.tool_name.startswith("delegate_task_to_member") else "tool"
        if not tool.tool_call_error:
            self.credits += tool_cost(tool.tool_name, len(full) // 4)
        self.trace.append(
            {
                "type": kind,
                "name": tool.tool_name,
                "start_ms": entry["start_ms"],
                "end_ms": entry["end_ms"],
                "error": entry["error"],
            }
        )
        self.events.emit(
            "tool_result",
            {"id": call_id, "name": tool.tool_name, "result": result, "error": bool(tool.tool_call_error)},
        )

    def _model_call(self, ev: Any) -> None:
        inp, out = int(ev.input_tokens or 0), int(ev.output_tokens or 0)
        self.input_tokens += inp
        self.output_tokens += out
        choice = self._choice
        cost = cost_of(choice.provider, choice.name, inp, out)
        self.cost += cost
        self.credits += token_cost(choice.name, inp, out)
        self.trace.append(
            {
                "type": "model",
                "name": f"{choice.provider}/{choice.name}",
                "end_ms": self.ms(),
                "input_tokens": inp,
                "output_tokens": out,
                "cost": str(cost),
            }
        )

    # ------------------------------------------------------------------ run
    def execute(self, resume_state: dict[str, Any] | None = None) -> None:
        run = self.run
        from agents.runtime.builder import version_config

        parsed = version_config(run.version)
        self._context = extra_context(run, parsed.memory.enabled, parsed.memory.max_items)
        choices = [parsed.model] + (
            [ModelChoice(**parsed.model.fallback.model_dump())] if parsed.model.fallback else []
        )
        errors = []
        for i, choice in enumerate(choices):
            self._choice = choice
            try:
                self.stream(choice if i else None, resume_state)
                break
            except ModelFailed as exc:
                errors.append(f"{choice.provider}/{choice.name}: {exc}")
                self.events.emit(
                    "error",
                    {
                        "message": str(exc),
                        "model": f"{choice.provider}/{choice.name}",
                        "fallback": i + 1 < len(choices),
                    },
                )
            except ServiceError as exc:  # provider not configured, unsafe base URL, ...
                errors.append(f"{choice.provider}/{choice.name}: {exc}")
                self.events.emit(
                    "error",
                    {
                        "message": str(exc),
                        "model": f"{choice.provider}/{choice.name}",
                        "fallback": i + 1 < len(choices),
                    },
                )
        else:
            label = "The model failed" if len(errors) == 1 else "The model and its fallback both failed"
            raise RunFailed(f"{label}: " + " | ".join(errors))


def _run_to_execute(run_id: int, reserve: str, release: str, usage: str) -> Any:
    # One query for the run, its agent and version, the permission re-check (is its user still a
    # member of the org?), and what it reads besides (history, context entries: `with_context`; the
    # entries its settle needs: `settle_reads`, with the keys of `run_keys`).
    member = Membership.objects.filter(
        user_id=OuterRef("user_id"), organization_id=OuterRef("organization_id")
    )
    return with_context(
        AgentRun.objects.select_related("agent", "version")
        .annotate(
            still_member=Exists(member),
            # The key of the answer's Message, so that it goes out with the final COMMIT (`finish`).
            reply_id=Case(When(session__isnull=False, then=prepared.next_id(Message))),
            **settle_reads(reserve, release, usage),
        )
        .filter(pk=run_id)
    )


_RUN_TO_EXECUTE = Prepared(_run_to_execute, int, str, str, str)  # every run: compiled once


def execute_run(run_id: int, *, resume: bool = False) -> str:
    """Run it (or resume it after an approval). Returns the status it ended in. Never raises for a
    run's own failure: that is a failed status with the reason."""
    if resume:
        claimed = AgentRun.objects.filter(
            pk=run_id, status=AgentRun.Status.WAITING, paused_state__has_key="decision"
        ).update(status=AgentRun.Status.RUNNING)
        if not claimed:
            return "skipped"  # gone, cancelled, undecided, or another worker has it
        run = _RUN_TO_EXECUTE.first(run_id, *run_keys(run_id))
        if run is None:
            raise AgentRun.DoesNotExist(f"run {run_id} is gone")
    else:
        # The claim and the load in one statement: no run unless this worker claimed it.
        run = _RUN_TO_EXECUTE.first_updated(
            {"id": run_id, "status": AgentRun.Status.QUEUED},
            {"status": AgentRun.Status.RUNNING, "started_at": timezone.now()},
            run_id,
            *run_keys(run_id),
        )
        if run is None:
            return "skipped"  # gone, cancelled, or another worker has it
    execution = Execution(run)
    execution.events.emit("status", {"status": "running"})
    try:
        if run.user_id is not None and not run.still_member:
            raise RunFailed("The user who started this run is no longer a member of the organization.")
        execution.execute(run.paused_state if resume else None)
        execution.finish()
    except Paused as paused:
        execution.wait_for_approval(paused.output)
    except RunFailed as exc:
        execution.fail(str(exc))
    except Exception as exc:
        logger.exception("run %s crashed", run_id)
        execution.fail(f"Internal error while running the agent ({type(exc).__name__}).")
    finally:
        if not execution.events.signalled:  # the done signal clears the flag in its own round trip
            cancel.clear(run_id)
        close_tracked()
    status = execution.final_status
    if run.source == AgentRun.Source.TASK:
        from agents.services import task_finish

        run.status = status
        task_finish(run=run)
    return status

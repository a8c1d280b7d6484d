"""The durable workflow engine: a state machine in PostgreSQL, one StepRun per node execution.

- A step is created `pending` and queued. The task that runs it first claims it with a conditional
  update (pending -> running, attempt + 1, a lease), so a repeated or late task does nothing.
- Pure, fast nodes (trigger, transform, condition, switch, parallel, join, loop, set-variable, end)
  continue in the task that finished the step before them: they are still created `pending` and
  claimed the same way, just without a trip through the broker.
- Every completion happens in one transaction that locks the run row: the step's result, the run's
  context (node outputs, variables, loop state), the next steps, and the run's own status. Parallel
  branches finishing together are therefore serialized, and exactly one of them ends the run.
- Approvals, delays and sub-workflows are `waiting` steps in the database, never sleeping workers.
  A decision, the beat sweeper (timeouts, due delays, expired leases) or the child run moves them on.
- A failed step is retried by its policy (attempts, exponential backoff). When it fails for good it
  follows its `error` edge if it has one, else the run fails and everything still open is cancelled.

The package, one concern per module:
- `types`: results, waits, the step context, errors and limits (what node executors see);
- `common`: the graph cache, timeouts, retry policies, queueing a step;
- `start`: a run's trigger step;
- `execute`: one step in a Celery task (claim, permission re-check, its node);
- `chain`: the pure, fast nodes that follow, run in the same task;
- `steps`: a step's template scope, and what happens when its node raises;
- `flow`: completing and failing steps, joins, finishing and cancelling runs;
- `waiting`: approvals, delays, sub-workflows and credit pauses, parked and woken;
- `sweep`: the beat sweeper.
"""

from __future__ import annotations

from workflows.engine.common import dispatch, graph_for, retry_of, timeout_of
from workflows.engine.execute import execute_step
from workflows.engine.flow import cancel_run, complete_step, fail_step
from workflows.engine.start import start_run
from workflows.engine.sweep import sweep
from workflows.engine.types import (
    DEFAULT_TIMEOUT,
    DEFAULT_TIMEOUTS,
    LEASE_GRACE_SECONDS,
    MAX_OUTPUT_CHARS,
    MAX_STEPS_PER_RUN,
    SHORT_WAIT_SECONDS,
    CreditsPaused,
    NodeError,
    Result,
    StepContext,
    Wait,
)
from workflows.engine.waiting import child_done, resume_approval, resume_credit_paused, wake

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_TIMEOUTS",
    "LEASE_GRACE_SECONDS",
    "MAX_OUTPUT_CHARS",
    "MAX_STEPS_PER_RUN",
    "SHORT_WAIT_SECONDS",
    "CreditsPaused",
    "NodeError",
    "Result",
    "StepContext",
    "Wait",
    "cancel_run",
    "child_done",
    "complete_step",
    "dispatch",
    "execute_step",
    "fail_step",
    "graph_for",
    "resume_approval",
    "resume_credit_paused",
    "retry_of",
    "start_run",
    "sweep",
    "timeout_of",
    "wake",
]

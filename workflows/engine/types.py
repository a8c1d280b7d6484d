"""What node executors and the engine exchange: results, waits, the step context, errors, limits."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from workflows.graph import Graph
from workflows.models import StepRun, WorkflowRun

LEASE_GRACE_SECONDS = int(os.environ.get("WORKFLOW_LEASE_GRACE_SECONDS", "30"))
DEFAULT_TIMEOUTS = {
    "agent": 600,
    "team": 1200,
    "router": 120,
    "http": 60,
    "knowledge": 60,
    "integration": 120,
}
DEFAULT_TIMEOUT = 60
SHORT_WAIT_SECONDS = 300  # delays up to this long also get a countdown task; the sweeper backs them all up
MAX_STEPS_PER_RUN = 5000
MAX_OUTPUT_CHARS = 200_000


class NodeError(Exception):
    """A node failed with a message for people. `retryable=False` skips the retry policy."""

    def __init__(self, message: str, *, retryable: bool = True, logs: list[str] | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.logs = logs or []


class CreditsPaused(Exception):
    """The organization ran out of credits: the step waits (the run pauses) until a top-up."""


@dataclass
class Wait:
    """The step waits: until `wake_at` (delay, approval timeout) and/or for an outside event."""

    wake_at: datetime | None = None
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    output: Any = None
    port: str = "out"
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal = Decimal(0)
    logs: list[str] = field(default_factory=list)
    wait: Wait | None = None
    vars: dict[str, Any] | None = None  # set-variable
    loop_state: dict[str, Any] | None = None  # loop


@dataclass
class StepContext:
    """What a node executor sees."""

    step: StepRun
    run: WorkflowRun
    graph: Graph
    node: dict[str, Any]
    config: dict[str, Any]
    scope: dict[str, Any]
    logs: list[str] = field(default_factory=list)

    @property
    def org_id(self) -> int:
        return self.run.organization_id

    def log(self, message: str) -> None:
        self.logs.append(f"{timezone.now().strftime('%H:%M:%S.%f')[:-3]} {message}")


_UNSET: Any = object()  # "no end node has given the run its output yet" (None is a valid output)

"""Thin tasks: take ids, call the runtime."""

from __future__ import annotations

from celery import shared_task

from agents.runtime.executor import execute_run as _execute_run


@shared_task(acks_late=True, ignore_result=True)
def execute_run(run_id: int) -> str:
    # The executor claims the run with a conditional update, so a redelivered task does nothing.
    return _execute_run(run_id)


@shared_task(acks_late=True, ignore_result=True)
def resume_run(run_id: int) -> str:
    # Claims WAITING -> RUNNING only once a decision is stored, so a repeat does nothing.
    return _execute_run(run_id, resume=True)

"""/api/v1/tasks/: work assigned to an agent, run in the background; completing it earns the agent XP."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from agents import services
from agents.api.common import (
    ERRORS,
    ERRORS_409,
    acting_user,
    agent_or_404,
    call,
    doc,
    org_for,
    paginate,
    query_int,
    writer,
)
from agents.models import RunEvent, Task
from agents.serializers import TaskInput, TaskLogsOutput, TaskOutput, TaskUpdateInput
from config.api import ApiError


def _task_or_404(request: Request, task_id: int, write: bool = False) -> Task:
    ctx = writer(request) if write else org_for(request)
    task = Task.objects.for_org(ctx.org).select_related("run").filter(pk=task_id).first()
    if task is None:
        raise ApiError(404, "not_found", "No such task in this organization.")
    return task


@doc(
    methods=["GET"],
    responses={200: TaskOutput(many=True), **ERRORS},
    parameters=[
        OpenApiParameter("agent", int),
        OpenApiParameter("status", str, enum=Task.Status.values),
    ],
    tags=["tasks"],
    operation_id="tasks_list",
)
@doc(
    methods=["POST"],
    request=TaskInput,
    responses={201: TaskOutput, **ERRORS_409},
    tags=["tasks"],
    operation_id="tasks_create",
    description="Assign a task to an agent. It starts at once as a background run; the XP reward "
    "follows the priority (low 10, medium 25, high 50, urgent 100).",
)
@api_view(["GET", "POST"])
def task_list(request: Request) -> Response:
    if request.method == "POST":
        ctx = writer(request)
        body = TaskInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        agent = agent_or_404(request, ctx, data["agent_id"])
        task = call(
            services.task_create,
            agent=agent,
            by=acting_user(request, ctx),
            title=data["title"],
            details=data["details"],
            priority=data["priority"],
        )
        return Response(TaskOutput(task).data, status=status.HTTP_201_CREATED)
    ctx = org_for(request)
    tasks = Task.objects.for_org(ctx.org)
    agent_id = query_int(request, "agent")
    if agent_id is not None:
        tasks = tasks.filter(agent=agent_or_404(request, ctx, agent_id))
    wanted = request.query_params.get("status")
    if wanted:
        if wanted not in Task.Status.values:
            raise ValidationError({"status": [f"Use one of {', '.join(Task.Status.values)}."]})
        tasks = tasks.filter(status=wanted)
    return paginate(request, tasks.order_by("-created_at", "-id"), TaskOutput)


@doc(methods=["GET"], responses={200: TaskOutput, **ERRORS}, tags=["tasks"])
@doc(
    methods=["PATCH"],
    request=TaskUpdateInput,
    responses={200: TaskOutput, **ERRORS_409},
    tags=["tasks"],
    description="Title and details can change only while the task is pending.",
)
@doc(
    methods=["DELETE"],
    responses={204: None, **ERRORS},
    tags=["tasks"],
    description="Delete the task; an unfinished run of it is cancelled.",
)
@api_view(["GET", "PATCH", "DELETE"])
def task_detail(request: Request, task_id: int) -> Response:
    task = _task_or_404(request, task_id, write=request.method != "GET")
    if request.method == "GET":
        return Response(TaskOutput(task).data)
    if request.method == "DELETE":
        if task.run is not None and not task.run.is_finished:
            services.run_cancel(run=task.run)
        task.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
    body = TaskUpdateInput(data=request.data)
    body.is_valid(raise_exception=True)
    changes = dict(body.validated_data)
    # Conditional update: the worker may start the task between our read and this write.
    still_pending = Task.objects.filter(pk=task.pk, status=Task.Status.PENDING)
    if not (still_pending.update(**changes) if changes else still_pending.exists()):
        raise ApiError(409, "task_started", "This task has started; its title and details are fixed now.")
    task.refresh_from_db()
    return Response(TaskOutput(task).data)


@doc(responses={200: TaskLogsOutput, **ERRORS}, tags=["tasks"])
@api_view(["GET"])
def task_logs(request: Request, task_id: int) -> Response:
    """The task's status and the events of its run, in order."""
    task = _task_or_404(request, task_id)
    run = task.run
    events = RunEvent.objects.filter(run=run).order_by("seq") if run is not None else RunEvent.objects.none()
    return Response(
        TaskLogsOutput(
            {
                "task_id": task.pk,
                "status": task.status,
                "run_id": run.pk if run else None,
                "run_status": run.status if run else None,
                "error": run.error if run else "",
                "events": events,
            }
        ).data
    )

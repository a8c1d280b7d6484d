"""Websocket URLs. Each app adds its consumers here."""

from django.urls import path

from agents.consumers import RunConsumer
from community.consumers import NotificationConsumer
from knowledge.consumers import KnowledgeProgressConsumer
from workflows.consumers import WorkflowRunConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationConsumer.as_asgi()),
    path("ws/runs/<int:run_id>/", RunConsumer.as_asgi()),
    path("ws/knowledge/<int:kb_id>/", KnowledgeProgressConsumer.as_asgi()),
    path("ws/workflow-runs/<int:run_id>/", WorkflowRunConsumer.as_asgi()),
]

"""The agents REST API under /api/v1/, split by concern; `agents.api.urls` lists the paths."""

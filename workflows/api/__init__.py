"""The workflows REST API, under /api/v1/ (issue 5 "API")."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from config.api import api_404


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """API paths get the JSON envelope; pages get the styled 404."""
    if request.path.startswith("/api/"):
        return api_404(request, exception)
    response = TemplateResponse(request, "404.html", status=404)
    return response.render()

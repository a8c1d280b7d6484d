from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


class BodySizeLimitMiddleware:
    """Refuse oversized bodies up front with 413, before anything reads them.

    Django's own DATA_UPLOAD_MAX_MEMORY_SIZE check surfaces as a 400 deep inside parsing;
    a declared Content-Length over the cap is answered here, in the API's envelope for /api/.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        is_upload = (request.META.get("CONTENT_TYPE") or "").startswith("multipart/")
        limit = settings.MAX_REQUEST_BODY_BYTES if is_upload else settings.API_MAX_BODY_BYTES
        if length > limit:
            detail = f"Request body is too large ({length} bytes; the limit is {limit} bytes)."
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {"detail": detail, "error_code": "request_too_large", "field_errors": {}}, status=413
                )
            return HttpResponse(detail, status=413, content_type="text/plain")
        return self.get_response(request)

"""API plumbing shared by every app: the error envelope, pagination, throttles, root and health."""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404, HttpRequest, JsonResponse
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.throttling import CountingThrottle

logger = logging.getLogger(__name__)

API_VERSION = "1.0.0"

_DEFAULT_CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "throttled",
}


class ErrorEnvelopeSerializer(serializers.Serializer):
    detail = serializers.CharField()
    error_code = serializers.CharField()
    field_errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


def _flatten(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error structure into {"field.sub": ["message", ...]}."""
    out: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, name))
    elif isinstance(errors, list):
        if all(not isinstance(e, dict | list) for e in errors):
            out[prefix or "non_field_errors"] = [str(e) for e in errors]
        else:
            for i, value in enumerate(errors):
                out.update(_flatten(value, f"{prefix}.{i}" if prefix else str(i)))
    else:
        out[prefix or "non_field_errors"] = [str(errors)]
    return out


def _first_code(detail: Any) -> str | None:
    if isinstance(detail, exceptions.ErrorDetail):
        return detail.code
    if isinstance(detail, dict):
        for value in detail.values():
            code = _first_code(value)
            if code:
                return code
    if isinstance(detail, list):
        for value in detail:
            code = _first_code(value)
            if code:
                return code
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every API error leaves in one envelope: {"detail", "error_code", "field_errors"}."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    status_code = response.status_code
    detail: Any = getattr(exc, "detail", None)
    field_errors: dict[str, list[str]] = {}
    error_code = getattr(exc, "default_code", None) or _DEFAULT_CODES.get(status_code, "error")
    if isinstance(exc, exceptions.ValidationError):
        field_errors = _flatten(detail)
        message = "Invalid input."
        non_field = field_errors.get("non_field_errors")
        if non_field and len(field_errors) == 1:
            message = non_field[0]
        error_code = (
            _first_code(detail) if _first_code(detail) not in (None, "invalid", "required") else "invalid"
        )
    elif isinstance(detail, dict | list):
        field_errors = _flatten(detail)
        message = next(iter(field_errors.values()))[0] if field_errors else "Error."
    else:
        message = str(detail) if detail is not None else "Error."
        if isinstance(detail, exceptions.ErrorDetail) and detail.code:
            error_code = detail.code
    response.data = {"detail": message, "error_code": error_code, "field_errors": field_errors}
    return response


class ApiError(exceptions.APIException):
    """An API error with a specific status and error code, e.g. ApiError(409, "conflict", "...")."""

    def __init__(self, status_code: int, code: str, detail: str):
        self.status_code = status_code
        self.default_code = code
        super().__init__(detail=detail, code=code)


class AuthRateThrottle(CountingThrottle):
    """Stricter limit (THROTTLE_AUTH) for endpoints that take a credential or token, keyed by client IP.

    allauth's own endpoints (sign-in, sign-up, reset) have their rate limits in ACCOUNT_RATE_LIMITS.
    """

    scope = "auth"

    def get_cache_key(self, request: Request, view: object) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def api_404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": "Not found.", "error_code": "not_found", "field_errors": {}}, status=404)


# ------------------------------------------------------------------ views


@extend_schema(
    responses=inline_serializer(
        "ApiInfo",
        {
            "name": serializers.CharField(),
            "version": serializers.CharField(),
            "docs": serializers.CharField(),
            "schema": serializers.CharField(),
            "authentication": serializers.ListField(child=serializers.CharField()),
            "endpoints": serializers.DictField(child=serializers.CharField()),
        },
    ),
    auth=[],
    tags=["meta"],
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def api_root(request: Request) -> Response:
    """API information (doc 001 §4.8 `GET /`)."""
    base = request.build_absolute_uri("/api/v1/")
    return Response(
        {
            "name": "AgentOS API",
            "version": API_VERSION,
            "docs": request.build_absolute_uri("/api/docs/"),
            "schema": request.build_absolute_uri("/api/schema/"),
            "authentication": [
                "Authorization: Bearer <organization API key>",
                "X-Session-Token: <allauth headless app session token>",
                "Browser session + X-CSRFToken",
            ],
            "endpoints": {
                "health": base + "health",
                "me": base + "me",
                "organizations": base + "organizations/",
                "app_auth": request.build_absolute_uri("/_allauth/app/v1/auth/session"),
            },
        }
    )


def _checks() -> dict[str, str]:
    results: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        results["database"] = "ok"
    except Exception as exc:  # any failure means "not ready"; the reason is logged, not returned
        logger.warning("readiness: database check failed: %s", exc)
        results["database"] = "error"
    try:
        cache.set("readyz", "1", 5)
        results["redis"] = "ok" if cache.get("readyz") == "1" else "error"
    except Exception as exc:
        logger.warning("readiness: redis check failed: %s", exc)
        results["redis"] = "error"
    return results


@extend_schema(
    responses=inline_serializer(
        "Health",
        {
            "status": serializers.CharField(),
            "checks": serializers.DictField(),
            "time": serializers.DateTimeField(),
        },
    ),
    auth=[],
    tags=["meta"],
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
@throttle_classes([])
def api_health(request: Request) -> Response:
    checks = _checks()
    ok = all(v == "ok" for v in checks.values())
    return Response(
        {"status": "ok" if ok else "degraded", "checks": checks, "time": timezone.now()},
        status=status.HTTP_200_OK if ok else status.HTTP_503_SERVICE_UNAVAILABLE,
    )


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive. Touches nothing else."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to serve: the database and Redis both answer."""
    checks = _checks()
    ok = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
    )

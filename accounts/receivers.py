"""Audit hooks on Django's auth signals: the only place sign-ins are observable."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from accounts.services import audit_log_record


@receiver(user_logged_in, dispatch_uid="accounts.audit_login")
def _audit_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit_log_record(action="auth.login", actor=user, organization=user.current_organization, request=request)


@receiver(user_login_failed, dispatch_uid="accounts.audit_login_failed")
def _audit_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    # Never record the password; the email is what an operator needs to spot a brute-force attempt.
    audit_log_record(
        action="auth.login_failed", request=request, email=str(credentials.get("email", ""))[:254]
    )

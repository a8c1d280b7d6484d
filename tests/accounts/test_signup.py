from __future__ import annotations

import json

import pytest
from django.core import mail

from accounts.models import AuditLog, Membership, Organization, Role, User

pytestmark = pytest.mark.django_db


def _signup(client, email="new@example.com", password="a-Strong-pass-42"):
    return client.post("/accounts/signup/", {"email": email, "password1": password, "password2": password})


def test_signup_creates_personal_org_with_owner_membership(client):
    response = _signup(client)

    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"
    user = User.objects.get(email="new@example.com")
    org = Organization.objects.get(created_by=user)
    assert org.is_personal
    assert Membership.objects.get(user=user, organization=org).role == Role.OWNER
    assert user.current_organization == org


def test_signup_lands_on_dashboard_showing_personal_org(client):
    _signup(client)

    page = client.get("/dashboard/")

    assert page.status_code == 200
    assert "new&#x27;s workspace" in page.content.decode() or "new's workspace" in page.content.decode()


def test_duplicate_email_gets_form_error_and_no_second_user(client, alice):
    response = _signup(client, email="ALICE@example.com")

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "email" in errors
    assert "already" in " ".join(errors["email"]).lower()
    assert User.objects.filter(email__iexact="alice@example.com").count() == 1
    assert 'role="alert"' in response.content.decode()


def test_signup_password_mismatch_shows_error_beside_field(client):
    response = client.post(
        "/accounts/signup/",
        {"email": "x@example.com", "password1": "a-Strong-pass-42", "password2": "other-pass-42"},
    )

    assert response.status_code == 200
    assert not User.objects.filter(email="x@example.com").exists()
    assert response.context["form"].errors


def test_login_is_audited(client, alice):
    response = client.post(
        "/accounts/login/", {"login": "alice@example.com", "password": "correct-horse-battery"}
    )

    assert response.status_code == 302
    assert AuditLog.objects.filter(action="auth.login", actor=alice).exists()


def test_failed_login_is_audited_without_password(client, alice):
    client.post("/accounts/login/", {"login": "alice@example.com", "password": "wrong-password"})

    entry = AuditLog.objects.get(action="auth.login_failed")
    assert entry.metadata["email"] == "alice@example.com"
    assert "wrong-password" not in json.dumps(entry.metadata)


def test_password_reset_sends_email(client, alice):
    response = client.post("/accounts/password/reset/", {"email": "alice@example.com"})

    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert "alice@example.com" in mail.outbox[0].to


def test_headless_app_signup_token_then_me(client):
    response = client.post(
        "/_allauth/app/v1/auth/signup",
        data=json.dumps({"email": "mobile@example.com", "password": "a-Strong-pass-42"}),
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    token = response.json()["meta"]["session_token"]
    me = client.get("/api/v1/me", HTTP_X_SESSION_TOKEN=token)
    assert me.status_code == 200
    body = me.json()
    assert body["user"]["email"] == "mobile@example.com"
    assert body["auth"] == "session_token"
    assert body["current_organization"]["is_personal"] is True
    assert [o["role"] for o in body["organizations"]] == ["owner"]


def test_headless_app_login_token_authenticates_api(client, alice, acme):
    response = client.post(
        "/_allauth/app/v1/auth/login",
        data=json.dumps({"email": "alice@example.com", "password": "correct-horse-battery"}),
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    token = response.json()["meta"]["session_token"]
    me = client.get("/api/v1/me", HTTP_X_SESSION_TOKEN=token, HTTP_X_ORGANIZATION=str(acme.pk))
    assert me.json()["current_organization"]["slug"] == acme.slug


def test_invalid_session_token_is_401_envelope(client):
    response = client.get("/api/v1/me", HTTP_X_SESSION_TOKEN="not-a-token")

    assert response.status_code == 401
    assert response.json()["error_code"] == "invalid_session_token"

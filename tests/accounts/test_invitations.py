from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import Invitation, Membership, Role
from tests.conftest import wait_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_admin_invitation_is_emailed_by_the_worker_with_accept_link(celery_worker, client, alice, acme):
    client.force_login(alice)

    response = client.post("/orgs/settings/invitations/", {"email": "dora@example.com", "role": Role.ADMIN})

    assert response.status_code == 302
    invitation = Invitation.objects.get(email="dora@example.com")
    assert invitation.organization == acme
    wait_for(lambda: len(mail.outbox) == 1)
    assert mail.outbox[0].to == ["dora@example.com"]
    assert f"/invitations/{invitation.token}/" in mail.outbox[0].body


def test_invitation_email_task_skips_revoked_and_missing_invitations(alice, acme):
    from accounts.tasks import send_invitation_email

    invitation = Invitation.objects.create(
        organization=acme, email="dora@example.com", invited_by=alice, revoked_at=timezone.now()
    )

    send_invitation_email(invitation.pk)
    send_invitation_email(999_999)

    assert mail.outbox == []


def test_invitee_accepts_and_joins_with_invited_role(celery_worker, client, alice, acme):
    client.force_login(alice)
    client.post("/orgs/settings/invitations/", {"email": "dora@example.com", "role": Role.ADMIN})
    wait_for(lambda: len(mail.outbox) == 1)
    link = re.search(r"http://\S+/invitations/\S+/", mail.outbox[0].body).group(0)
    path = "/invitations/" + link.split("/invitations/", 1)[1]
    dora = UserFactory(email="dora@example.com")
    client.force_login(dora)

    page = client.get(path)
    assert page.status_code == 200
    assert "Accept invitation" in page.content.decode()
    response = client.post(path)

    assert response.status_code == 302
    assert Membership.objects.get(organization=acme, user=dora).role == Role.ADMIN
    assert Invitation.objects.get(email="dora@example.com").status == "accepted"
    dora.refresh_from_db()
    assert dora.current_organization == acme


def test_accept_with_a_different_email_is_refused(client, alice, acme, charlie):
    invitation = Invitation.objects.create(organization=acme, email="dora@example.com", invited_by=alice)
    client.force_login(charlie)

    response = client.post(f"/invitations/{invitation.token}/")

    assert response.status_code == 200
    assert "dora@example.com" in response.context["error"]
    assert not Membership.objects.filter(organization=acme, user=charlie).exists()


def test_expired_invitation_cannot_be_accepted(client, alice, acme):
    invitation = Invitation.objects.create(
        organization=acme,
        email="dora@example.com",
        invited_by=alice,
        expires_at=timezone.now() - timedelta(hours=1),
    )
    dora = UserFactory(email="dora@example.com")
    client.force_login(dora)

    response = client.post(f"/invitations/{invitation.token}/")

    assert "expired" in response.content.decode()
    assert not Membership.objects.filter(organization=acme, user=dora).exists()


def test_anonymous_invitee_is_sent_to_signup_then_back(client, alice, acme):
    invitation = Invitation.objects.create(organization=acme, email="dora@example.com", invited_by=alice)

    response = client.get(f"/invitations/{invitation.token}/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/signup/?next=/invitations/")


def test_duplicate_pending_invitation_shows_field_error(client, alice, acme):
    Invitation.objects.create(organization=acme, email="dora@example.com", invited_by=alice)
    client.force_login(alice)

    response = client.post("/orgs/settings/invitations/", {"email": "dora@example.com", "role": Role.MEMBER})

    assert response.status_code == 200
    assert "pending invitation" in " ".join(response.context["invite_form"].errors["email"])
    assert Invitation.objects.filter(email="dora@example.com").count() == 1


def test_member_cannot_invite_through_html(client, bob, acme):
    client.force_login(bob)
    client.post("/orgs/switch/", {"org": acme.pk})

    response = client.post("/orgs/settings/invitations/", {"email": "eve@example.com", "role": Role.MEMBER})

    assert response.status_code == 403
    assert not Invitation.objects.filter(email="eve@example.com").exists()


def test_guessing_invitation_tokens_is_throttled(alice, charlie):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(charlie)
    codes = [client.post(f"/api/v1/invitations/guess-{i}/accept").status_code for i in range(12)]

    assert codes[:10] == [404] * 10
    assert codes[10] == 429
    response = client.post("/api/v1/invitations/guess-x/accept")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["error_code"] == "throttled"


def test_repeated_failed_app_logins_are_locked_out(client, alice):
    import json

    def attempt(password):
        return client.post(
            "/_allauth/app/v1/auth/login",
            data=json.dumps({"email": "alice@example.com", "password": password}),
            content_type="application/json",
        )

    codes = [attempt(f"wrong-{i}").json()["errors"][0]["code"] for i in range(6)]
    assert codes[:5] == ["email_password_mismatch"] * 5
    assert codes[5] == "too_many_login_attempts"
    # Even the right password is refused while the lock-out lasts.
    assert attempt("correct-horse-battery").status_code == 400


def test_app_login_endpoint_answers_429_over_its_rate(client, alice, settings):
    import json

    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login": "3/m/ip"}
    codes = [
        client.post(
            "/_allauth/app/v1/auth/login",
            data=json.dumps({"email": "alice@example.com", "password": "correct-horse-battery"}),
            content_type="application/json",
        ).status_code
        for _ in range(4)
    ]

    assert codes == [200, 200, 200, 429]

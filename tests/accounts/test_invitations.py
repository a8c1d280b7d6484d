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

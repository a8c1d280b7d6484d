"""/api/v1/ invitations: create, list, revoke, accept; role gating and audit trail."""

from __future__ import annotations

import pytest
from django.core import mail

from accounts.models import AuditLog, Invitation, Membership, Role
from accounts.services import invitation_create
from tests.conftest import wait_for
from tests.factories import UserFactory
from tests.helpers import as_user, assert_envelope

pytestmark = pytest.mark.django_db


def invitations_url(org) -> str:
    return f"/api/v1/organizations/{org.pk}/invitations/"


def test_admin_can_invite(carol, acme):
    response = as_user(carol).post(
        invitations_url(acme), {"email": "Dana@Example.com", "role": "member"}, format="json"
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["email"], body["role"], body["status"], body["invited_by"]) == (
        "dana@example.com",
        "member",
        "pending",
        "carol@example.com",
    )
    assert Invitation.objects.for_org(acme).pending().filter(email="dana@example.com").exists()


def test_invitation_create_is_audited(alice_api, alice, acme):
    response = alice_api.post(invitations_url(acme), {"email": "dana@example.com"}, format="json")

    entry = AuditLog.objects.get(organization=acme, action="invitation.created")
    assert entry.actor == alice
    assert (entry.target_type, entry.target_id) == ("accounts.invitation", str(response.json()["id"]))
    assert entry.metadata == {"email": "dana@example.com"}


def test_api_invitation_is_emailed_by_the_worker(celery_worker, alice_api, acme):
    response = alice_api.post(invitations_url(acme), {"email": "dana@example.com"}, format="json")

    assert response.status_code == 201
    wait_for(lambda: len(mail.outbox) == 1)
    assert mail.outbox[0].to == ["dana@example.com"]
    token = Invitation.objects.get(pk=response.json()["id"]).token
    assert f"/invitations/{token}/" in mail.outbox[0].body


def test_member_cannot_invite(bob, acme):
    response = as_user(bob).post(invitations_url(acme), {"email": "dana@example.com"}, format="json")

    assert_envelope(response, 403, "permission_denied")
    assert not Invitation.objects.for_org(acme).exists()


def test_viewer_cannot_invite(vera, acme):
    response = as_user(vera).post(invitations_url(acme), {"email": "dana@example.com"}, format="json")

    assert_envelope(response, 403, "permission_denied")
    assert not Invitation.objects.for_org(acme).exists()


def test_admin_cannot_invite_an_owner(carol, acme):
    response = as_user(carol).post(
        invitations_url(acme), {"email": "dana@example.com", "role": "owner"}, format="json"
    )

    assert_envelope(response, 403, "permission_denied")
    assert not Invitation.objects.for_org(acme).exists()


def test_owner_can_invite_an_owner(alice_api, acme):
    response = alice_api.post(
        invitations_url(acme), {"email": "dana@example.com", "role": "owner"}, format="json"
    )

    assert response.status_code == 201
    assert Invitation.objects.for_org(acme).get().role == Role.OWNER


def test_inviting_an_existing_member_is_a_conflict(alice_api, acme):
    response = alice_api.post(invitations_url(acme), {"email": "BOB@example.com"}, format="json")

    assert_envelope(response, 409, "already_member")
    assert not Invitation.objects.for_org(acme).exists()


def test_inviting_twice_is_a_conflict(alice_api, acme, invitation):
    response = alice_api.post(invitations_url(acme), {"email": "charlie@example.com"}, format="json")

    assert_envelope(response, 409, "already_invited")
    assert Invitation.objects.for_org(acme).count() == 1


def test_invite_rejects_bad_email(alice_api, acme):
    response = alice_api.post(invitations_url(acme), {"email": "not-an-email"}, format="json")

    body = assert_envelope(response, 400, "invalid")
    assert list(body["field_errors"]) == ["email"]


def test_admin_lists_invitations(alice_api, acme, invitation, charlie_org, charlie):
    invitation_create(org=charlie_org, email="other@example.com", role=Role.MEMBER, by=charlie)

    response = alice_api.get(invitations_url(acme))

    assert response.status_code == 200
    assert [(i["id"], i["email"], i["status"]) for i in response.json()["results"]] == [
        (invitation.pk, "charlie@example.com", "pending")
    ]


def test_member_cannot_list_invitations(bob, acme, invitation):
    response = as_user(bob).get(invitations_url(acme))

    assert_envelope(response, 403, "permission_denied")


def test_admin_revokes_invitation(carol, acme, invitation):
    response = as_user(carol).delete(f"/api/v1/organizations/{acme.pk}/invitations/{invitation.pk}")

    assert response.status_code == 204
    invitation.refresh_from_db()
    assert invitation.status == "revoked"


def test_invitation_revoke_is_audited(alice_api, alice, acme, invitation):
    alice_api.delete(f"/api/v1/organizations/{acme.pk}/invitations/{invitation.pk}")

    entry = AuditLog.objects.get(organization=acme, action="invitation.revoked")
    assert entry.actor == alice
    assert entry.target_id == str(invitation.pk)


def test_revoking_a_revoked_invitation_is_a_conflict(alice_api, acme, invitation):
    url = f"/api/v1/organizations/{acme.pk}/invitations/{invitation.pk}"
    alice_api.delete(url)

    response = alice_api.delete(url)

    assert_envelope(response, 409, "invitation_not_pending")


def test_member_cannot_revoke_invitation(bob, acme, invitation):
    response = as_user(bob).delete(f"/api/v1/organizations/{acme.pk}/invitations/{invitation.pk}")

    assert_envelope(response, 403, "permission_denied")
    invitation.refresh_from_db()
    assert invitation.status == "pending"


# --------------------------------------------------------------- accept


def accept_url(invitation: Invitation) -> str:
    return f"/api/v1/invitations/{invitation.token}/accept"


def test_invitee_accepts_invitation(charlie, acme, invitation):
    response = as_user(charlie).post(accept_url(invitation))

    assert response.status_code == 200
    assert response.json()["role"] == "member"
    assert response.json()["user"]["email"] == "charlie@example.com"
    assert Membership.objects.get(organization=acme, user=charlie).role == Role.MEMBER
    invitation.refresh_from_db()
    assert invitation.status == "accepted"
    assert invitation.accepted_by == charlie


def test_accepting_switches_current_org(charlie, charlie_org, acme, invitation):
    as_user(charlie).post(accept_url(invitation))

    charlie.refresh_from_db()
    assert charlie.current_organization_id == acme.pk


def test_invitation_accept_is_audited(charlie, acme, invitation):
    as_user(charlie).post(accept_url(invitation))

    entry = AuditLog.objects.get(organization=acme, action="invitation.accepted")
    assert entry.actor == charlie
    assert entry.metadata == {"role": "member"}


def test_invitation_for_someone_else_cannot_be_accepted(bob, acme, alice):
    other = UserFactory(email="eve@example.com")
    inv = invitation_create(org=acme, email="dana@example.com", role=Role.ADMIN, by=alice)

    response = as_user(other).post(accept_url(inv))

    assert_envelope(response, 403, "invitation_email_mismatch")
    assert not Membership.objects.filter(organization=acme, user=other).exists()
    inv.refresh_from_db()
    assert inv.status == "pending"


def test_revoked_invitation_cannot_be_accepted(alice_api, charlie, acme, invitation):
    alice_api.delete(f"/api/v1/organizations/{acme.pk}/invitations/{invitation.pk}")

    response = as_user(charlie).post(accept_url(invitation))

    assert_envelope(response, 410, "invitation_revoked")
    assert not Membership.objects.filter(organization=acme, user=charlie).exists()


def test_unknown_invitation_token_is_404(charlie):
    response = as_user(charlie).post("/api/v1/invitations/no-such-token/accept")

    assert_envelope(response, 404, "not_found")


def test_accepting_requires_authentication(api, acme, invitation):
    response = api.post(accept_url(invitation))

    assert_envelope(response, 401, "not_authenticated")
    invitation.refresh_from_db()
    assert invitation.status == "pending"

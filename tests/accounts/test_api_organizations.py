"""/api/v1/ me, organizations, members, invitations: role gating, last-owner rule, audit trail."""

from __future__ import annotations

from accounts.models import AuditLog, Membership, Organization, Role
from accounts.services import organization_create
from tests.helpers import as_user, assert_envelope


def membership(org, user) -> Membership:
    return Membership.objects.get(organization=org, user=user)


def org_url(org) -> str:
    return f"/api/v1/organizations/{org.pk}"


def member_url(m: Membership) -> str:
    return f"/api/v1/organizations/{m.organization_id}/members/{m.pk}"


# ------------------------------------------------------------------ me


def test_me_returns_user_orgs_with_role_and_current_org(alice_api, alice, acme):
    response = alice_api.get("/api/v1/me")

    assert response.status_code == 200
    body = response.json()
    assert body["user"] == {"id": alice.pk, "email": "alice@example.com", "name": "Alice"}
    assert [(o["id"], o["role"]) for o in body["organizations"]] == [(acme.pk, "owner")]
    assert body["current_organization"]["id"] == acme.pk
    assert body["auth"] == "session"


def test_me_shows_member_role_for_bob(bob, acme):
    response = as_user(bob).get("/api/v1/me")

    assert response.status_code == 200
    assert [(o["slug"], o["role"]) for o in response.json()["organizations"]] == [(acme.slug, "member")]


def test_me_does_not_list_orgs_the_user_is_not_in(alice_api, charlie_org):
    response = alice_api.get("/api/v1/me")

    assert response.status_code == 200
    assert charlie_org.pk not in [o["id"] for o in response.json()["organizations"]]


def test_me_x_organization_header_picks_org_by_id(alice_api, alice, acme):
    side = organization_create(name="Side Project", owner=alice)

    response = alice_api.get("/api/v1/me", HTTP_X_ORGANIZATION=str(side.pk))

    assert response.status_code == 200
    body = response.json()
    assert body["current_organization"]["id"] == side.pk
    assert body["current_organization"]["role"] == "owner"
    assert {o["id"] for o in body["organizations"]} == {acme.pk, side.pk}


def test_me_x_organization_header_picks_org_by_slug(alice_api, alice, acme):
    side = organization_create(name="Side Project", owner=alice)

    response = alice_api.get("/api/v1/me", HTTP_X_ORGANIZATION=side.slug)

    assert response.status_code == 200
    assert response.json()["current_organization"]["slug"] == side.slug


def test_me_without_header_uses_users_current_org(alice_api, alice, acme):
    side = organization_create(name="Side Project", owner=alice)
    alice.current_organization = side
    alice.save(update_fields=["current_organization"])

    response = alice_api.get("/api/v1/me")

    assert response.status_code == 200
    assert response.json()["current_organization"]["id"] == side.pk


def test_me_requires_authentication(api):
    response = api.get("/api/v1/me")

    assert_envelope(response, 401, "not_authenticated")


# -------------------------------------------------------- organizations


def test_list_organizations_shows_only_mine_with_role(alice_api, acme, charlie_org):
    response = alice_api.get("/api/v1/organizations/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert [(o["id"], o["name"], o["role"]) for o in body["results"]] == [(acme.pk, "Acme", "owner")]


def test_create_organization_makes_caller_owner(alice_api, alice):
    response = alice_api.post("/api/v1/organizations/", {"name": "Globex"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "Globex"
    assert body["role"] == "owner"
    org = Organization.objects.get(pk=body["id"])
    assert org.slug == body["slug"]
    assert membership(org, alice).role == Role.OWNER


def test_create_organization_is_audited(alice_api, alice):
    response = alice_api.post("/api/v1/organizations/", {"name": "Globex"}, format="json")

    assert response.status_code == 201
    entry = AuditLog.objects.get(organization_id=response.json()["id"], action="organization.created")
    assert entry.actor == alice


def test_create_organization_rejects_blank_name(alice_api):
    before = Organization.objects.count()

    response = alice_api.post("/api/v1/organizations/", {"name": ""}, format="json")

    body = assert_envelope(response, 400, "blank")
    assert list(body["field_errors"]) == ["name"]
    assert Organization.objects.count() == before


def test_retrieve_organization(alice_api, acme):
    response = alice_api.get(org_url(acme))

    assert response.status_code == 200
    assert response.json()["id"] == acme.pk
    assert response.json()["slug"] == acme.slug
    assert response.json()["role"] == "owner"


def test_owner_can_rename_org(alice_api, acme):
    response = alice_api.patch(org_url(acme), {"name": "Acme Corp"}, format="json")

    assert response.status_code == 200
    assert response.json()["name"] == "Acme Corp"
    acme.refresh_from_db()
    assert acme.name == "Acme Corp"


def test_rename_org_is_audited(alice_api, alice, acme):
    alice_api.patch(org_url(acme), {"name": "Acme Corp"}, format="json")

    entry = AuditLog.objects.get(organization=acme, action="organization.updated")
    assert entry.actor == alice
    assert entry.metadata == {"name": "Acme Corp"}


def test_admin_can_rename_org(carol, acme):
    response = as_user(carol).patch(org_url(acme), {"name": "Acme Admin"}, format="json")

    assert response.status_code == 200
    acme.refresh_from_db()
    assert acme.name == "Acme Admin"


def test_viewer_cannot_rename_org(vera, acme):
    response = as_user(vera).patch(org_url(acme), {"name": "Viewer Was Here"}, format="json")

    assert_envelope(response, 403, "permission_denied")
    acme.refresh_from_db()
    assert acme.name == "Acme"
    assert not AuditLog.objects.filter(organization=acme, action="organization.updated").exists()


def test_member_cannot_rename_org(bob, acme):
    response = as_user(bob).patch(org_url(acme), {"name": "Bob Co"}, format="json")

    assert_envelope(response, 403, "permission_denied")
    acme.refresh_from_db()
    assert acme.name == "Acme"


# -------------------------------------------------------------- members


def test_member_list_shows_everyone_with_role(bob, alice, acme):
    response = as_user(bob).get(f"/api/v1/organizations/{acme.pk}/members/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [(m["user"]["email"], m["role"]) for m in body["results"]] == [
        ("alice@example.com", "owner"),
        ("bob@example.com", "member"),
    ]


def test_member_detail(alice_api, bob, acme):
    m = membership(acme, bob)

    response = alice_api.get(member_url(m))

    assert response.status_code == 200
    assert response.json()["id"] == m.pk
    assert response.json()["user"]["email"] == "bob@example.com"
    assert response.json()["role"] == "member"


def test_owner_changes_member_role(alice_api, bob, acme):
    m = membership(acme, bob)

    response = alice_api.patch(member_url(m), {"role": "admin"}, format="json")

    assert response.status_code == 200
    assert response.json()["role"] == "admin"
    m.refresh_from_db()
    assert m.role == Role.ADMIN


def test_role_change_is_audited(alice_api, alice, bob, acme):
    alice_api.patch(member_url(membership(acme, bob)), {"role": "viewer"}, format="json")

    entry = AuditLog.objects.get(organization=acme, action="member.role_changed")
    assert entry.actor == alice
    assert (entry.target_type, entry.target_id) == ("accounts.user", str(bob.pk))
    assert entry.metadata == {"old_role": "member", "new_role": "viewer"}


def test_role_change_rejects_unknown_role(alice_api, bob, acme):
    m = membership(acme, bob)

    response = alice_api.patch(member_url(m), {"role": "emperor"}, format="json")

    body = assert_envelope(response, 400, "invalid_choice")
    assert list(body["field_errors"]) == ["role"]
    m.refresh_from_db()
    assert m.role == Role.MEMBER


def test_member_cannot_change_roles(bob, alice, acme):
    m = membership(acme, alice)

    response = as_user(bob).patch(member_url(m), {"role": "viewer"}, format="json")

    assert_envelope(response, 403, "permission_denied")
    m.refresh_from_db()
    assert m.role == Role.OWNER


def test_viewer_cannot_change_roles(vera, bob, acme):
    m = membership(acme, bob)

    response = as_user(vera).patch(member_url(m), {"role": "viewer"}, format="json")

    assert_envelope(response, 403, "permission_denied")
    m.refresh_from_db()
    assert m.role == Role.MEMBER


def test_admin_can_change_member_role(carol, bob, acme):
    m = membership(acme, bob)

    response = as_user(carol).patch(member_url(m), {"role": "viewer"}, format="json")

    assert response.status_code == 200
    m.refresh_from_db()
    assert m.role == Role.VIEWER


def test_admin_cannot_grant_owner(carol, bob, acme):
    m = membership(acme, bob)

    response = as_user(carol).patch(member_url(m), {"role": "owner"}, format="json")

    assert_envelope(response, 403, "permission_denied")
    m.refresh_from_db()
    assert m.role == Role.MEMBER
    assert not AuditLog.objects.filter(organization=acme, action="member.role_changed").exists()


def test_admin_cannot_demote_owner(carol, alice, acme):
    m = membership(acme, alice)

    response = as_user(carol).patch(member_url(m), {"role": "member"}, format="json")

    assert_envelope(response, 403, "permission_denied")
    m.refresh_from_db()
    assert m.role == Role.OWNER


def test_owner_can_grant_owner(alice_api, bob, acme):
    m = membership(acme, bob)

    response = alice_api.patch(member_url(m), {"role": "owner"}, format="json")

    assert response.status_code == 200
    m.refresh_from_db()
    assert m.role == Role.OWNER
    assert acme.owner_count() == 2


def test_demoting_last_owner_is_a_conflict(alice_api, alice, acme):
    m = membership(acme, alice)

    response = alice_api.patch(member_url(m), {"role": "admin"}, format="json")

    assert_envelope(response, 409, "last_owner")
    m.refresh_from_db()
    assert m.role == Role.OWNER
    assert not AuditLog.objects.filter(organization=acme, action="member.role_changed").exists()


def test_owner_can_step_down_when_another_owner_exists(alice_api, alice, bob, acme):
    Membership.objects.filter(organization=acme, user=bob).update(role=Role.OWNER)
    m = membership(acme, alice)

    response = alice_api.patch(member_url(m), {"role": "admin"}, format="json")

    assert response.status_code == 200
    m.refresh_from_db()
    assert m.role == Role.ADMIN


def test_owner_removes_member(alice_api, bob, acme):
    response = alice_api.delete(member_url(membership(acme, bob)))

    assert response.status_code == 204
    assert not Membership.objects.filter(organization=acme, user=bob).exists()


def test_member_removal_is_audited(alice_api, alice, bob, acme):
    alice_api.delete(member_url(membership(acme, bob)))

    entry = AuditLog.objects.get(organization=acme, action="member.removed")
    assert entry.actor == alice
    assert (entry.target_type, entry.target_id) == ("accounts.user", str(bob.pk))


def test_removed_member_loses_current_org(alice_api, bob, acme):
    bob.current_organization = acme
    bob.save(update_fields=["current_organization"])

    alice_api.delete(member_url(membership(acme, bob)))

    bob.refresh_from_db()
    assert bob.current_organization_id is None


def test_member_cannot_remove_someone_else(bob, carol, acme):
    m = membership(acme, carol)

    response = as_user(bob).delete(member_url(m))

    assert_envelope(response, 403, "permission_denied")
    assert Membership.objects.filter(pk=m.pk).exists()


def test_member_can_leave(bob, acme):
    response = as_user(bob).delete(member_url(membership(acme, bob)))

    assert response.status_code == 204
    assert not Membership.objects.filter(organization=acme, user=bob).exists()


def test_admin_cannot_remove_owner(carol, alice, acme):
    m = membership(acme, alice)

    response = as_user(carol).delete(member_url(m))

    assert_envelope(response, 403, "permission_denied")
    assert Membership.objects.filter(pk=m.pk).exists()


def test_removing_last_owner_is_a_conflict(alice_api, alice, acme):
    m = membership(acme, alice)

    response = alice_api.delete(member_url(m))

    assert_envelope(response, 409, "last_owner")
    assert Membership.objects.filter(pk=m.pk, role=Role.OWNER).exists()
    assert not AuditLog.objects.filter(organization=acme, action="member.removed").exists()


def test_unknown_member_is_404(alice_api, acme):
    response = alice_api.get(f"/api/v1/organizations/{acme.pk}/members/999999")

    assert_envelope(response, 404, "not_found")

"""Organization API keys: shown once, stored hashed, authenticate as their org and role, revocable."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiKey, AuditLog, Invitation, Membership, Role, hash_api_key
from accounts.services import api_key_create, organization_create
from tests.helpers import assert_envelope, bearer


def keys_url(org) -> str:
    return f"/api/v1/organizations/{org.pk}/api-keys/"


def prefix_of(raw: str) -> str:
    return raw.split("_")[1]


# ----------------------------------------------------------------- create / list


def test_create_returns_raw_key_once(alice_api, acme):
    response = alice_api.post(keys_url(acme), {"name": "deploy", "role": "member"}, format="json")

    assert response.status_code == 201
    body = response.json()
    key = ApiKey.objects.for_org(acme).get(pk=body["id"])
    assert body["key"].startswith(f"aos_{key.prefix}_")
    assert (body["name"], body["prefix"], body["role"], body["is_active"]) == (
        "deploy",
        key.prefix,
        "member",
        True,
    )
    assert response["Cache-Control"] == "no-store"


def test_create_stores_only_the_hash(alice_api, acme):
    response = alice_api.post(keys_url(acme), {"name": "deploy"}, format="json")

    raw = response.json()["key"]
    key = ApiKey.objects.get(pk=response.json()["id"])
    assert key.key_hash == hash_api_key(raw)
    assert raw not in (key.key_hash, key.prefix, key.name)


def test_create_is_audited(alice_api, alice, acme):
    response = alice_api.post(keys_url(acme), {"name": "deploy"}, format="json")

    entry = AuditLog.objects.get(
        organization=acme, action="api_key.created", target_id=str(response.json()["id"])
    )
    assert entry.actor == alice
    assert entry.metadata == {"prefix": response.json()["prefix"]}


def test_list_shows_prefix_but_never_key_or_hash(alice_api, acme):
    raw = alice_api.post(keys_url(acme), {"name": "deploy"}, format="json").json()["key"]

    response = alice_api.get(keys_url(acme))

    assert response.status_code == 200
    [item] = [k for k in response.json()["results"] if k["name"] == "deploy"]
    assert item["prefix"] == prefix_of(raw)
    assert "key" not in item and "key_hash" not in item
    assert raw not in response.content.decode()
    assert hash_api_key(raw) not in response.content.decode()


def test_list_shows_only_this_orgs_keys(alice_api, acme, charlie, charlie_org):
    api_key_create(org=charlie_org, name="charlies", by=charlie)
    api_key_create(org=acme, name="acmes", by=acme.created_by)

    response = alice_api.get(keys_url(acme))

    assert response.status_code == 200
    assert [k["name"] for k in response.json()["results"]] == ["acmes"]


def test_member_cannot_create_key(bob, acme):
    client = APIClient()
    client.force_authenticate(bob)

    response = client.post(keys_url(acme), {"name": "bobs"}, format="json")

    assert_envelope(response, 403, "permission_denied")
    assert not ApiKey.objects.for_org(acme).exists()


def test_owner_role_key_cannot_be_created(alice_api, acme):
    response = alice_api.post(keys_url(acme), {"name": "root", "role": "owner"}, format="json")

    body = assert_envelope(response, 400, "invalid_choice")
    assert list(body["field_errors"]) == ["role"]
    assert not ApiKey.objects.for_org(acme).exists()


# --------------------------------------------------------------- authentication


def test_key_authenticates_me_with_its_org_current(acme_key, acme):
    response = bearer(acme_key).get("/api/v1/me")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["auth"] == "api_key"
    assert body["current_organization"]["id"] == acme.pk
    assert body["current_organization"]["role"] == "admin"
    assert [o["id"] for o in body["organizations"]] == [acme.pk]


def test_key_is_current_org_even_if_creator_prefers_another(acme_key, alice, acme):
    side = organization_create(name="Side", owner=alice)
    alice.current_organization = side
    alice.save(update_fields=["current_organization"])

    response = bearer(acme_key).get("/api/v1/me")

    assert response.status_code == 200, response.content
    assert response.json()["current_organization"]["id"] == acme.pk


def test_using_a_key_sets_last_used_at(acme_key):
    key = ApiKey.objects.get(prefix=prefix_of(acme_key))
    assert key.last_used_at is None

    response = bearer(acme_key).get("/api/v1/me")

    assert response.status_code == 200, response.content
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_key_with_underscores_in_secret_authenticates(alice, acme):
    """token_urlsafe secrets contain '_' about half the time; such keys must still work."""
    for _ in range(50):
        _, raw = api_key_create(org=acme, name="k", by=alice)
        if raw.count("_") > 2:
            break
    else:  # pragma: no cover - odds are about 1 in 2**50
        pytest.fail("could not generate a key with '_' in its secret")

    response = bearer(raw).get("/api/v1/me")

    assert response.status_code == 200, response.content
    assert response.json()["current_organization"]["id"] == acme.pk


def test_every_freshly_created_key_authenticates(alice, acme):
    raws = [api_key_create(org=acme, name=f"k{i}", by=alice)[1] for i in range(10)]

    statuses = [bearer(raw).get("/api/v1/me").status_code for raw in raws]

    assert statuses == [200] * 10


def test_revoke_key(alice_api, acme, acme_key):
    key = ApiKey.objects.get(prefix=prefix_of(acme_key))

    response = alice_api.delete(f"/api/v1/organizations/{acme.pk}/api-keys/{key.pk}")

    assert response.status_code == 204
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert key.is_active is False


def test_revoke_is_audited(alice_api, alice, acme, acme_key):
    key = ApiKey.objects.get(prefix=prefix_of(acme_key))

    alice_api.delete(f"/api/v1/organizations/{acme.pk}/api-keys/{key.pk}")

    entry = AuditLog.objects.get(organization=acme, action="api_key.revoked")
    assert entry.actor == alice
    assert entry.target_id == str(key.pk)
    assert entry.metadata == {"prefix": key.prefix}


def test_revoked_key_is_401(alice_api, acme, acme_key):
    key = ApiKey.objects.get(prefix=prefix_of(acme_key))
    alice_api.delete(f"/api/v1/organizations/{acme.pk}/api-keys/{key.pk}")

    response = bearer(acme_key).get("/api/v1/me")

    assert_envelope(response, 401, "invalid_api_key")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("raw", ["abc", "aos_x", "aos_deadbeef_wrong"])
def test_malformed_key_is_401(db, raw):
    response = bearer(raw).get("/api/v1/me")

    assert_envelope(response, 401, "invalid_api_key")


def test_right_prefix_wrong_secret_is_401(acme_key):
    prefix = prefix_of(acme_key)

    response = bearer(f"aos_{prefix}_not-the-secret").get("/api/v1/me")

    assert_envelope(response, 401, "invalid_api_key")
    assert ApiKey.objects.get(prefix=prefix).last_used_at is None


# ------------------------------------------------------------------- tenancy


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/organizations/{org}",
        "/api/v1/organizations/{org}/members/",
        "/api/v1/organizations/{org}/invitations/",
        "/api/v1/organizations/{org}/api-keys/",
    ],
)
def test_key_cannot_read_another_orgs_paths(acme_key, charlie_org, path):
    response = bearer(acme_key).get(path.format(org=charlie_org.pk))

    assert_envelope(response, 404, "not_found")


def test_key_cannot_revoke_another_orgs_key(acme_key, charlie, charlie_org):
    other, _ = api_key_create(org=charlie_org, name="charlies", by=charlie, role=Role.ADMIN)

    response = bearer(acme_key).delete(f"/api/v1/organizations/{charlie_org.pk}/api-keys/{other.pk}")

    assert_envelope(response, 404, "not_found")
    other.refresh_from_db()
    assert other.revoked_at is None


def test_key_cannot_rename_another_org(acme_key, charlie_org):
    response = bearer(acme_key).patch(
        f"/api/v1/organizations/{charlie_org.pk}", {"name": "Pwned"}, format="json"
    )

    assert_envelope(response, 404, "not_found")
    charlie_org.refresh_from_db()
    assert charlie_org.name == "Charlie Co"


def test_key_with_foreign_x_organization_is_404(acme_key, charlie_org):
    response = bearer(acme_key).get("/api/v1/me", HTTP_X_ORGANIZATION=str(charlie_org.pk))

    assert_envelope(response, 404, "not_found")


def test_key_cannot_create_organizations(acme_key):
    response = bearer(acme_key).post("/api/v1/organizations/", {"name": "Keyco"}, format="json")

    assert_envelope(response, 403, "permission_denied")


# ---------------------------------------------------------------------- roles


@pytest.fixture
def viewer_key(alice, acme) -> str:
    return api_key_create(org=acme, name="read-only", by=alice, role=Role.VIEWER)[1]


def test_viewer_key_can_read(viewer_key, acme):
    response = bearer(viewer_key).get(f"/api/v1/organizations/{acme.pk}")

    assert response.status_code == 200, response.content
    assert response.json()["role"] == "viewer"


def test_viewer_key_cannot_rename_org(viewer_key, acme):
    response = bearer(viewer_key).patch(f"/api/v1/organizations/{acme.pk}", {"name": "Pwned"}, format="json")

    assert_envelope(response, 403, "permission_denied")
    acme.refresh_from_db()
    assert acme.name == "Acme"


def test_viewer_key_cannot_invite(viewer_key, acme):
    response = bearer(viewer_key).post(
        f"/api/v1/organizations/{acme.pk}/invitations/", {"email": "dana@example.com"}, format="json"
    )

    assert_envelope(response, 403, "permission_denied")
    assert not Invitation.objects.for_org(acme).exists()


def test_viewer_key_cannot_create_keys(viewer_key, acme):
    before = ApiKey.objects.for_org(acme).count()

    response = bearer(viewer_key).post(keys_url(acme), {"name": "escalate", "role": "admin"}, format="json")

    assert_envelope(response, 403, "permission_denied")
    assert ApiKey.objects.for_org(acme).count() == before


def test_admin_key_can_rename_org(acme_key, acme):
    response = bearer(acme_key).patch(
        f"/api/v1/organizations/{acme.pk}", {"name": "Acme Corp"}, format="json"
    )

    assert response.status_code == 200, response.content
    acme.refresh_from_db()
    assert acme.name == "Acme Corp"


def test_admin_key_cannot_grant_owner(acme_key, acme, bob):
    """The key's role is admin: it must not borrow its owner creator's power to mint owners."""
    m = Membership.objects.get(organization=acme, user=bob)

    response = bearer(acme_key).patch(
        f"/api/v1/organizations/{acme.pk}/members/{m.pk}", {"role": "owner"}, format="json"
    )

    assert_envelope(response, 403, "permission_denied")
    m.refresh_from_db()
    assert m.role == Role.MEMBER


def test_admin_key_cannot_invite_an_owner(acme_key, acme):
    response = bearer(acme_key).post(
        f"/api/v1/organizations/{acme.pk}/invitations/",
        {"email": "dana@example.com", "role": "owner"},
        format="json",
    )

    assert_envelope(response, 403, "permission_denied")
    assert not Invitation.objects.for_org(acme).exists()


def test_viewer_key_cannot_remove_its_creator(viewer_key, acme, alice, bob):
    # A second owner, so alice is not the last one and only the role check can refuse.
    Membership.objects.filter(organization=acme, user=bob).update(role=Role.OWNER)
    m = Membership.objects.get(organization=acme, user=alice)

    response = bearer(viewer_key).delete(f"/api/v1/organizations/{acme.pk}/members/{m.pk}")

    assert_envelope(response, 403, "permission_denied")
    assert Membership.objects.filter(pk=m.pk).exists()

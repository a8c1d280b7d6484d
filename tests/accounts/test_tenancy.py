"""charlie has his own org and must see none of Acme's: every Acme resource is a 404 to him, API and HTML."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.middleware import SESSION_ORG_KEY
from accounts.models import ApiKey, AuditLog, Invitation, Membership, Role
from accounts.services import api_key_create, invitation_create
from tests.helpers import assert_envelope


def assert_not_found_envelope(response) -> None:
    assert assert_envelope(response, 404, "not_found")["field_errors"] == {}


@pytest.fixture
def acme_things(alice, bob, acme):
    """One of each Acme resource, by id."""
    invitation = invitation_create(org=acme, email="dana@example.com", role=Role.MEMBER, by=alice)
    key, _ = api_key_create(org=acme, name="acme-ci", by=alice, role=Role.ADMIN)
    return {
        "org": acme.pk,
        "member": Membership.objects.get(organization=acme, user=bob).pk,
        "invitation": invitation.pk,
        "key": key.pk,
    }


def acme_snapshot(acme) -> dict:
    """Everything a foreign write could have changed."""
    acme.refresh_from_db()
    return {
        "name": acme.name,
        "members": sorted(Membership.objects.filter(organization=acme).values_list("user__email", "role")),
        "invitations": sorted(
            Invitation.objects.for_org(acme).values_list("email", "revoked_at", "accepted_at")
        ),
        "keys": sorted(ApiKey.objects.for_org(acme).values_list("name", "revoked_at")),
        "audit": AuditLog.objects.filter(organization=acme).count(),
    }


@pytest.fixture
def charlie_api(charlie, charlie_org):
    client = APIClient()
    client.force_authenticate(charlie)
    return client


# (method, path, body, status alice gets): alice's status proves each path is real.
API_ENDPOINTS = [
    ("get", "/api/v1/organizations/{org}", None, 200),
    ("patch", "/api/v1/organizations/{org}", {"name": "Pwned"}, 200),
    ("put", "/api/v1/organizations/{org}", {"name": "Pwned"}, 200),
    ("get", "/api/v1/organizations/{org}/members/", None, 200),
    ("get", "/api/v1/organizations/{org}/members/{member}", None, 200),
    ("patch", "/api/v1/organizations/{org}/members/{member}", {"role": "viewer"}, 200),
    ("delete", "/api/v1/organizations/{org}/members/{member}", None, 204),
    ("get", "/api/v1/organizations/{org}/invitations/", None, 200),
    ("post", "/api/v1/organizations/{org}/invitations/", {"email": "eve@example.com", "role": "member"}, 201),
    ("delete", "/api/v1/organizations/{org}/invitations/{invitation}", None, 204),
    ("get", "/api/v1/organizations/{org}/api-keys/", None, 200),
    ("post", "/api/v1/organizations/{org}/api-keys/", {"name": "stolen", "role": "member"}, 201),
    ("delete", "/api/v1/organizations/{org}/api-keys/{key}", None, 204),
]
API_IDS = [f"{m.upper()} {p}" for m, p, _, _ in API_ENDPOINTS]


@pytest.mark.parametrize(("method", "path", "body", "_alice_status"), API_ENDPOINTS, ids=API_IDS)
def test_charlie_gets_404_on_acme_api(charlie_api, acme, acme_things, method, path, body, _alice_status):
    before = acme_snapshot(acme)

    response = getattr(charlie_api, method)(path.format(**acme_things), body, format="json")

    assert_not_found_envelope(response)
    assert acme_snapshot(acme) == before


@pytest.mark.parametrize(("method", "path", "body", "alice_status"), API_ENDPOINTS, ids=API_IDS)
def test_alice_reaches_acme_api(alice_api, acme, acme_things, method, path, body, alice_status):
    response = getattr(alice_api, method)(path.format(**acme_things), body, format="json")

    assert response.status_code == alice_status, response.content


@pytest.mark.parametrize("header", ["id", "slug"])
def test_charlie_cannot_select_acme_with_x_organization(charlie_api, acme, header):
    value = str(acme.pk) if header == "id" else acme.slug

    response = charlie_api.get("/api/v1/me", HTTP_X_ORGANIZATION=value)

    assert_not_found_envelope(response)


def test_charlie_me_lists_only_his_org(charlie_api, charlie_org, acme):
    response = charlie_api.get("/api/v1/me")

    assert response.status_code == 200
    assert [o["id"] for o in response.json()["organizations"]] == [charlie_org.pk]
    assert response.json()["current_organization"]["id"] == charlie_org.pk


def test_charlie_org_list_excludes_acme(charlie_api, charlie_org, acme):
    response = charlie_api.get("/api/v1/organizations/")

    assert response.status_code == 200
    assert [o["id"] for o in response.json()["results"]] == [charlie_org.pk]


@pytest.mark.parametrize("value", ["999999", "nope"])
def test_unknown_x_organization_is_404(alice_api, value):
    response = alice_api.get("/api/v1/me", HTTP_X_ORGANIZATION=value)

    assert_not_found_envelope(response)


def test_unknown_org_in_path_is_404(alice_api):
    response = alice_api.get("/api/v1/organizations/999999")

    assert_not_found_envelope(response)


def test_invitation_of_another_org_cannot_be_revoked_through_own_org_path(
    charlie_api, charlie_org, acme_things, acme
):
    before = acme_snapshot(acme)

    response = charlie_api.delete(
        f"/api/v1/organizations/{charlie_org.pk}/invitations/{acme_things['invitation']}"
    )

    assert_not_found_envelope(response)
    assert acme_snapshot(acme) == before


def test_key_of_another_org_cannot_be_revoked_through_own_org_path(
    charlie_api, charlie_org, acme_things, acme
):
    before = acme_snapshot(acme)

    response = charlie_api.delete(f"/api/v1/organizations/{charlie_org.pk}/api-keys/{acme_things['key']}")

    assert_not_found_envelope(response)
    assert acme_snapshot(acme) == before


def test_member_of_another_org_cannot_be_touched_through_own_org_path(
    charlie_api, charlie_org, acme_things, acme
):
    before = acme_snapshot(acme)

    response = charlie_api.patch(
        f"/api/v1/organizations/{charlie_org.pk}/members/{acme_things['member']}",
        {"role": "viewer"},
        format="json",
    )

    assert_not_found_envelope(response)
    assert acme_snapshot(acme) == before


# ---------------------------------------------------------------------- HTML


@pytest.fixture
def charlie_browser(charlie, charlie_org) -> Client:
    client = Client()
    client.force_login(charlie)
    response = client.post(reverse("org_switch"), {"org": charlie_org.pk})
    assert response.status_code == 302
    assert client.session[SESSION_ORG_KEY] == charlie_org.pk
    return client


@pytest.fixture
def alice_browser(alice, acme) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def test_charlie_cannot_switch_to_acme(charlie_browser, charlie, charlie_org, acme):
    response = charlie_browser.post(reverse("org_switch"), {"org": acme.pk})

    assert response.status_code == 404
    charlie.refresh_from_db()
    assert charlie.current_organization_id == charlie_org.pk
    assert charlie_browser.session[SESSION_ORG_KEY] == charlie_org.pk


# (url name, which Acme object, POST data, the status alice gets)
HTML_ENDPOINTS = [
    ("member_role", "member", {"role": "viewer"}, 302),
    ("member_remove", "member", {}, 302),
    ("invitation_revoke", "invitation", {}, 302),
    ("api_key_revoke", "key", {}, 302),
]
HTML_IDS = [name for name, *_ in HTML_ENDPOINTS]


@pytest.mark.parametrize(("name", "thing", "data", "_alice_status"), HTML_ENDPOINTS, ids=HTML_IDS)
def test_charlie_gets_404_on_acme_html(charlie_browser, acme, acme_things, name, thing, data, _alice_status):
    before = acme_snapshot(acme)

    response = charlie_browser.post(reverse(name, args=[acme_things[thing]]), data)

    assert response.status_code == 404
    assert acme_snapshot(acme) == before


@pytest.mark.parametrize(("name", "thing", "data", "alice_status"), HTML_ENDPOINTS, ids=HTML_IDS)
def test_alice_reaches_acme_html(alice_browser, acme, acme_things, name, thing, data, alice_status):
    before = acme_snapshot(acme)

    response = alice_browser.post(reverse(name, args=[acme_things[thing]]), data)

    assert response.status_code == alice_status
    assert acme_snapshot(acme) != before


def test_charlie_settings_page_shows_none_of_acme(charlie_browser, acme, acme_things):
    response = charlie_browser.get(reverse("org_settings"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Charlie Co" in html
    assert "bob@example.com" not in html
    assert "dana@example.com" not in html
    assert "acme-ci" not in html


def test_switch_to_non_numeric_org_is_404(charlie_browser, charlie, charlie_org):
    response = charlie_browser.post(reverse("org_switch"), {"org": "abc"})

    assert response.status_code == 404
    charlie.refresh_from_db()
    assert charlie.current_organization_id == charlie_org.pk


def test_non_ascii_digit_x_organization_is_404(alice_api):
    response = alice_api.get("/api/v1/me", HTTP_X_ORGANIZATION="²")

    assert_not_found_envelope(response)

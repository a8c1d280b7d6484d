from __future__ import annotations

import pytest

from accounts.models import ApiKey, Membership, Role
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _as(client, user, org):
    client.force_login(user)
    client.post("/orgs/switch/", {"org": org.pk})
    return client


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/",
        "/orgs/settings/",
        "/agents/",
        "/workflows/",
        "/knowledge/",
        "/community/",
        "/integrations/",
        "/billing/",
    ],
)
def test_every_nav_page_renders_for_a_member(client, alice, acme, path):
    response = _as(client, alice, acme).get(path)

    assert response.status_code == 200
    assert "Acme" in response.content.decode()


def test_pages_require_login(client):
    response = client.get("/dashboard/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_switching_org_changes_the_current_org(client, alice, acme):
    client.force_login(alice)

    response = client.post("/orgs/switch/", {"org": acme.pk, "next": "/orgs/settings/"})

    assert response["Location"] == "/orgs/settings/"
    alice.refresh_from_db()
    assert alice.current_organization == acme
    assert client.session["org_id"] == acme.pk


def test_switch_ignores_offsite_next(client, alice, acme):
    client.force_login(alice)

    response = client.post("/orgs/switch/", {"org": acme.pk, "next": "//evil.example/"})

    assert response["Location"] == "/dashboard/"


def test_create_org_form_shows_error_beside_field(client, alice):
    client.force_login(alice)

    response = client.post("/orgs/new/", {"name": "x"})

    assert response.status_code == 200
    assert "name" in response.context["form"].errors
    assert 'id="id_name_errors"' in response.content.decode()


def test_viewer_cannot_rename_org_in_html(client, acme):
    viewer = UserFactory()
    MembershipFactory(organization=acme, user=viewer, role=Role.VIEWER)

    response = _as(client, viewer, acme).post("/orgs/settings/", {"name": "Hacked"})

    assert response.status_code == 403
    acme.refresh_from_db()
    assert acme.name == "Acme"


def test_admin_changes_role_through_htmx_partial(client, alice, bob, acme):
    membership = acme.memberships.get(user=bob)

    response = _as(client, alice, acme).post(
        f"/orgs/settings/members/{membership.pk}/role/", {"role": Role.VIEWER}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section class="card lg:col-span-2" id="members"')
    assert "<html" not in html
    assert Membership.objects.get(pk=membership.pk).role == Role.VIEWER


def test_demoting_the_last_owner_is_refused_with_a_message(client, alice, acme):
    admin = UserFactory()
    MembershipFactory(organization=acme, user=admin, role=Role.ADMIN)
    owner_membership = acme.memberships.get(user=alice)

    response = _as(client, admin, acme).post(
        f"/orgs/settings/members/{owner_membership.pk}/role/", {"role": Role.MEMBER}, HTTP_HX_REQUEST="true"
    )

    assert "Only an owner" in response.content.decode()
    assert Membership.objects.get(pk=owner_membership.pk).role == Role.OWNER


def test_api_key_created_in_html_is_shown_once(client, alice, acme):
    _as(client, alice, acme)

    created = client.post("/orgs/settings/api-keys/", {"name": "deploy", "role": Role.MEMBER})
    key = ApiKey.objects.get(name="deploy")
    raw = created.context["new_key"]["raw"]

    assert raw.startswith(f"aos_{key.prefix}_")
    assert raw in created.content.decode()
    assert created["Cache-Control"] == "no-store"
    assert raw not in client.get("/orgs/settings/").content.decode()


def test_unknown_page_is_a_styled_404_for_a_signed_in_user(client, alice, acme):
    client.force_login(alice)

    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert "That page does not exist" in response.content.decode()

from __future__ import annotations

import pytest

from accounts.models import Organization, User

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_up_land_on_dashboard_create_and_switch_org(live_server, page, artifacts):
    page.goto(live_server.url + "/")
    page.get_by_role("link", name="Create a free account").click()

    page.fill("input[name=email]", "pat@example.com")
    page.fill("input[name=password1]", "a-Strong-pass-42")
    page.fill("input[name=password2]", "a-Strong-pass-42")
    page.get_by_role("button", name="Sign Up").click()

    page.wait_for_url("**/dashboard/")
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    assert page.locator("#org-select option:checked").inner_text() == "pat's workspace"

    page.get_by_role("button", name="pat ▾").click()
    page.get_by_role("menuitem", name="New organization").click()
    page.fill("input[name=name]", "Pat Labs")
    page.get_by_role("button", name="Create organization").click()
    page.wait_for_url("**/orgs/settings/")
    assert page.get_by_role("heading", name="Pat Labs").is_visible()

    # The switcher submits on change: go back to the personal workspace.
    personal = Organization.objects.get(created_by__email="pat@example.com", is_personal=True)
    with page.expect_navigation():
        page.select_option("#org-select", str(personal.pk))
    assert page.locator("#org-select option:checked").inner_text() == "pat's workspace"
    assert User.objects.get(email="pat@example.com").current_organization_id == personal.pk

    page.goto(live_server.url + "/dashboard/")
    page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
    assert (artifacts / "dashboard.png").stat().st_size > 10_000


def test_signup_with_taken_email_shows_the_error_in_the_page(live_server, page, alice):
    page.goto(live_server.url + "/accounts/signup/")
    page.fill("input[name=email]", "alice@example.com")
    page.fill("input[name=password1]", "a-Strong-pass-42")
    page.fill("input[name=password2]", "a-Strong-pass-42")
    page.get_by_role("button", name="Sign Up").click()

    error = page.locator(".field-error").first
    assert "already" in error.inner_text().lower()
    assert User.objects.filter(email="alice@example.com").count() == 1


def test_swagger_ui_renders_the_schema_from_vendored_assets(live_server, page):
    page.goto(live_server.url + "/api/docs/")

    page.wait_for_selector(".opblock")
    assert page.locator(".opblock-summary-path", has_text="/api/v1/me").count() >= 1

"""API plumbing: root, health, schema and docs, the error envelope, body limits, throttling."""

from __future__ import annotations

import json

import pytest
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from accounts.models import Invitation, Organization
from tests.helpers import assert_envelope

# ------------------------------------------------------------ root and health


def test_api_root_needs_no_auth(api, db):
    response = api.get("/api/v1/")

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "AgentOS API"
    assert body["version"] == "1.0.0"
    assert body["endpoints"]["me"].endswith("/api/v1/me")
    assert body["schema"].endswith("/api/schema/")


def test_api_health_reports_database_and_redis(api, db):
    response = api.get("/api/v1/health")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


def test_healthz_is_alive(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_database_and_redis(client, db):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


# --------------------------------------------------------------- schema and docs


def test_schema_lists_accounts_paths(api, db):
    response = api.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/me" in schema["paths"]
    assert {"get", "post"} <= set(schema["paths"]["/api/v1/organizations/"])


def test_docs_render_html(client, db):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"swagger" in response.content.lower()
    assert b"/api/schema/" in response.content


# ------------------------------------------------------------------ error envelope


def test_unauthenticated_request_is_401_envelope(api, db):
    response = api.get("/api/v1/organizations/")

    assert_envelope(response, 401, "not_authenticated")


def test_malformed_json_is_parse_error(alice_api):
    before = Organization.objects.count()

    response = alice_api.post("/api/v1/organizations/", data="{bad", content_type="application/json")

    assert_envelope(response, 400, "parse_error")
    assert Organization.objects.count() == before


def test_oversized_body_is_413(alice_api, settings):
    before = Organization.objects.count()
    body = json.dumps({"name": "x" * (settings.API_MAX_BODY_BYTES + 1)})

    response = alice_api.post("/api/v1/organizations/", data=body, content_type="application/json")

    result = assert_envelope(response, 413, "request_too_large")
    assert str(settings.API_MAX_BODY_BYTES) in result["detail"]
    assert Organization.objects.count() == before


def test_body_just_under_the_limit_is_not_413(alice_api, settings):
    settings.API_MAX_BODY_BYTES = 200
    body = json.dumps({"name": "Globex", "pad": "x" * 100})
    assert len(body) < 200

    response = alice_api.post("/api/v1/organizations/", data=body, content_type="application/json")

    assert response.status_code == 201, response.content


def test_unknown_api_path_is_404_json_envelope(api, db):
    response = api.get("/api/v1/nope")

    body = assert_envelope(response, 404, "not_found")
    assert body["field_errors"] == {}


def test_unknown_page_is_html_404(client, db):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_method_not_allowed_is_envelope(alice_api, acme):
    response = alice_api.delete(f"/api/v1/organizations/{acme.pk}")

    assert_envelope(response, 405, "method_not_allowed")
    assert Organization.objects.filter(pk=acme.pk).exists()


def test_missing_field_is_keyed_by_field_name(alice_api):
    response = alice_api.post("/api/v1/organizations/", {}, format="json")

    body = assert_envelope(response, 400, "invalid")
    assert set(body["field_errors"]) == {"name"}
    assert body["field_errors"]["name"] == ["This field is required."]


def test_too_short_name_is_keyed_by_field_name(alice_api):
    response = alice_api.post("/api/v1/organizations/", {"name": "x"}, format="json")

    body = assert_envelope(response, 400, "min_length")
    assert set(body["field_errors"]) == {"name"}


def test_several_bad_fields_are_each_reported(alice_api, acme):
    response = alice_api.post(
        f"/api/v1/organizations/{acme.pk}/invitations/", {"email": "nope", "role": "emperor"}, format="json"
    )

    body = assert_envelope(response, 400, "invalid")
    assert set(body["field_errors"]) == {"email", "role"}
    assert not Invitation.objects.for_org(acme).exists()


# ---------------------------------------------------------------------- throttling


@pytest.fixture
def tiny_rates(monkeypatch):
    rates = {"user": "3/min", "anon": "3/min"}
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", rates)
    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", rates)


def test_user_is_throttled_after_rate(alice_api, tiny_rates):
    statuses = [alice_api.get("/api/v1/me").status_code for _ in range(3)]

    response = alice_api.get("/api/v1/me")

    assert statuses == [200, 200, 200]
    assert_envelope(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0


def test_anonymous_is_throttled_after_rate(api, db, tiny_rates):
    statuses = [api.get("/api/v1/").status_code for _ in range(3)]

    response = api.get("/api/v1/")

    assert statuses == [200, 200, 200]
    assert_envelope(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0


def test_throttle_is_per_user(alice_api, bob, tiny_rates):
    from rest_framework.test import APIClient

    for _ in range(4):
        alice_api.get("/api/v1/me")
    bob_api = APIClient()
    bob_api.force_authenticate(bob)

    response = bob_api.get("/api/v1/me")

    assert response.status_code == 200


def test_health_is_never_throttled(api, db, tiny_rates):
    statuses = [api.get("/api/v1/health").status_code for _ in range(5)]

    assert statuses == [200] * 5


def test_a_throttle_window_starts_with_the_first_request_and_ends_with_its_duration(alice_api, monkeypatch):
    import time

    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "2/s", "anon": "2/s"})
    statuses = [alice_api.get("/api/v1/me").status_code for _ in range(3)]
    refused = alice_api.get("/api/v1/me")
    time.sleep(1.1)  # the window (1 s from the first request) has ended

    assert statuses == [200, 200, 429] and refused.status_code == 429
    assert int(refused["Retry-After"]) == 1
    assert alice_api.get("/api/v1/me").status_code == 200


def test_the_throttle_counts_in_one_redis_key_per_client_and_window(alice_api, alice, tiny_rates):
    from django.core.cache import cache

    for _ in range(2):
        alice_api.get("/api/v1/me")

    key = f"throttle_user_{alice.pk}:n"
    assert cache.get(key) == 2
    assert 0 < cache._cache.get_client(write=True).pttl(cache.make_key(key)) <= 60_000


def test_a_window_left_by_drfs_own_throttle_does_not_break_the_counter(alice_api, alice, tiny_rates):
    """DRF kept a pickled list of timestamps under the throttle's key: a deploy must not trip on it."""
    from django.core.cache import cache

    cache.set(f"throttle_user_{alice.pk}", [1.0, 2.0], 60)

    statuses = [alice_api.get("/api/v1/me").status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]

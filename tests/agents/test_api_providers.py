"""/api/v1/models/providers and bring-your-own keys (/api/v1/users/api-keys)."""

from __future__ import annotations

import pytest

from accounts.models import AuditLog
from agents.models import ProviderKey
from agents.runtime.providers import credentials_for
from tests.helpers import as_user, assert_envelope

pytestmark = pytest.mark.django_db

KEYS = "/api/v1/users/api-keys"
SECRET = "sk-live-abcdefghijklmnop1234"


@pytest.fixture
def no_platform_keys(monkeypatch):
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "DEFAULT_LLM_MODEL",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def loopback_allowed(settings):
    """The fake LLM listens on 127.0.0.1; an operator would allow-list such a host by env."""
    settings.OUTBOUND_ALLOW_HOSTS = ["127.0.0.1"]


# ---------------------------------------------------------------- providers


def test_providers_without_keys_only_demo_is_configured_and_default(alice_api, no_platform_keys):
    body = alice_api.get("/api/v1/models/providers").json()

    by_id = {p["id"]: p for p in body}
    assert {"openai", "anthropic", "gemini", "openai_compatible", "ollama", "demo"} <= set(by_id)
    assert [p["id"] for p in body if p["configured"]] == ["demo"]
    assert [p["id"] for p in body if p["default"]] == ["demo"]
    assert by_id["openai"]["kind"] == "openai" and "gpt-4o-mini" in by_id["openai"]["models"]


def test_platform_key_makes_openai_configured_and_default(alice_api, llm):
    by_id = {p["id"]: p for p in alice_api.get("/api/v1/models/providers").json()}

    assert by_id["openai"]["configured"] and by_id["openai"]["default"]


def test_provider_models_and_capabilities(alice_api, no_platform_keys):
    models = alice_api.get("/api/v1/models/providers/anthropic/models").json()
    caps = alice_api.get("/api/v1/models/providers/demo/capabilities").json()

    assert models["provider"] == "anthropic" and models["default_model"] == models["models"][0]
    assert caps == {
        "provider": "demo",
        "capabilities": {"streaming": True, "tools": True, "structured_output": False, "vision": False},
    }


@pytest.mark.parametrize("suffix", ["models", "capabilities"])
def test_unknown_provider_is_404(alice_api, suffix):
    assert_envelope(alice_api.get(f"/api/v1/models/providers/nope/{suffix}"), 404, "unknown_provider")


# ------------------------------------------------------------------ BYO keys


def test_save_key_tests_it_and_returns_it_masked(alice_api, acme, llm, loopback_allowed):
    payload = {
        "provider": "openai",
        "api_key": SECRET,
        "base_url": llm.base_url,
        "label": "Ours",
        "model": "fake-gpt",
    }

    response = alice_api.post(KEYS, payload, format="json")

    assert response.status_code == 201, response.content
    assert SECRET not in response.content.decode()
    body = response.json()
    assert (body["provider"], body["label"], body["key"]) == ("openai", "Ours", "sk-…1234")
    assert response["Cache-Control"] == "no-store"
    assert any(r["body"]["messages"][-1]["content"] == "ping" for r in llm.requests)  # really tested
    assert credentials_for(org=acme, provider_id="openai").api_key == SECRET
    assert SECRET not in ProviderKey.objects.get(pk=body["id"]).encrypted_key
    assert AuditLog.objects.filter(organization=acme, action="provider_key.saved").exists()


def test_list_is_masked_and_never_echoes_the_key(alice_api, bob):
    alice_api.post(KEYS, {"provider": "anthropic", "api_key": SECRET, "test": False}, format="json")

    response = as_user(bob).get(KEYS)

    assert response.status_code == 200
    assert SECRET not in response.content.decode()
    assert [(k["provider"], k["key"]) for k in response.json()] == [("anthropic", "sk-…1234")]


def test_failing_key_test_is_400_and_nothing_is_saved(alice_api, llm, loopback_allowed):
    payload = {
        "provider": "openai",
        "api_key": SECRET,
        "base_url": llm.url + "/nowhere/v1",
        "model": "fake-gpt",
    }

    response = alice_api.post(KEYS, payload, format="json")

    body = assert_envelope(response, 400, "key_test_failed")
    assert SECRET not in response.content.decode() and "refused" in body["detail"]
    assert not ProviderKey.objects.exists()


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:11434/v1", "http://10.0.0.8/v1", "http://169.254.169.254/"]
)
def test_private_base_url_is_refused_at_save(alice_api, url):
    payload = {"provider": "ollama", "api_key": SECRET, "base_url": url, "test": False}

    response = alice_api.post(KEYS, payload, format="json")

    body = assert_envelope(response, 400, "unsafe_url")
    assert "Refusing" in body["field_errors"]["base_url"][0]
    assert not ProviderKey.objects.exists()


def test_demo_provider_takes_no_key(alice_api):
    response = alice_api.post(KEYS, {"provider": "demo", "api_key": "x"}, format="json")

    assert "provider" in assert_envelope(response, 400, "invalid_choice")["field_errors"]


def test_delete_key(alice_api, acme, no_platform_keys):
    key_id = alice_api.post(
        KEYS, {"provider": "anthropic", "api_key": SECRET, "test": False}, format="json"
    ).json()["id"]

    response = alice_api.delete(f"{KEYS}/{key_id}")

    assert response.status_code == 204
    assert not ProviderKey.objects.filter(pk=key_id).exists()
    assert credentials_for(org=acme, provider_id="anthropic").source == "none"


def test_members_cannot_write_keys(bob, alice_api):
    key_id = alice_api.post(
        KEYS, {"provider": "anthropic", "api_key": SECRET, "test": False}, format="json"
    ).json()["id"]
    client = as_user(bob)  # a member, not an admin

    assert_envelope(
        client.post(KEYS, {"provider": "groq", "api_key": SECRET, "test": False}, format="json"),
        403,
        "permission_denied",
    )
    assert_envelope(client.delete(f"{KEYS}/{key_id}"), 403, "permission_denied")

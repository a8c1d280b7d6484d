from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin

from accounts.models import AuditLog, Role
from accounts.services import audit_log_record, membership_change_role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_every_model_of_our_apps_is_registered_in_admin():
    ours = {"accounts", "agents", "workflows", "knowledge", "billing", "community", "integrations"}
    missing = [
        m._meta.label
        for m in apps.get_models()
        if m._meta.app_label in ours and m not in admin.site._registry
    ]
    assert missing == []


def test_superuser_can_open_every_admin_changelist(client, acme):
    client.force_login(UserFactory(email="root@example.com", is_staff=True, is_superuser=True))
    for model, _ in admin.site._registry.items():
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        assert client.get(url).status_code == 200, url


def test_non_staff_is_sent_to_admin_login(client, alice):
    client.force_login(alice)

    response = client.get("/admin/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_audit_log_rows_cannot_be_changed_or_deleted(alice, acme):
    entry = audit_log_record(action="test.action", actor=alice, organization=acme)

    entry.action = "tampered"
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        entry.delete()
    with pytest.raises(TypeError):
        AuditLog.objects.filter(pk=entry.pk).update(action="tampered")
    with pytest.raises(TypeError):
        AuditLog.objects.filter(pk=entry.pk).delete()
    assert AuditLog.objects.get(pk=entry.pk).action == "test.action"


def test_role_change_is_audited_with_old_and_new_role(alice, bob, acme):
    membership = acme.memberships.get(user=bob)

    membership_change_role(membership=membership, role=Role.ADMIN, by=alice)

    entry = AuditLog.objects.get(action="member.role_changed")
    assert entry.actor == alice
    assert entry.metadata == {"old_role": "member", "new_role": "admin"}
    assert entry.target_id == str(bob.pk)

"""Acme's extra cast for the account tests: carol (admin), vera (viewer) and a pending invitation."""

from __future__ import annotations

import pytest

from accounts.models import Role
from accounts.services import invitation_create
from tests.factories import MembershipFactory, UserFactory


@pytest.fixture
def carol(acme):
    """An admin (not owner) of Acme."""
    user = UserFactory(email="carol@example.com")
    MembershipFactory(organization=acme, user=user, role=Role.ADMIN)
    return user


@pytest.fixture
def vera(acme):
    """A viewer of Acme."""
    user = UserFactory(email="vera@example.com")
    MembershipFactory(organization=acme, user=user, role=Role.VIEWER)
    return user


@pytest.fixture
def invitation(acme, alice):
    return invitation_create(org=acme, email="charlie@example.com", role=Role.MEMBER, by=alice)

from __future__ import annotations

import os

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Organization, Role, User
from accounts.services import organization_create, user_ensure_personal_org
from community.services import notify

DEMO_EMAIL = "demo@agentos.local"
ADMIN_EMAIL = "admin@agentos.local"


class Command(BaseCommand):
    help = "Seed a demo organization and logins for local use. Idempotent; refuses to run with DEBUG off."

    def handle(self, *args: object, **options: object) -> None:
        if not settings.DEBUG and not os.environ.get("SEED_DEMO_FORCE"):
            self.stderr.write("seed_demo only runs with DEBUG on (set SEED_DEMO_FORCE=1 to override).")
            return
        password = os.environ.get("DEMO_PASSWORD", "agentos-demo")
        with transaction.atomic():
            demo, created = User.objects.get_or_create(email=DEMO_EMAIL, defaults={"name": "Demo User"})
            if created:
                demo.set_password(password)
                demo.save()
            user_ensure_personal_org(user=demo)
            org = Organization.objects.filter(slug="demo").first()
            if org is None:
                org = organization_create(name="Demo Org", owner=demo)
                Organization.objects.filter(pk=org.pk).update(slug="demo")
                notify(
                    user_id=demo.pk,
                    organization_id=org.pk,
                    text="Welcome to AgentOS! This is the demo organization.",
                )
            admin, created = User.objects.get_or_create(
                email=ADMIN_EMAIL, defaults={"name": "Admin", "is_staff": True, "is_superuser": True}
            )
            if created:
                admin.set_password(password)
                admin.save()
                user_ensure_personal_org(user=admin)
            if not org.memberships.filter(user=admin).exists():
                org.memberships.create(user=admin, role=Role.ADMIN)
            self._seed_billing(org=org)
            created_agents = self._seed_agents(org=org, by=demo)
        if created_agents:
            self.stdout.write(f"Seeded {created_agents} demo agents in Demo Org.")
        self.stdout.write(
            f"Demo login: {DEMO_EMAIL} / {password}   Admin (superuser, /admin/): {ADMIN_EMAIL} / {password}"
        )

    def _seed_billing(self, *, org: Organization) -> None:
        """The demo organization is on Pro with its monthly credits, so every feature can be tried."""
        from billing.ledger import account_for, post
        from billing.models import BillingAccount, Plan

        account_for(org)
        pro = Plan.objects.filter(slug="pro").first()
        if pro is not None:
            BillingAccount.objects.filter(organization=org).update(plan=pro)
            post(
                org=org,
                type="grant",
                amount=pro.monthly_credits,
                key="demo-pro-credits",
                description="Demo credits",
            )

    def _seed_agents(self, *, org: Organization, by: User) -> int:
        """A few hired agents from the role templates, on the default model (the offline demo model
        when no key is configured), so a fresh `make run` has someone to chat with."""
        from agents import services
        from agents.models import Agent
        from agents.runtime.providers import default_model
        from agents.templates_catalog import ROLE_TEMPLATES

        if Agent.objects.for_org(org).exists():
            return 0
        provider, model = default_model(org=org)
        for template in ROLE_TEMPLATES[:3]:
            services.agent_create(
                org=org,
                by=by,
                name=template.label,
                description=template.description,
                avatar=template.emoji,
                role=template.id,
                category=template.category,
                config={
                    "instructions": template.instructions,
                    "model": {"provider": provider, "name": model},
                    "tools": [
                        {"type": t} for t in template.tools if t in ("calculator", "datetime", "web_search")
                    ],
                },
                publish=True,
            )
        return 3

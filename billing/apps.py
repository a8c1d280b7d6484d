from typing import Any

from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db import transaction
        from django.db.models.signals import post_save

        from accounts.models import Organization
        from billing import webhooks  # noqa: F401 - registers the dj-stripe event handlers

        def open_account(sender: Any, instance: Organization, created: bool, **kwargs: Any) -> None:
            # Every new organization starts on the Free plan with its sign-up credits.
            if created:
                from billing.ledger import account_for

                org_id = instance.pk
                transaction.on_commit(lambda: account_for(org_id))

        post_save.connect(open_account, sender=Organization, dispatch_uid="billing_open_account", weak=False)

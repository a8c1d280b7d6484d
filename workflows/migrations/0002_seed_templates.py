"""Seed the templates gallery from workflows/templates_catalog/ (an upsert by slug; re-runnable)."""

from django.db import migrations


def seed(apps, schema_editor):
    from workflows.templates_catalog import sync_templates

    sync_templates(apps.get_model("workflows", "WorkflowTemplate"))


class Migration(migrations.Migration):
    dependencies = [("workflows", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]

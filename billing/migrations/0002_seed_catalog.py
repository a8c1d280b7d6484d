from django.db import migrations


def seed(apps, schema_editor):
    from billing.catalog import sync_catalog

    sync_catalog(apps)


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]

"""`billing_refuse(message)`: raise an error from plain SQL. A ledger move sent with the COMMIT
(billing/ledger.py, config/postgres) uses it to fail its transaction when its entries were partly
written already, since its result is only read after the commit."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION billing_refuse(message text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', message USING ERRCODE = 'unique_violation';
END
$$;
"""

DROP = "DROP FUNCTION IF EXISTS billing_refuse(text);"


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_cost_caps")]

    operations = [migrations.RunSQL(CREATE, DROP)]

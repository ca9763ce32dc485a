"""On PostgreSQL, refuse UPDATE and DELETE on the audit trail at the database itself."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION gateway_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = 'gateway_auditevent is append-only: ' || TG_OP || ' refused';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER gateway_auditevent_append_only
    BEFORE UPDATE OR DELETE ON gateway_auditevent
    FOR EACH ROW EXECUTE FUNCTION gateway_auditevent_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS gateway_auditevent_append_only ON gateway_auditevent;
DROP FUNCTION IF EXISTS gateway_auditevent_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("gateway", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]

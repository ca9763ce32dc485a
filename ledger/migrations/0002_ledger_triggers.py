"""On PostgreSQL, the ledger's rules enforced by the database itself.

- A deferred constraint trigger (as django-hordak's ``check_leg``) checks, at commit, that
  the entries of every transaction an inserted entry belongs to sum to zero per currency:
  an unbalanced transaction cannot be committed, whatever code wrote it.
- Entries and transactions are append-only: UPDATE and DELETE are refused (as the audit
  trail's trigger does), so history cannot be rewritten, not even by raw SQL.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION ledger_entry_check_balanced() RETURNS trigger AS $$
DECLARE
    unbalanced RECORD;
BEGIN
    SELECT a.currency, SUM(e.amount) AS total INTO unbalanced
      FROM ledger_entry e JOIN ledger_account a ON a.id = e.account_id
     WHERE e.transaction_id = NEW.transaction_id
     GROUP BY a.currency
    HAVING SUM(e.amount) <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            MESSAGE = 'ledger transaction ' || NEW.transaction_id || ' is unbalanced: its '
                      || unbalanced.currency || ' entries sum to ' || unbalanced.total;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE CONSTRAINT TRIGGER ledger_entry_check_balanced
    AFTER INSERT ON ledger_entry
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_check_balanced();

CREATE OR REPLACE FUNCTION ledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only: ' || TG_OP || ' refused';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER ledger_entry_append_only
    BEFORE UPDATE OR DELETE ON ledger_entry
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_transaction_append_only
    BEFORE UPDATE OR DELETE ON ledger_transaction
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS ledger_transaction_append_only ON ledger_transaction;
DROP TRIGGER IF EXISTS ledger_entry_append_only ON ledger_entry;
DROP FUNCTION IF EXISTS ledger_append_only();
DROP TRIGGER IF EXISTS ledger_entry_check_balanced ON ledger_entry;
DROP FUNCTION IF EXISTS ledger_entry_check_balanced();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]

"""Full-text search over tickets on PostgreSQL: a GIN index on the expression the inbox's search
filters by (``tickets.selectors``); other databases search with a plain substring fallback."""

from django.db import migrations

INDEX = "ticket_search_fts"
EXPRESSION = "to_tsvector('simple'::regconfig, COALESCE(search_text, ''))"


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON tickets_ticket USING gin ({EXPRESSION})")


def drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("tickets", "0002_agents")]
    operations = [migrations.RunPython(create, drop)]

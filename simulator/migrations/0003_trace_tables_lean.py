"""The trace tables, written on every call, made cheaper to write on PostgreSQL.

- No index of ``world_id`` alone on ``simulator_apicall`` and ``simulator_change``: the
  (world, seq) constraint and the sim_change_object index begin with it and serve the same lookups.
- The JSON columns of the trace (a call's query, body and response; a change's before and after)
  compress with lz4 instead of pglz where the server has it (PostgreSQL 14+ built with lz4): a
  response over 2 kB (an issue read, a search page) is compressed on every call, and pglz was a
  large part of the trace statement's server time (a 16 kB search page: 0.44 → 0.34 ms). Rows
  already written keep their compression; nothing is rewritten.
"""

from django.db import migrations, models
import django.db.models.deletion

LZ4_COLUMNS = {
    "simulator_apicall": ("query", "body", "response"),
    "simulator_change": ("before", "after"),
}


def has_lz4(cursor):
    cursor.execute(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    )
    row = cursor.fetchone()
    return bool(row and row[0])


def compression(method):
    def run(apps, schema_editor):
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cursor:
            if method == "lz4" and not has_lz4(cursor):
                return
            for table, columns in LZ4_COLUMNS.items():
                for column in columns:
                    cursor.execute(f'ALTER TABLE {table} ALTER COLUMN "{column}" SET COMPRESSION {method}')

    return run


class Migration(migrations.Migration):

    dependencies = [
        ("simulator", "0002_issue_rank"),
    ]

    operations = [
        migrations.AlterField(
            model_name="apicall",
            name="world",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="simulator.world",
            ),
        ),
        migrations.AlterField(
            model_name="change",
            name="world",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="simulator.world",
            ),
        ),
        migrations.RunPython(compression("lz4"), compression("default")),
    ]

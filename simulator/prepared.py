"""The simulator's hot statements, prepared once per PostgreSQL connection.

Every call runs the same few statements (the issue read, its list fields, the trace): on
PostgreSQL, parsing and planning them again at every call cost as much as running them (the issue
read and its list fields: 0.68 ms planned each time, 0.22 ms prepared, on the shared machine).
``prepared(sql)`` prepares a statement the first time a connection needs it and answers the
``EXECUTE`` to send in its place, with the same ``%s`` parameters. Other databases run the SQL as
it is.

Only statements whose text is built once (from the models, never from input) come here: the text
names its prepared statement, so each distinct text is prepared once per connection. A prepared
statement outlives a rolled-back transaction (PREPARE is not transactional), and PostgreSQL
re-plans it by itself when a table it reads changes.
"""

import functools
import hashlib
import weakref

from django.db import connection

# database connection -> names of the statements prepared on it
_PREPARED = weakref.WeakKeyDictionary()
# SQL text -> (statement name, PREPARE text, EXECUTE text)
_STATEMENTS = {}


def prepared(sql):
    """What to execute in place of ``sql`` (``%s`` placeholders, no ``%%``), with the same
    parameters: on PostgreSQL the EXECUTE of ``sql`` prepared on this connection."""
    if connection.vendor != "postgresql":
        return sql
    name, prepare, execute = _statement(sql)
    connection.ensure_connection()
    names = _PREPARED.setdefault(connection.connection, set())
    if name not in names:
        with connection.cursor() as cursor:
            cursor.execute(prepare)
        names.add(name)
    return execute


def _statement(sql):
    found = _STATEMENTS.get(sql)
    if found is None:
        # Named by the text, so that threads sharing the table can never give two texts one name.
        name = "sim_" + hashlib.sha256(sql.encode()).hexdigest()[:24]
        pieces = sql.split("%s")
        numbered = pieces[0] + "".join(f"${i}{piece}" for i, piece in enumerate(pieces[1:], 1))
        arguments = ", ".join(["%s"] * (len(pieces) - 1))
        execute = f"EXECUTE {name} ({arguments})" if arguments else f"EXECUTE {name}"
        found = _STATEMENTS[sql] = name, f"PREPARE {name} AS {numbered}", execute
    return found


def insert(obj):
    """INSERT ``obj``, a new model instance, and set its primary key: what ``obj.save()`` writes
    (the fields' own defaults and adaptation), with SQL built once per model instead of at every
    call. For the rows a hot call creates; the simulator's models have no save() override or
    signal this would skip."""
    with connection.cursor() as cursor:
        cursor.execute(prepared(insert_sql(type(obj), connection.vendor)), insert_values(obj))
        obj.pk = cursor.fetchone()[0]
    obj._state.adding = False
    obj._state.db = connection.alias
    return obj


def insert_values(obj):
    """The values ``insert_sql`` takes for ``obj``, adapted by the model's own fields."""
    return [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in _insert_fields(type(obj))]


@functools.cache
def _insert_fields(model):
    return tuple(f for f in model._meta.concrete_fields if f is not model._meta.pk)


# Table and column names come from the model; values are always parameters.
@functools.cache
def insert_sql(model, vendor, returning=True):
    """The INSERT of one row of ``model`` (its primary key returned, unless not ``returning``)."""
    qn = connection.ops.quote_name
    fields = _insert_fields(model)
    columns = ", ".join(qn(f.column) for f in fields)
    values = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {qn(model._meta.db_table)} ({columns}) VALUES ({values})"  # noqa: S608
    return f"{sql} RETURNING {qn(model._meta.pk.column)}" if returning else sql

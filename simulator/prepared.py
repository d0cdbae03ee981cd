"""The simulator's hot statements, prepared once per PostgreSQL connection.

Every call runs the same few statements (the issue read, its list fields, the trace): on
PostgreSQL, parsing and planning them again at every call cost as much as running them (the issue
read and its list fields: 0.68 ms planned each time, 0.22 ms prepared, on the shared machine).
``prepared(sql)`` prepares a statement the first time a connection needs it and answers the
``EXECUTE`` to send in its place, with the same ``%s`` parameters. Other databases run the SQL as
it is.

Only statements whose text is built once (from the models, never from input) come to
``prepared``: the text names its prepared statement, so each distinct text is prepared once per
connection. A JQL search's SQL, whose text comes from a request, goes to ``prepared_query``
instead, which keeps a bounded number per connection (below). A prepared statement outlives a
rolled-back transaction (PREPARE is not transactional), and PostgreSQL re-plans it by itself
when a table it reads changes. Also here: the INSERT of one row built once (``insert``) and model
instances from such SQL (``raw_instances``).
"""

import collections
import datetime as dt
import decimal
import functools
import hashlib
import math
import re
import weakref

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction
from django.db.models import signals
from django.db.models.base import ModelState

# database connection -> names of the statements prepared on it
_PREPARED = weakref.WeakKeyDictionary()
# SQL text -> (statement name, PREPARE text, EXECUTE text)
_STATEMENTS = {}
# statement name -> whether its SQL only reads (for reads_only)
_READS = {}


def prepared(sql):
    """What to execute in place of ``sql`` (``%s`` placeholders, no ``%%``), with the same
    parameters: on PostgreSQL the EXECUTE of ``sql`` prepared on this connection."""
    db = connections[DEFAULT_DB_ALIAS]  # the connection itself, not the thread-local proxy
    if db.vendor != "postgresql":
        return sql
    name, prepare, execute = _statement(sql)
    db.ensure_connection()
    names = _PREPARED.setdefault(db.connection, set())
    if name not in names:
        with db.cursor() as cursor:
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
        _READS[name] = _plain_select(sql)
    return found


_LOCKING = re.compile(r"\bFOR\s+(NO\s+KEY\s+UPDATE|UPDATE|KEY\s+SHARE|SHARE)\b", re.IGNORECASE)


def _plain_select(sql):
    return sql.lstrip()[:6].upper() == "SELECT" and not _LOCKING.search(sql)


def reads_only(sql):
    """Whether ``sql``, as a connection is about to execute it, only reads: a SELECT that locks
    nothing, the EXECUTE of one (prepared above, or a request's search: prepared_query), or a
    PREPARE / DEALLOCATE (which no transaction undoes)."""
    head = sql.lstrip()[:11].upper()
    if head.startswith("EXECUTE "):
        name = sql.split(None, 2)[1]
        return name.startswith("simq_") or _READS.get(name, False)
    if head.startswith(("PREPARE ", "DEALLOCATE ")):
        return True
    return _plain_select(sql)


# --- Statements whose text comes from a request ---------------------------------------------------
#
# A JQL search's SQL is built by Django from the query an agent writes, so a connection would
# meet an unbounded number of texts: at most QUERY_STATEMENTS of them stay prepared per
# connection, the least recently used one deallocated to make room. Their parameters are typed
# from the values, as psycopg2 types them when it writes them into the text as literals (an int
# as an integer, a float or Decimal as a numeric, a str as text, an aware datetime as a
# timestamptz, ...), never left to PostgreSQL to infer from where they stand: an inferred type
# could differ from the literal's (a numeric 2.5 compared with an integer column would be
# rounded to the parameter's inferred integer type). A value of any other type (None, a list),
# or a text PostgreSQL refuses to prepare with those types, runs as it is.

QUERY_STATEMENTS = 64

# database connection -> OrderedDict of the request-built statements prepared on it (LRU order)
_QUERIES = weakref.WeakKeyDictionary()
_INT8 = (-(2**63), 2**63 - 1)


def prepared_query(sql, params):
    """What to execute in place of ``sql`` (a SELECT built from a request, ``%s`` placeholders)
    with the same ``params``: on PostgreSQL the EXECUTE of it prepared on this connection, within
    the bound above; else ``sql``."""
    if connection.vendor != "postgresql":
        return sql
    types = _parameter_types(params)
    if types is None or "%%" in sql:
        return sql
    key = (sql, types)
    connection.ensure_connection()
    kept = _QUERIES.setdefault(connection.connection, collections.OrderedDict())
    found = kept.get(key)
    if found is not None:
        kept.move_to_end(key)
        return found or sql  # False: PostgreSQL refused it
    name = "simq_" + hashlib.sha256(repr(key).encode()).hexdigest()[:24]
    pieces = sql.split("%s")
    numbered = pieces[0] + "".join(f"${i}{piece}" for i, piece in enumerate(pieces[1:], 1))
    while len(kept) >= QUERY_STATEMENTS:
        _, old = kept.popitem(last=False)
        if old:
            with connection.cursor() as cursor:
                cursor.execute(f"DEALLOCATE {old.split()[1]}")
    try:
        # A refused PREPARE must not abort the call's transaction.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"PREPARE {name} ({', '.join(types)}) AS {numbered}")
    except DatabaseError:
        kept[key] = False  # remembered (within the bound), not retried
        return sql
    arguments = ", ".join(["%s"] * len(types))
    kept[key] = f"EXECUTE {name} ({arguments})" if arguments else f"EXECUTE {name}"
    return kept[key]


def _parameter_types(params):
    """PostgreSQL's type of each value as psycopg2 writes it as a literal; None if one has none."""
    types = []
    for value in params:
        kind = type(value)
        if kind is bool:
            types.append("boolean")
        elif kind is int and _INT8[0] <= value <= _INT8[1]:
            types.append("bigint")
        elif (kind is float and math.isfinite(value)) or (kind is decimal.Decimal and value.is_finite()):
            types.append("numeric")
        elif kind is str:
            types.append("text")
        elif kind is dt.datetime:
            types.append("timestamptz" if value.tzinfo is not None else "timestamp")
        elif kind is dt.date:
            types.append("date")
        else:
            return None
    return tuple(types)


def raw_instances(model, sql, params):
    """``list(model.objects.raw(sql, params))``: the same instances, with the columns' mapping and
    converters worked out once per model and list of columns instead of at every query (that
    bookkeeping cost more than a hot call's Python around it).

    An instance is made as ``Model.from_db`` makes it, less ``Model.__init__``: the row's values
    go straight into the instance's ``__dict__`` (the fields it does not read are deferred, as
    from_db leaves them). What __init__ adds for a row from the database is one setattr per field
    through the foreign keys' descriptors (which only clear caches a new instance has not got) and
    the init signals, which no simulator model has (checked): a search's ten issues spent more in
    __init__ than in the rest of their loading."""
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        cursor.execute(sql, [db.ops.adapt_unknown_value(value) for value in params])  # as RawQuery
        columns = tuple(db.introspection.identifier_converter(c[0]) for c in cursor.description)
        rows = cursor.fetchall()
    names, positions, extra, converters = _raw_plan(model, columns, db.alias)
    found = []
    for row in rows:
        if converters:
            row = list(row)
            for pos, (functions, expression) in converters:
                value = row[pos]
                for convert in functions:
                    value = convert(value, expression, db)
                row[pos] = value
        instance = model.__new__(model)  # model.from_db, without Model.__init__ (below)
        instance.__dict__.update({name: row[pos] for name, pos in zip(names, positions, strict=True)})
        instance._state = ModelState()
        instance._state.adding = False
        instance._state.db = db.alias
        for column, pos in extra:
            setattr(instance, column, row[pos])
        found.append(instance)
    return found


@functools.cache
def _raw_plan(model, columns, alias):
    # What RawModelIterable works out for each query (django.db.models.query), once.
    if signals.pre_init.has_listeners(model) or signals.post_init.has_listeners(model):
        raise TypeError(f"{model.__name__} has init signals: raw_instances would skip them")
    db = connections[alias]
    by_column = {db.introspection.identifier_converter(f.column): f for f in model._meta.fields}
    init = [f for f in model._meta.fields if db.introspection.identifier_converter(f.column) in columns]
    names = [f.attname for f in init]
    positions = [columns.index(db.introspection.identifier_converter(f.column)) for f in init]
    extra = [(column, pos) for pos, column in enumerate(columns) if column not in by_column]
    converters = []
    for pos, column in enumerate(columns):
        field = by_column.get(column)
        if field is None:
            continue
        expression = field.get_col(field.model._meta.db_table)
        functions = db.ops.get_db_converters(expression) + expression.get_db_converters(db)
        if functions:
            converters.append((pos, (functions, expression)))
    return names, positions, extra, converters


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
    db = connections[DEFAULT_DB_ALIAS]  # the fields look at it often: not through the proxy
    return [f.get_db_prep_save(f.pre_save(obj, True), db) for f in _insert_fields(type(obj))]


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

"""Writing one call to its world: the clock and id counter, the ``ApiCall`` row and the ``Change``
rows of what the call did, in the call's own transaction.

The dispatcher keeps a world's clock (``ticks``) and id counter (``next_ext_id``) in memory while a
call runs and writes them here together with the call: a world's state, its counters and its
trace are committed together or not at all, so a verifier never reads a change without its call,
a call without its changes, or a clock that ran ahead of the trace.

Raw SQL, because this runs on every call and the ORM's per-row work (model instances, save(),
bulk_create) was a large part of a call's time; values are still adapted by the models' own
fields, so what lands in the tables is what the ORM would write.

- PostgreSQL: one round trip. The world UPDATE, the call INSERT, the changes INSERT and the writes
  the handler held back (``write``, below) are one statement (data-modifying CTEs), prepared once
  per connection for each number of changes and set of held writes (simulator.prepared), which
  also sets ``synchronous_commit`` off for its transaction (``set_config``, a CTE of its own):
  the call's commit does not wait for its WAL to reach
  the disk (3 ms on the shared machine, most of a call). A crash of the database server can lose
  the last fraction of a second of calls, each one whole, state and trace together; it never
  splits a call. The setting is for this transaction only. Where that statement is the call's
  whole transaction, the call need not wait for its answer either (UnansweredStatement, below):
  the connection's next statement reads it first; such a statement is bound to its parameters as
  text (libpq's PQsendQueryPrepared), no quoting and nothing long for the server to parse.
- SQLite: three statements (WAL with synchronous=NORMAL already commits without a sync).
"""

import contextvars
import ctypes
import datetime as dt
import json
import math
from functools import cache, lru_cache

import psycopg2.extras
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections

from simulator.models import ApiCall, Change, World
from simulator.prepared import insert, insert_sql, insert_values, prepared, reads_only

CALL_FIELDS = (
    "world",
    "seq",
    "door",
    "user",
    "method",
    "path",
    "query",
    "body",
    "status",
    "response",
    "operation",
    "duration_ms",
    "at",
)
# A change as the dispatcher collects it: (action, object_type, object_ref, field, before, after).
CHANGE_FIELDS = ("action", "object_type", "object_ref", "field", "before", "after")
# Calls with up to this many changes (nearly all) have their statement prepared; the rare larger
# ones are planned each time rather than keep a statement per size on every connection.
PREPARED_CHANGES = 16


# --- Writes held for the trace statement ---------------------------------------------------------


class HeldWrites:
    """The writes of the call in progress that wait to go out with its trace statement.

    Most calls end with a write nothing in the call reads back (the issue's ``updated``, a label, a
    comment, a page): on PostgreSQL each was a round trip of its own before the trace statement.
    Held here, they become CTEs of that statement. Nothing can observe the difference: the first
    other statement the call runs before its trace (the held object is an execute wrapper of the
    connection while it holds anything) runs them first, one by one and in order, as they would
    have run; a second write to a table already held does the same (a statement must not update
    one row twice, and a unique constraint must see a DELETE before its INSERT). A call that fails
    drops them with the rest of its transaction.
    """

    def __init__(self):
        self.writes = []  # (table, sql, params)

    def add(self, table, sql, params):
        if any(held == table for held, _, _ in self.writes):
            self.flush()
        if not self.writes:
            connection.execute_wrappers.append(self)
        self.writes.append((table, sql, list(params)))

    def take(self):
        """The held writes, no longer held: the trace statement carries them."""
        writes, self.writes = self.writes, []
        if writes:
            connection.execute_wrappers.remove(self)
        return writes

    def flush(self):
        writes = self.take()
        if writes:
            with connection.cursor() as cursor:
                for _, sql, params in writes:
                    cursor.execute(prepared(sql), params)

    def __call__(self, execute, sql, params, many, context):
        self.flush()
        return execute(sql, params, many, context)


_HELD = contextvars.ContextVar("simulator_held_writes", default=None)


def hold_writes():
    """Start holding the writes of a call (the dispatcher, around a handler); returns the token
    to ``release_writes`` with."""
    return _HELD.set(HeldWrites())


def held_writes():
    """The writes held so far for this call's trace statement (taken: no longer held)."""
    held = _HELD.get()
    return held.take() if held is not None else []


def release_writes(token):
    """Stop holding; writes still held are dropped (the call failed: its transaction rolls back)."""
    held = _HELD.get()
    if held is not None:
        held.take()
    _HELD.reset(token)


def write(table, sql, params):
    """Run ``sql`` (a write to ``table``, SQL built once, ``%s`` parameters), a write that the call
    makes last or that nothing before the call's next statement depends on. On PostgreSQL, inside
    a call, it is held for the call's trace statement (HeldWrites); elsewhere it runs now."""
    held = _HELD.get()
    if held is None or connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(prepared(sql), params)
        return
    held.add(table, sql, params)


def write_row(obj):
    """INSERT ``obj``, a new model instance, as ``write`` does: for a row nothing in the call
    refers to by primary key, which stays unset where the INSERT is held (PostgreSQL); elsewhere
    ``simulator.prepared.insert``."""
    if _HELD.get() is None or connection.vendor != "postgresql":
        return insert(obj)
    model = type(obj)
    write(model._meta.db_table, insert_sql(model, connection.vendor, returning=False), insert_values(obj))
    obj._state.adding = False
    obj._state.db = connection.alias
    return obj


# --- A call's transaction on PostgreSQL ------------------------------------------------------------


class ReadsOutsideTransaction:
    """PostgreSQL, a call that is its connection's outermost transaction: its statements that only
    read run before the transaction begins, and the first one that writes begins it.

    Most calls write nothing but their trace statement (with the writes they held), which is one
    statement: without a transaction before it, it commits by itself, and the call needs no COMMIT
    of its own (a round trip, 0.2-0.7 ms on the shared machine). Reads outside a transaction see
    what they would see inside one under READ COMMITTED (every statement takes its own snapshot),
    and nothing is written before the transaction begins. A call that writes before its trace
    (an issue's create) has its transaction begun here, BEGIN sent in the same round trip as its
    first write, and ended by its trace statement (``write_call`` adds the COMMIT to it) or by
    ``end`` (ROLLBACK, the call failed): two round trips fewer than psycopg2's own BEGIN and
    COMMIT. Django's atomic block stays around the call, so its bookkeeping is unchanged: psycopg2's
    connection runs in autocommit throughout the call, and its commit or rollback sends nothing.
    """

    def __init__(self, db):
        self.db, self.raw = db, db.connection
        self.raw.autocommit = True
        self.began = False  # a transaction this object began and has not ended
        db.execute_wrappers.append(self)

    def __call__(self, execute, sql, params, many, context):
        if reads_only(sql) or not self.close():
            return execute(sql, params, many, context)
        self.began = True
        if many:
            with self.raw.cursor() as cursor:
                cursor.execute("BEGIN")
            return execute(sql, params, many, context)
        return execute(f"BEGIN; {sql}", params, many, context)

    def close(self):
        """Stop watching; whether the call had not begun its transaction."""
        if self in self.db.execute_wrappers:
            self.db.execute_wrappers.remove(self)
            return True
        return False

    def end(self):
        """After the call: stop watching, and roll back the transaction this object began if the
        trace statement did not commit it (the call failed)."""
        self.close()
        if self.began:
            self.began = False
            try:
                with self.raw.cursor() as cursor:
                    cursor.execute("ROLLBACK")
            except self.db.Database.Error:
                pass  # a connection that cannot roll back has lost the transaction with itself


def reads_outside_transaction():
    """A ReadsOutsideTransaction for the call about to begin, if it can have one: PostgreSQL at
    READ COMMITTED (Django's default), and the call's atomic block the outermost one (else it is a
    savepoint in someone else's transaction). None otherwise."""
    db = connections[DEFAULT_DB_ALIAS]  # the connection itself, not the thread-local proxy
    if (
        db.vendor != "postgresql"
        or db.Database.__name__ != "psycopg2"
        or db.settings_dict["OPTIONS"].get("isolation_level") is not None
        or not (db.in_atomic_block and db.commit_on_exit)
        or len(db.atomic_blocks) != 1
    ):
        return None
    db.ensure_connection()
    if db.connection.status != db.Database.extensions.STATUS_READY:
        return None  # something already began the transaction
    return ReadsOutsideTransaction(db)


# --- The trace statement ---------------------------------------------------------------------------


@cache
def _fields(model, names):
    return tuple(model._meta.get_field(name) for name in names)


class JSONText(str):
    """A JSON field's value already encoded as JSON text, stored as it is (what the field would
    store for the decoded value, without encoding it again)."""


def _prep(fields, values, db):
    out = []
    for f, v in zip(fields, values, strict=True):
        # A str, int or float (or None) that its field would adapt to itself goes as it is; the
        # rest (JSON, datetimes) as the field adapts it.
        if v is None or type(v) is _AS_IS.get(f):
            out.append(v)
        elif type(v) is JSONText:
            out.append(str(v))
        elif f in _JSON_AS_TEXT:
            out.append(json.dumps(v))  # the text the field stores, without its adapter object
        else:
            out.append(f.get_db_prep_save(v, db))
    return out


# Fields whose get_db_prep_save gives back a value of this exact type unchanged (to_python / int()
# / float() of a value that already is one).
_AS_IS = {
    f: {"CharField": str, "FloatField": float}.get(f.get_internal_type(), int)
    for model, names in ((ApiCall, CALL_FIELDS), (Change, CHANGE_FIELDS))
    for f in (model._meta.get_field(name) for name in names)
    if f.get_internal_type()
    in ("CharField", "FloatField", "PositiveIntegerField", "PositiveSmallIntegerField", "ForeignKey")
}


# JSON fields without an encoder of their own: the field stores json.dumps of the value, on
# PostgreSQL through psycopg2's Json adapter (whose quoting runs in Python), as a str here.
_JSON_AS_TEXT = {
    f
    for model, names in ((ApiCall, CALL_FIELDS), (Change, CHANGE_FIELDS))
    for f in (model._meta.get_field(name) for name in names)
    if f.get_internal_type() == "JSONField" and f.encoder is None
}


def _placeholder(field):
    # A JSON value goes as its text, a quoted literal: say what type it is.
    if field.get_internal_type() == "JSONField" and connection.vendor == "postgresql":
        return "%s::jsonb"
    return "%s"


_ASYNC_COMMIT = "SELECT set_config('synchronous_commit', 'off', true)"


# Table and column names come from the models, values are always parameters: no input is spliced.
@lru_cache(maxsize=256)
def _sql(vendor, n_changes, held=()):
    """(world update, call insert, changes insert) of this vendor, for ``n_changes`` changes; on
    PostgreSQL one statement, with the ``held`` writes' SQL as CTEs after the call's."""
    call_fields = _fields(ApiCall, CALL_FIELDS)
    change_fields = _fields(Change, CHANGE_FIELDS)
    world = f"UPDATE {World._meta.db_table} SET ticks = %s, next_ext_id = %s WHERE id = %s"  # noqa: S608
    call_columns = ", ".join(f.column for f in call_fields)
    call_values = ", ".join(_placeholder(f) for f in call_fields)
    call = f"INSERT INTO {ApiCall._meta.db_table} ({call_columns}) VALUES ({call_values})"  # noqa: S608
    change_into = f"INSERT INTO {Change._meta.db_table} (world_id, call_id, {', '.join(CHANGE_FIELDS)})"
    change_values = ", ".join(_placeholder(f) for f in change_fields)
    if vendor == "postgresql":
        # s: this transaction's commit does not wait for the WAL flush (a CTE runs when the
        # statement reads it, hence "FROM c, s").
        head = f"WITH s AS ({_ASYNC_COMMIT}), w AS ({world}), c AS ({call} RETURNING id, world_id)"
        head += "".join(f", h{i} AS ({sql})" for i, sql in enumerate(held)) + " "
        if not n_changes:
            return head + "SELECT id FROM c, s"  # noqa: S608
        rows = ", ".join([f"({change_values})"] * n_changes)
        return head + f"{change_into} SELECT c.world_id, c.id, v.* FROM c, s, (VALUES {rows}) AS v"  # noqa: S608
    rows = ", ".join([f"(%s, %s, {change_values})"] * n_changes)
    return world, call, f"{change_into} VALUES {rows}"


def _prepared_if_small(statement, changes):
    return prepared(statement) if len(changes) <= PREPARED_CHANGES else statement


def write_call(world, call, changes, held=(), reads=None, wait=True):
    """Write ``world``'s counters, the call (``{field: value}`` of ApiCall, by CALL_FIELDS), its
    ``changes`` (tuples by CHANGE_FIELDS) and the writes the call ``held`` (``held_writes()``;
    only PostgreSQL holds any). ``reads``: the call's ReadsOutsideTransaction, if it has one; the
    trace statement then ends the call's transaction (it is the whole of it, or it carries the
    COMMIT of the one ``reads`` began) and is not waited for unless ``wait``
    (UnansweredStatement)."""
    db = connections[DEFAULT_DB_ALIAS]  # the connection itself, not the thread-local proxy
    call_values = _prep(_fields(ApiCall, CALL_FIELDS), [call[name] for name in CALL_FIELDS], db)
    change_fields = _fields(Change, CHANGE_FIELDS)
    counters = [world.ticks, world.next_ext_id, world.pk]
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            params = counters + call_values
            for _, _, held_params in held:
                params.extend(held_params)
            for change in changes:
                params.extend(_prep(change_fields, change, db))
            statement = _sql("postgresql", len(changes), tuple(sql for _, sql, _ in held))
            if reads is None:  # inside someone else's transaction
                cursor.execute(_prepared_if_small(statement, changes), params)
                return
            # The statement ends the call's transaction: it is the whole of it, or it commits what
            # ReadsOutsideTransaction began.
            reads.close()
            if not wait and not reads.began and len(changes) <= PREPARED_CHANGES:
                texts = _as_text(params)
                if texts is not None:
                    _send_bound(db, statement, texts)  # returns before its answer
                    return
            statement = _prepared_if_small(statement, changes)
            if reads.began:
                statement += "; COMMIT"
            if wait:
                cursor.execute(statement, params)
            else:
                _send_text(db, cursor.mogrify(statement, params))  # returns before its answer
            reads.began = False
            return
        world_sql, call_sql, changes_sql = _sql(db.vendor, len(changes))
        cursor.execute(world_sql, counters)
        cursor.execute(call_sql, call_values)
        if changes:
            call_id = cursor.lastrowid
            params = []
            for change in changes:
                params.extend([world.pk, call_id, *_prep(change_fields, change, db)])
            cursor.execute(changes_sql, params)


# --- The trace statement, sent without waiting for its answer (PostgreSQL) ------------------------


class TraceStatementFailed(DatabaseError):
    """The trace statement of a call whose answer was already given failed (see
    UnansweredStatement): that call is not in the database, neither its writes nor its trace,
    while the world's clock in memory counted it. Raised by the connection's next statement; the
    world cannot go on, the episode that was using it must start again on a fresh fork."""


class UnansweredStatement:
    """A call's trace statement, sent on the call's connection without waiting for its answer.

    On PostgreSQL, a call that is its connection's outermost transaction ends that transaction with
    its trace statement (ReadsOutsideTransaction: the statement is the whole transaction, or
    carries its COMMIT). Where its client allows (SimClient's ``wait=False``, for a world the
    client alone uses), the statement is sent and the call returns at once; the server runs it
    while the caller goes on to its next call, and this object, an execute wrapper of the
    connection, reads its answer before the connection's next statement. PostgreSQL runs a
    connection's statements in the order they come, so that next statement sees everything the
    call wrote, as it would have; what changes is when a failure is heard of: after the call's
    answer was given, as TraceStatementFailed from the next statement. Such a failure loses the
    call whole (its state and its trace commit together), as an asynchronous commit already may
    when the server crashes; on a world one client owns nothing but a broken connection or a
    concurrent writer to the same world could cause it.

    psycopg2 has no call that sends without waiting, so the statement goes through libpq on
    psycopg2's own connection (``pgconn_ptr``, documented for such use): PQsendQueryPrepared, its
    parameters as text (``_as_text``), or PQsendQuery of the text psycopg2's ``mogrify`` makes
    where a value has no sure text form or the statement carries a COMMIT. psycopg2 itself never
    trips over the unread answer: it sends with PQexec, which reads and drops any answer left
    before sending; the wrapper reads it first so a failure is not dropped unheard.
    """

    def __init__(self, db):
        self.db, self.raw = db, db.connection
        self.pgconn = self.raw.pgconn_ptr
        db.execute_wrappers.insert(0, self)  # outermost: before any other wrapper's statement

    def __call__(self, execute, sql, params, many, context):
        self.finish()
        return execute(sql, params, many, context)

    def finish(self):
        """Read the answer (once); raise TraceStatementFailed if the statement failed."""
        if self not in self.db.execute_wrappers:
            return
        self.db.execute_wrappers.remove(self)
        if self.raw.closed or self.db.connection is not self.raw:
            return  # closed since: the server still runs a statement it received whole
        lib, error = _libpq(), None
        while result := lib.PQgetResult(self.pgconn):
            if error is None and lib.PQresultStatus(result) == _PGRES_FATAL_ERROR:
                error = lib.PQresultErrorMessage(result).decode(errors="replace").strip()
            lib.PQclear(result)
        if error is not None:
            if self.raw.info.transaction_status in (_TRANSACTION_INTRANS, _TRANSACTION_INERROR):
                with self.raw.cursor() as cursor:  # the COMMIT that followed the failure never ran
                    cursor.execute("ROLLBACK")
            raise TraceStatementFailed(f"The trace statement of the previous call failed: {error}")


_PGRES_FATAL_ERROR = 7  # libpq's ExecStatusType
_TRANSACTION_INTRANS, _TRANSACTION_INERROR = 2, 3  # libpq's PGTransactionStatusType


@cache
def _libpq():
    """libpq's functions from the library psycopg2's connections were opened with (the symbols
    are looked up among _psycopg's dependencies, never in some other libpq on the machine)."""
    import psycopg2._psycopg

    lib = ctypes.CDLL(psycopg2._psycopg.__file__)
    for name, argtypes, restype in (
        ("PQsendQuery", [ctypes.c_void_p, ctypes.c_char_p], ctypes.c_int),
        (
            "PQsendQueryPrepared",
            [
                ctypes.c_void_p,
                ctypes.c_char_p,
                ctypes.c_int,
                ctypes.POINTER(ctypes.c_char_p),
                ctypes.c_void_p,
                ctypes.c_void_p,
                ctypes.c_int,
            ],
            ctypes.c_int,
        ),
        ("PQgetResult", [ctypes.c_void_p], ctypes.c_void_p),
        ("PQresultStatus", [ctypes.c_void_p], ctypes.c_int),
        ("PQresultErrorMessage", [ctypes.c_void_p], ctypes.c_char_p),
        ("PQclear", [ctypes.c_void_p], None),
        ("PQerrorMessage", [ctypes.c_void_p], ctypes.c_char_p),
    ):
        function = getattr(lib, name)
        function.argtypes, function.restype = argtypes, restype
    return lib


def unanswered(db):
    """The connection's statement still waiting to be read, if any."""
    return next((w for w in db.execute_wrappers if isinstance(w, UnansweredStatement)), None)


def _send_bound(db, sql, texts):
    """Send the statement ``sql`` (prepared on ``db``'s connection) bound to ``texts``, its
    parameters in PostgreSQL's text input form, and return without its answer: no quoting, and
    nothing for the server to parse but the values."""
    name = prepared(sql).split()[1]  # prepares it on this connection the first time
    values = (ctypes.c_char_p * len(texts))(*[None if t is None else t.encode() for t in texts])
    _send(
        db,
        f"EXECUTE {name} ({len(texts)} parameters)",
        lambda lib, pgconn: lib.PQsendQueryPrepared(pgconn, name.encode(), len(texts), values, None, None, 0),
    )


def _send_text(db, query):
    """Send ``query``, a statement as psycopg2's ``mogrify`` writes it, and return without its
    answer."""
    _send(db, query.decode(errors="replace"), lambda lib, pgconn: lib.PQsendQuery(pgconn, query))


def _send(db, logged, send):
    pending = unanswered(db)
    if pending is not None:
        pending.finish()  # libpq sends one query at a time
    lib, pgconn = _libpq(), db.connection.pgconn_ptr
    if not send(lib, pgconn):
        raise DatabaseError(lib.PQerrorMessage(pgconn).decode(errors="replace").strip())
    if db.queries_logged:  # as Django's debug cursor logs a statement (counted by the benchmark)
        db.queries_log.append({"sql": logged, "time": "0.000"})
    UnansweredStatement(db)


def _as_text(values):
    """``values`` in PostgreSQL's text input form (None for NULL), as psycopg2 would have written
    them into the statement; None if one has no form here that is sure to mean the same."""
    texts = []
    for v in values:
        kind = type(v)
        if v is None:
            texts.append(None)
        elif kind is str:
            if "\x00" in v:
                return None
            texts.append(v)
        elif kind is bool:
            texts.append("t" if v else "f")
        elif kind is int:
            texts.append(str(v))
        elif kind is float and math.isfinite(v):
            texts.append(repr(v))
        elif (kind is dt.datetime and v.tzinfo is not None) or kind is dt.date:
            texts.append(v.isoformat())
        elif kind is list:
            text = _array_text(v)
            if text is None:
                return None
            texts.append(text)
        elif isinstance(v, psycopg2.extras.Json):  # a JSON field's value (Django's Jsonb)
            text = v.dumps(v.adapted)
            if "\x00" in text:
                return None
            texts.append(text)
        else:
            return None
    return texts


def _array_text(items):
    """A flat list of str or int in PostgreSQL's array input form; None for anything else."""
    out = []
    for item in items:
        if type(item) is int:
            out.append(str(item))
        elif type(item) is str and "\x00" not in item:
            out.append('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"')
        else:
            return None
    return "{" + ",".join(out) + "}"


def finish_unanswered():
    """Read the answer of the statement this thread's connection sent without waiting, if any
    (TraceStatementFailed if it failed): for code that must know its calls are in the database
    before it goes on without running a statement, such as the end of an episode."""
    pending = unanswered(connections[DEFAULT_DB_ALIAS])
    if pending is not None:
        pending.finish()

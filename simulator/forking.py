"""``fork_world``: a new world that is a copy of a template, in a fixed number of queries.

How it stays cheap: on PostgreSQL the whole copy is one statement that runs inside the
database: per table, a CTE numbers the template's rows with new keys from the table's sequence
(in key order, so creation order is kept), and an INSERT ... SELECT copies the rows with their
foreign keys looked up in those numberings; the statement returns the numberings of the
configuration tables, from which the new world's configuration is built in memory (the
template's rows are read once per process and kept). On SQLite, which has no data-modifying
CTEs, a fork reserves primary keys for every table in one query, rewrites the foreign keys in
memory and inserts each table with one bulk INSERT (a few for the largest tables).

Foreign keys are checked at commit (Django creates them deferrable), so the order of the inserts
and the cycles (space <-> homepage, parent issues and pages) do not matter.
"""

import functools
import secrets
import weakref
from collections import OrderedDict

from django.apps import apps
from django.db import connection, models, transaction

from simulator.models import ApiCall, Change, User, World, new_api_token
from simulator.world_config import CONFIG_MODELS, WorldConfig, remember

_SNAPSHOTS = OrderedDict()
_SNAPSHOT_LIMIT = 8
# The trace belongs to the world that made it; a fork starts with an empty one.
_NOT_COPIED = {ApiCall, Change}


def copied_models():
    """Every world-owned table and the many-to-many tables between them, in definition order."""
    out = []
    for model in apps.get_app_config("simulator").get_models():
        if model in _NOT_COPIED or model is World or not _has_world(model):
            continue
        out.append(model)
        for m2m in model._meta.local_many_to_many:
            out.append(m2m.remote_field.through)
    return out


def _has_world(model):
    return any(f.name == "world" for f in model._meta.concrete_fields)


def _snapshot(template):
    """{model: [row dict by attname]} of the template, cached per process."""
    key = (template.pk, template.created_at)
    snap = _SNAPSHOTS.get(key)
    if snap is None:
        snap = {}
        for model in copied_models():
            if _has_world(model):
                qs = model.objects.filter(world_id=template.pk)
            else:  # a many-to-many table: rows whose owner belongs to the template
                owner = next(f for f in model._meta.concrete_fields if f.is_relation)
                qs = model.objects.filter(**{f"{owner.name}__world_id": template.pk})
            snap[model] = list(qs.order_by("pk").values(*[f.attname for f in model._meta.concrete_fields]))
        _SNAPSHOTS[key] = snap
        if len(_SNAPSHOTS) > _SNAPSHOT_LIMIT:
            _SNAPSHOTS.popitem(last=False)
    return snap


def fork_world(template, slug=None):
    """A new world with the template's content: ext_ids, keys, clock and counters preserved,
    new database rows and new API tokens."""
    snap = _snapshot(template)
    if connection.vendor == "postgresql":
        return _fork_in_database(template, slug, snap)
    with transaction.atomic():
        world = _new_world(template, slug)
        new_pks = _reserve_pks({model: len(rows) for model, rows in snap.items() if rows})
        pk_map = {
            model: dict(zip((row["id"] for row in rows), new_pks.get(model, ()), strict=True))
            for model, rows in snap.items()
        }
        written = {}
        for model, rows in snap.items():
            if not rows:
                continue
            relations = [
                (f.attname, pk_map.get(f.related_model))
                for f in model._meta.concrete_fields
                if isinstance(f, models.ForeignKey) and f.related_model is not World
            ]
            objs = []
            for row in rows:
                values = dict(row)
                values["id"] = pk_map[model][row["id"]]
                if "world_id" in values:
                    values["world_id"] = world.pk
                for attname, mapping in relations:
                    if values[attname] is not None:
                        values[attname] = mapping[values[attname]]
                if model is User:
                    values["api_token"] = new_api_token()
                objs.append(model(**values))
            model.objects.bulk_create(objs)
            written[model] = objs
    # The fork's configuration is what was just written: its first call need not read it back.
    remember(world, WorldConfig({model: written.get(model, []) for model in CONFIG_MODELS}))
    return world


def _new_world(template, slug):
    return World.objects.create(
        slug=slug or f"{template.seed}-{secrets.token_hex(5)}",
        seed=template.seed,
        forked_from=template,
        clock_start=template.clock_start,
        clock_step_ms=template.clock_step_ms,
        ticks=template.ticks,
        next_ext_id=template.next_ext_id,
    )


def _fork_in_database(template, slug, snap):
    """PostgreSQL: the copy in one statement (see the module's docstring)."""
    users = snap[User]
    tokens = [new_api_token() for _ in users]
    with transaction.atomic():
        world = _new_world(template, slug)
        with connection.cursor() as cursor:
            _prepare_copy(cursor)
            # A fork waits for no WAL flush either (as a call, simulator.trace): a server crash
            # may lose the newest forks whole, never half of one.
            cursor.execute(
                f"SET LOCAL synchronous_commit TO OFF; EXECUTE {_COPY_STATEMENT}(%s, %s, %s::text[])",
                [template.pk, world.pk, tokens],
            )
            numbering = {}
            for index, old, new in cursor.fetchall():
                numbering.setdefault(index, {})[old] = new
    models_ = copied_models()
    pk_map = {model: numbering.get(models_.index(model), {}) for model in CONFIG_MODELS}
    written = {}
    for model in CONFIG_MODELS:
        relations = [
            (f.attname, pk_map.get(f.related_model))
            for f in model._meta.concrete_fields
            if isinstance(f, models.ForeignKey) and f.related_model is not World
        ]
        objs = []
        for position, row in enumerate(snap[model]):
            values = {**row, "id": pk_map[model][row["id"]], "world_id": world.pk}
            for attname, mapping in relations:
                if values[attname] is not None:
                    values[attname] = mapping[values[attname]]
            if model is User:
                values["api_token"] = tokens[position]
            objs.append(model(**values))
        written[model] = objs
    remember(world, WorldConfig(written))
    return world


_COPY_STATEMENT = "simulator_fork_world"
_PREPARED_ON = weakref.WeakSet()  # the database connections that have the statement prepared


def _prepare_copy(cursor):
    """Prepare the copy once per database connection: it is planned once, not at every fork
    (planning the statement costs more than running it)."""
    raw = connection.connection
    if raw not in _PREPARED_ON:
        cursor.execute(f"PREPARE {_COPY_STATEMENT} (bigint, bigint, text[]) AS {copy_sql()}")
        _PREPARED_ON.add(raw)


@functools.cache
def copy_sql():
    """The one statement that copies a template's rows: $1 the template, $2 the new world,
    $3 the new users' API tokens in key order."""
    return _build_copy_sql()


def _build_copy_sql():
    qn = connection.ops.quote_name
    models_ = copied_models()
    index = {model: i for i, model in enumerate(models_)}
    # Table and column names come from the models; values are parameters: no input reaches the text.
    numberings, inserts = [], []
    for model, i in index.items():
        table = qn(model._meta.db_table)
        if _has_world(model):
            owned = f"SELECT id FROM {table} WHERE world_id = $1"  # noqa: S608
        else:  # a many-to-many table: rows whose owner belongs to the template
            owner = next(f for f in model._meta.concrete_fields if f.is_relation)
            owner_table = qn(owner.related_model._meta.db_table)
            owned = (
                f"SELECT id FROM {table} WHERE {qn(owner.column)} IN "  # noqa: S608
                f"(SELECT id FROM {owner_table} WHERE world_id = $1)"
            )
        # Numbered in key order: nextval runs as the ordered rows come out of the subquery.
        sequence = f"pg_get_serial_sequence('{model._meta.db_table}', 'id')"
        numberings.append(
            f"m{i} AS MATERIALIZED (SELECT old, nextval({sequence}) AS new, "  # noqa: S608
            f"row_number() OVER () AS position FROM ({owned} ORDER BY id) AS o(old))"
        )
        columns, values = [], []
        for f in model._meta.concrete_fields:
            columns.append(qn(f.column))
            if f.primary_key:
                values.append(f"m{i}.new")
            elif isinstance(f, models.ForeignKey) and f.related_model is World:
                values.append("$2")
            elif isinstance(f, models.ForeignKey):
                target = index[f.related_model]
                values.append(f"(SELECT new FROM m{target} WHERE old = s.{qn(f.column)})")  # noqa: S608
            elif model is User and f.name == "api_token":
                values.append(f"($3::text[])[m{i}.position]")
            else:
                values.append(f"s.{qn(f.column)}")
        inserts.append(
            f"i{i} AS (INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
            f"SELECT {', '.join(values)} FROM {table} AS s JOIN m{i} ON m{i}.old = s.id)"
        )
    result = " UNION ALL ".join(f"SELECT {index[m]}, old, new FROM m{index[m]}" for m in CONFIG_MODELS)  # noqa: S608
    return "WITH " + ",\n".join(numberings + inserts) + "\n" + result


def _reserve_pks(counts):
    """{model: [new primary keys]} for ``counts`` rows per model, in one query."""
    if not counts:
        return {}
    tables = [(model, model._meta.db_table, n) for model, n in counts.items()]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Table names come from the models and counts are ints: nothing here is user input.
            sql = " UNION ALL ".join(
                f"(SELECT {i}, nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, {n}))"  # noqa: S608
                for i, (_, table, n) in enumerate(tables)
            )
            cursor.execute(sql)
            out = {}
            for i, pk in cursor.fetchall():
                out.setdefault(tables[i][0], []).append(pk)
            return {model: sorted(pks) for model, pks in out.items()}
        # SQLite: transactions are IMMEDIATE (settings), so nobody else inserts until we commit.
        maxima = ", ".join(f"(SELECT COALESCE(MAX(id), 0) FROM {table})" for _, table, _ in tables)  # noqa: S608
        cursor.execute(f"SELECT {maxima}")
        maxima = cursor.fetchone()
        return {
            model: list(range(top + 1, top + 1 + n))
            for (model, _, n), top in zip(tables, maxima, strict=True)
        }


def delete_worlds(worlds):
    """Delete worlds and everything in them, table by table (no per-row cascade, which is slow
    and trips over the PROTECT foreign keys between a world's own rows)."""
    ids = list(worlds.values_list("pk", flat=True))
    if not ids:
        return 0
    with transaction.atomic():
        World.objects.filter(forked_from_id__in=ids).update(forked_from=None)
        for model in reversed([*copied_models(), Change, ApiCall]):
            if _has_world(model):
                qs = model.objects.filter(world_id__in=ids)
            else:
                owner = next(f for f in model._meta.concrete_fields if f.is_relation)
                qs = model.objects.filter(
                    **{f"{owner.attname}__in": owner.related_model.objects.filter(world_id__in=ids)}
                )
            qs._raw_delete(qs.db)
        World.objects.filter(pk__in=ids)._raw_delete(World.objects.db)
    return len(ids)

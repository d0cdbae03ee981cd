"""``fork_world``: a new world that is a copy of a template, in a fixed number of queries.

How it stays cheap: a template never changes, so its rows are read once per process and kept;
a fork then reserves primary keys for every table in one query, rewrites the foreign keys in
memory and inserts each table with one bulk INSERT (a few for the largest tables on SQLite).
Foreign keys are checked at commit (Django creates them deferrable), so the order of the inserts
and the cycles (space <-> homepage, parent issues and pages) do not matter.
"""

import secrets
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
    with transaction.atomic():
        world = World.objects.create(
            slug=slug or f"{template.seed}-{secrets.token_hex(5)}",
            seed=template.seed,
            forked_from=template,
            clock_start=template.clock_start,
            clock_step_ms=template.clock_step_ms,
            ticks=template.ticks,
            next_ext_id=template.next_ext_id,
        )
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

"""A world's configuration, loaded once per process and kept in memory.

Users, statuses, workflows, issue types, priorities, resolutions, link types, projects (but not
their issue counters), components and versions cannot be changed through the API, so a world's
set of them is fixed from its fork on. Handlers look them up here instead of joining them into
every query, which keeps the SQL of a call small and fixed.

A fork hands its new rows over (``remember``), so the first call in a fresh world reads nothing;
a world first seen by another process (the HTTP server) is read once, one query a table.
"""

from collections import OrderedDict

from simulator.models import (
    Component,
    IssueLinkType,
    IssueType,
    Priority,
    Project,
    Resolution,
    Status,
    Transition,
    User,
    Version,
    Workflow,
)

_CACHE = OrderedDict()
_CACHE_SIZE = 256
# The tables a configuration is made of.
CONFIG_MODELS = (User, Status, IssueType, Priority, Resolution, IssueLinkType, Project, Workflow, Transition)
CONFIG_MODELS += (Component, Version)


def _rows_of(world):
    """{model: rows} of the world's configuration, read from the database (one query a table)."""
    return {model: list(model.objects.filter(world_id=world.pk)) for model in CONFIG_MODELS}


class WorldConfig:
    """Built from ``{model: [rows]}``, in any order: everything is sorted here, in Python, so a
    configuration read from the database and one handed over by a fork are the same."""

    def __init__(self, rows):
        self.users = sorted(rows[User], key=lambda u: (u.display_name, u.pk))
        self.statuses = sorted(rows[Status], key=lambda s: s.ext_id)
        self.issue_types = sorted(rows[IssueType], key=lambda t: t.ext_id)
        self.priorities = sorted(rows[Priority], key=lambda p: (p.rank, p.pk))
        self.resolutions = sorted(rows[Resolution], key=lambda r: r.ext_id)
        self.link_types = sorted(rows[IssueLinkType], key=lambda t: t.ext_id)
        self.projects = sorted(rows[Project], key=lambda p: p.key)
        self.workflows = {w.pk: w for w in rows[Workflow]}
        transitions = sorted(rows[Transition], key=lambda t: (t.workflow_id, t.transition_id))
        components = sorted(rows[Component], key=lambda c: (c.name, c.pk))
        # Undated versions last (the databases disagree on where NULL sorts).
        versions = sorted(rows[Version], key=lambda v: (v.release_date is None, v.release_date or 0, v.name))

        # Every table's rows in primary-key order (what the JQL compiler reads names from).
        self.rows = {model: sorted(rows[model], key=lambda row: row.pk) for model in CONFIG_MODELS}
        self.user_by_pk = {u.pk: u for u in self.users}
        self.user_by_account = {u.account_id: u for u in self.users}
        self.status_by_pk = {s.pk: s for s in self.statuses}
        self.issue_type_by_pk = {t.pk: t for t in self.issue_types}
        self.priority_by_pk = {p.pk: p for p in self.priorities}
        self.resolution_by_pk = {r.pk: r for r in self.resolutions}
        self.link_type_by_pk = {t.pk: t for t in self.link_types}
        self.project_by_pk = {p.pk: p for p in self.projects}
        self.component_by_pk = {c.pk: c for c in components}
        self.version_by_pk = {v.pk: v for v in versions}
        self.components_of = {}
        for c in components:
            self.components_of.setdefault(c.project_id, []).append(c)
        self.versions_of = {}
        for v in versions:
            self.versions_of.setdefault(v.project_id, []).append(v)
        self.transitions_of = {}
        for t in transitions:
            self.transitions_of.setdefault(t.workflow_id, []).append(t)
        for p in self.projects:
            p.workflow = self.workflows[p.workflow_id]
            p.lead = self.user_by_pk.get(p.lead_id)
        # Compiled JQL that depends on this configuration alone (simulator.jql.compiler).
        self.compiled_jql = {}

    # Lookups by what the API names things with: an id (numeric string) or a name.

    def _find(self, rows, value, *, key_attr="name"):
        text = str(value).strip()
        if text.isdecimal():
            for row in rows:
                if str(row.ext_id) == text:
                    return row
        lower = text.lower()
        for row in rows:
            if str(getattr(row, key_attr)).lower() == lower:
                return row
        return None

    def project(self, id_or_key):
        text = str(id_or_key).strip()
        if text.isdecimal():
            return next((p for p in self.projects if str(p.ext_id) == text), None)
        return next((p for p in self.projects if p.key == text.upper()), None)

    def issue_type(self, value):
        return self._find(self.issue_types, value)

    def priority(self, value):
        return self._find(self.priorities, value)

    def resolution(self, value):
        return self._find(self.resolutions, value)

    def status(self, value):
        return self._find(self.statuses, value)

    def link_type(self, value):
        return self._find(self.link_types, value)

    def component(self, project, value):
        return self._find(self.components_of.get(project.pk, []), value)

    def version(self, project, value):
        return self._find(self.versions_of.get(project.pk, []), value)

    def user(self, account_id):
        return self.user_by_account.get(str(account_id)) if account_id is not None else None

    def default_priority(self):
        return next(
            (p for p in self.priorities if p.is_default), self.priorities[0] if self.priorities else None
        )

    def workflow_statuses(self, workflow):
        """The statuses a workflow uses, in id order."""
        ids = {workflow.initial_status_id}
        ext_ids = set()
        for t in self.transitions_of.get(workflow.pk, []):
            ids.add(t.to_status_id)
            ext_ids.update(int(x) for x in t.from_status_ids)
        return [s for s in self.statuses if s.pk in ids or s.ext_id in ext_ids]

    def transitions_from(self, workflow, status):
        """The transitions offered from ``status`` (global ones included)."""
        return [
            t
            for t in self.transitions_of.get(workflow.pk, [])
            if not t.from_status_ids or status.ext_id in [int(x) for x in t.from_status_ids]
        ]


def config_for(world):
    """The world's configuration, from this process's cache when it has it."""
    key = _key(world)
    config = _CACHE.get(key)
    if config is None:
        config = remember(world, WorldConfig(_rows_of(world)))
    else:
        _CACHE.move_to_end(key)
    return config


def cached_config(world):
    """The world's configuration if this process has it already, else None (reads nothing)."""
    return _CACHE.get(_key(world))


def remember(world, config):
    """Cache ``config`` as ``world``'s (a fork hands over the rows it has just written)."""
    _CACHE[_key(world)] = config
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return config


def _key(world):
    # created_at tells a world apart from an older one that had the same primary key.
    return (world.pk, world.created_at)

"""Seeds: data files (simulator/seeds/<name>.yaml) loaded into template worlds.

``load_seed(name)`` is idempotent: the template's slug carries a hash of the file, so loading an
unchanged seed returns the existing template and an edited file builds a new one (older templates
of that seed are removed). Episodes never use a template directly; they fork it.
"""

import datetime as dt
import hashlib
import re
from pathlib import Path

import yaml
from django.db import IntegrityError, transaction

from simulator import models as m
from simulator.adf import text_to_adf
from simulator.forking import delete_worlds

SEEDS_DIR = Path(__file__).resolve().parent / "seeds"
_OFFSET = re.compile(r"^([+-]?)(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")


class SeedError(ValueError):
    pass


def seed_path(name):
    path = SEEDS_DIR / f"{name}.yaml"
    if not re.fullmatch(r"[a-z0-9_-]+", name) or not path.exists():
        raise SeedError(f"no seed named {name!r} in {SEEDS_DIR}")
    return path


def template_slug(name):
    digest = hashlib.sha256(seed_path(name).read_bytes()).hexdigest()[:12]
    return f"seed-{name}-{digest}"


def load_seed(name):
    """The template world of seed ``name``, built from its file if it is not loaded yet."""
    slug = template_slug(name)
    existing = m.World.objects.filter(slug=slug, is_template=True).first()
    if existing:
        return existing
    data = yaml.safe_load(seed_path(name).read_text())
    try:
        with transaction.atomic():
            world = SeedBuilder(slug, name, data).build()
            delete_worlds(m.World.objects.filter(seed=name, is_template=True).exclude(pk=world.pk))
    except IntegrityError:
        # Another process loaded the same file at the same time.
        return m.World.objects.get(slug=slug, is_template=True)
    return world


class SeedBuilder:
    """Turns one seed's data into rows; ext_ids come from the world's counter in file order."""

    def __init__(self, slug, name, data):
        self.slug, self.name, self.data = slug, name, data
        self.start = dt.datetime.fromisoformat(data["clock_start"].replace("Z", "+00:00"))

    def build(self):
        d = self.data
        self.world = m.World.objects.create(
            slug=self.slug,
            seed=self.name,
            is_template=True,
            clock_start=self.start,
            clock_step_ms=d.get("clock_step_ms", 1000),
        )
        self.next_id = self.world.next_ext_id
        self._users(d["users"])
        self._config(d)
        self._projects(d["projects"])
        self._agile(d.get("boards", []), d.get("sprints", []))
        self._issues(d["issues"])
        self._issue_extras(d)
        self._confluence(d.get("spaces", []))
        self.world.next_ext_id = self.next_id
        self.world.save(update_fields=["next_ext_id"])
        return self.world

    # helpers

    def ext(self):
        self.next_id += 1
        return self.next_id - 1

    def at(self, offset):
        """A time from an offset relative to the clock start ("-3d", "2d4h", "-90m")."""
        match = _OFFSET.match(str(offset).strip())
        if not match:
            raise SeedError(f"bad time offset {offset!r}")
        sign, days, hours, minutes = match.groups()
        delta = dt.timedelta(days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0))
        return self.start - delta if sign == "-" else self.start + delta

    def own(self, model, **fields):
        return model(world=self.world, **fields)

    # sections

    def _users(self, users):
        rows = [
            self.own(
                m.User,
                account_id=u["account_id"],
                display_name=u["name"],
                email=u["email"],
                active=u.get("active", True),
                groups=u.get("groups", []),
            )
            for u in users
        ]
        m.User.objects.bulk_create(rows)
        self.users = {u["handle"]: row for u, row in zip(users, rows, strict=True)}  # pks set by bulk_create

    def _config(self, d):
        self.statuses = {}
        for s in d["statuses"]:
            self.statuses[s["name"]] = m.Status.objects.create(
                world=self.world, ext_id=self.ext(), name=s["name"], category=s["category"]
            )
        self.workflows = {}
        for name, w in d["workflows"].items():
            workflow = m.Workflow.objects.create(
                world=self.world, name=name, initial_status=self.statuses[w["initial"]]
            )
            m.Transition.objects.bulk_create(
                self.own(
                    m.Transition,
                    workflow=workflow,
                    transition_id=t["id"],
                    name=t["name"],
                    to_status=self.statuses[t["to"]],
                    from_status_ids=[self.statuses[s].ext_id for s in t.get("from", [])],
                    required_fields=t.get("requires", []),
                )
                for t in w["transitions"]
            )
            self.workflows[name] = workflow
        self.issue_types = {
            t["name"]: m.IssueType.objects.create(
                world=self.world,
                ext_id=self.ext(),
                name=t["name"],
                description=t.get("description", ""),
                subtask=t.get("subtask", False),
                hierarchy_level=t.get("level", 0),
            )
            for t in d["issue_types"]
        }
        self.priorities = {
            p["name"]: m.Priority.objects.create(
                world=self.world,
                ext_id=p["id"],
                name=p["name"],
                description=p.get("description", ""),
                status_color=p.get("color", "#f79232"),
                rank=rank,
                is_default=p.get("default", False),
            )
            for rank, p in enumerate(d["priorities"], start=1)
        }
        self.resolutions = {
            r["name"]: m.Resolution.objects.create(
                world=self.world, ext_id=self.ext(), name=r["name"], description=r.get("description", "")
            )
            for r in d["resolutions"]
        }
        self.link_types = {
            t["name"]: m.IssueLinkType.objects.create(
                world=self.world, ext_id=self.ext(), name=t["name"], inward=t["inward"], outward=t["outward"]
            )
            for t in d["link_types"]
        }

    def _projects(self, projects):
        self.projects, self.components, self.versions = {}, {}, {}
        for p in projects:
            project = m.Project.objects.create(
                world=self.world,
                ext_id=self.ext(),
                key=p["key"],
                name=p["name"],
                description=p.get("description", ""),
                lead=self.users[p["lead"]],
                workflow=self.workflows[p["workflow"]],
            )
            self.projects[p["key"]] = project
            for c in p.get("components", []):
                self.components[(p["key"], c)] = m.Component.objects.create(
                    world=self.world, ext_id=self.ext(), project=project, name=c
                )
            for v in p.get("versions", []):
                self.versions[(p["key"], v["name"])] = m.Version.objects.create(
                    world=self.world,
                    ext_id=self.ext(),
                    project=project,
                    name=v["name"],
                    released=v.get("released", False),
                    release_date=v.get("release_date"),
                )

    def _agile(self, boards, sprints):
        self.boards, self.sprints = {}, {}
        order = {"new": 0, "indeterminate": 1, "done": 2}
        for b in boards:
            project = self.projects[b["project"]]
            statuses = sorted(
                {self.statuses[n] for n in self._workflow_status_names(project.workflow)},
                key=lambda s: (order[s.category], s.ext_id),
            )
            self.boards[b["id"]] = m.Board.objects.create(
                world=self.world,
                ext_id=b["id"],
                name=b["name"],
                type=b["type"],
                project=project,
                columns=[{"name": s.name, "status_ids": [s.ext_id]} for s in statuses],
            )
        for s in sprints:
            self.sprints[s["id"]] = m.Sprint.objects.create(
                world=self.world,
                ext_id=s["id"],
                board=self.boards[s["board"]],
                name=s["name"],
                state=s["state"],
                goal=s.get("goal", ""),
                start_date=self.at(s["start"]) if "start" in s else None,
                end_date=self.at(s["end"]) if "end" in s else None,
                complete_date=self.at(s["complete"]) if "complete" in s else None,
                created_date=self.at(s["created"]),
            )

    def _workflow_status_names(self, workflow):
        spec = self.data["workflows"][workflow.name]
        names = {spec["initial"]}
        for t in spec["transitions"]:
            names.add(t["to"])
            names.update(t.get("from", []))
        return names

    def _issues(self, issues):
        self.issues = {}
        for i in issues:
            project_key, number = i["key"].rsplit("-", 1)
            project = self.projects[project_key]
            if int(number) != project.next_issue_number:
                raise SeedError(f"{i['key']}: expected {project_key}-{project.next_issue_number}")
            project.next_issue_number += 1
            created = self.at(i["created"])
            updated = self.at(i["updated"]) if "updated" in i else created
            resolution = self.resolutions[i["resolution"]] if i.get("resolution") else None
            issue = m.Issue.objects.create(
                world=self.world,
                ext_id=self.ext(),
                project=project,
                number=int(number),
                key=i["key"],
                summary=i["summary"],
                description=text_to_adf(i.get("description")),
                issue_type=self.issue_types[i["type"]],
                status=self.statuses[i["status"]],
                priority=self.priorities[i.get("priority", "Medium")],
                assignee=self.users.get(i.get("assignee")),
                reporter=self.users[i["reporter"]],
                creator=self.users[i["reporter"]],
                resolution=resolution,
                resolution_date=updated if resolution else None,
                parent=self.issues[i["parent"]] if i.get("parent") else None,
                due_date=i.get("due"),
                story_points=i.get("points"),
                created=created,
                updated=updated,
                status_category_changed=updated,
            )
            self.issues[i["key"]] = issue
            m.IssueLabel.objects.bulk_create(
                self.own(m.IssueLabel, issue=issue, name=label, position=n)
                for n, label in enumerate(i.get("labels", []))
            )
            issue.components.set([self.components[(project_key, c)] for c in i.get("components", [])])
            issue.fix_versions.set([self.versions[(project_key, v)] for v in i.get("fix", [])])
            issue.sprints.set([self.sprints[s] for s in i.get("sprints", [])])
        for project in self.projects.values():
            project.save(update_fields=["next_issue_number"])

    def _issue_extras(self, d):
        for c in d.get("comments", []):
            at = self.at(c["at"])
            author = self.users[c["author"]]
            m.Comment.objects.create(
                world=self.world,
                ext_id=self.ext(),
                issue=self.issues[c["issue"]],
                author=author,
                update_author=author,
                body=text_to_adf(c["body"]),
                created=at,
                updated=at,
            )
        for link in d.get("links", []):
            m.IssueLink.objects.create(
                world=self.world,
                ext_id=self.ext(),
                type=self.link_types[link["type"]],
                inward_issue=self.issues[link["from"]],
                outward_issue=self.issues[link["to"]],
            )
        for key, handles in d.get("watchers", {}).items():
            m.Watcher.objects.bulk_create(
                self.own(m.Watcher, issue=self.issues[key], user=self.users[h]) for h in handles
            )

    def _confluence(self, spaces):
        for s in spaces:
            author = self.users[s["author"]]
            created = self.at(s["created"])
            space = m.Space.objects.create(
                world=self.world,
                ext_id=self.ext(),
                key=s["key"],
                name=s["name"],
                description=s.get("description", ""),
                author=author,
                created=created,
            )
            self._page_counter = 0
            space.homepage = self._page(space, None, s["home"], author, created, 0)
            space.save(update_fields=["homepage"])

    def _page(self, space, parent, spec, author, space_created, position):
        self._page_counter += 1
        created = space_created + dt.timedelta(hours=self._page_counter)
        page = m.Page.objects.create(
            world=self.world,
            ext_id=self.ext(),
            space=space,
            parent=parent,
            title=spec["title"],
            body=spec.get("body", ""),
            position=position,
            author=author,
            owner=author,
            created=created,
            version=1,
            version_author=author,
            version_created=created,
        )
        m.PageLabel.objects.bulk_create(
            self.own(m.PageLabel, ext_id=self.ext(), page=page, name=label)
            for label in spec.get("labels", [])
        )
        for n, child in enumerate(spec.get("children", [])):
            self._page(space, page, child, author, space_created, n)
        return page

"""Small worlds built with the ORM directly, for the verifier and selector tests.

``build_world()`` makes one world: three users, a To Do → In Progress → Done workflow, project
OPS with issues OPS-1..OPS-3, a board and sprint, link types, space ENG with a home page and a
child page. ``Trace(world)`` then appends ApiCall and Change rows as the simulator's dispatcher
would for the calls an agent made.
"""

import datetime as dt
import itertools

from simulator.adf import text_to_adf
from simulator.models import (
    ApiCall,
    Board,
    Change,
    Comment,
    Component,
    Issue,
    IssueLabel,
    IssueLink,
    IssueLinkType,
    IssueType,
    Page,
    PageLabel,
    Priority,
    Project,
    Resolution,
    Space,
    Sprint,
    Status,
    Transition,
    User,
    Version,
    Workflow,
    World,
)

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
_slugs = itertools.count(1)


class W:
    """What build_world made, by name."""


def build_world(seed="acme", template=False):
    w = W()
    world = World.objects.create(
        slug=f"test-world-{next(_slugs)}", seed=seed, is_template=template, clock_start=T0
    )
    w.world = world
    ids = itertools.count(10000)

    def own(model, **kw):
        return model.objects.create(world=world, **kw)

    w.ada = own(User, account_id="acc-ada", display_name="Ada Lovelace", email="ada@acme.test")
    w.bob = own(User, account_id="acc-bob", display_name="Bob Builder", email="bob@acme.test")
    w.cy = own(User, account_id="acc-cy", display_name="Cy Young", email="cy@acme.test", active=False)

    w.todo = own(Status, ext_id=next(ids), name="To Do", category="new")
    w.doing = own(Status, ext_id=next(ids), name="In Progress", category="indeterminate")
    w.done = own(Status, ext_id=next(ids), name="Done", category="done")
    w.workflow = own(Workflow, name="Software", initial_status=w.todo)
    own(Transition, workflow=w.workflow, transition_id=11, name="Start", to_status=w.doing)
    own(
        Transition,
        workflow=w.workflow,
        transition_id=31,
        name="Done",
        to_status=w.done,
        required_fields=["resolution"],
    )

    w.task = own(IssueType, ext_id=next(ids), name="Task")
    w.bug = own(IssueType, ext_id=next(ids), name="Bug")
    w.epic = own(IssueType, ext_id=next(ids), name="Epic", hierarchy_level=1)
    w.subtask = own(IssueType, ext_id=next(ids), name="Sub-task", subtask=True, hierarchy_level=-1)
    w.high = own(Priority, ext_id=next(ids), name="High", rank=2)
    w.medium = own(Priority, ext_id=next(ids), name="Medium", rank=3, is_default=True)
    w.fixed = own(Resolution, ext_id=next(ids), name="Fixed")
    w.duplicate = own(Resolution, ext_id=next(ids), name="Duplicate")
    w.blocks = own(IssueLinkType, ext_id=next(ids), name="Blocks", inward="is blocked by", outward="blocks")
    w.relates = own(
        IssueLinkType, ext_id=next(ids), name="Relates", inward="relates to", outward="relates to"
    )

    w.ops = own(Project, ext_id=next(ids), key="OPS", name="Operations", lead=w.ada, workflow=w.workflow)
    w.web = own(Project, ext_id=next(ids), key="WEB", name="Website", lead=w.bob, workflow=w.workflow)
    w.api = own(Component, ext_id=next(ids), project=w.ops, name="API")
    w.db = own(Component, ext_id=next(ids), project=w.ops, name="Database")
    w.v1 = own(Version, ext_id=next(ids), project=w.ops, name="1.0")
    w.board = own(Board, ext_id=1, name="OPS board", type="scrum", project=w.ops)
    w.sprint1 = own(Sprint, ext_id=1, board=w.board, name="OPS Sprint 1", state="active", created_date=T0)
    w.sprint2 = own(Sprint, ext_id=2, board=w.board, name="OPS Sprint 2", created_date=T0)

    def issue(project, summary, **kw):
        project.refresh_from_db()
        number = project.next_issue_number
        Project.objects.filter(pk=project.pk).update(next_issue_number=number + 1)
        kw.setdefault("issue_type", w.task)
        kw.setdefault("status", w.todo)
        kw.setdefault("priority", w.medium)
        kw.setdefault("reporter", w.ada)
        labels = kw.pop("labels", [])
        description = kw.pop("description", None)
        row = own(
            Issue,
            ext_id=next(ids),
            project=project,
            number=number,
            key=f"{project.key}-{number}",
            summary=summary,
            description=text_to_adf(description),
            created=T0,
            updated=T0,
            status_category_changed=T0,
            **kw,
        )
        for position, name in enumerate(labels):
            own(IssueLabel, issue=row, name=name, position=position)
        return row

    w.make_issue = issue
    w.ops1 = issue(
        w.ops,
        "Login fails on Safari",
        issue_type=w.bug,
        priority=w.high,
        assignee=w.ada,
        labels=["frontend", "urgent"],
        description="Users see a blank page.\nOnly Safari 17.",
    )
    w.ops1.components.add(w.api)
    w.ops1.fix_versions.add(w.v1)
    w.ops1.sprints.add(w.sprint1)
    w.ops2 = issue(
        w.ops, "Rotate database keys", assignee=w.bob, story_points=3.0, due_date=dt.date(2026, 2, 1)
    )
    w.ops3 = issue(w.ops, "Epic: reliability", issue_type=w.epic)
    w.web1 = issue(w.web, "Update pricing page")
    w.comment = own(
        Comment,
        ext_id=next(ids),
        issue=w.ops1,
        author=w.bob,
        created=T0,
        updated=T0,
        body={
            "type": "doc",
            "version": 1,
            "content": [
                {
                    "type": "paragraph",
                    "content": [
                        {"type": "text", "text": "Reproduced, "},
                        {"type": "mention", "attrs": {"id": "acc-ada", "text": "@Ada Lovelace"}},
                        {"type": "text", "text": " please look."},
                    ],
                }
            ],
        },
    )
    w.link = own(IssueLink, ext_id=next(ids), type=w.blocks, inward_issue=w.ops1, outward_issue=w.ops2)

    w.eng = own(Space, ext_id=next(ids), key="ENG", name="Engineering", author=w.ada, created=T0)
    w.home = own(
        Page,
        ext_id=next(ids),
        space=w.eng,
        title="Engineering Home",
        body="<p>Welcome</p>",
        author=w.ada,
        created=T0,
        version_created=T0,
    )
    w.eng.homepage = w.home
    w.eng.save()
    w.runbook = own(
        Page,
        ext_id=next(ids),
        space=w.eng,
        parent=w.home,
        title="On-call runbook",
        body="<h1>Runbook</h1><p>Page the &amp; on-call engineer.</p>",
        version=3,
        author=w.ada,
        created=T0,
        version_created=T0,
    )
    own(PageLabel, ext_id=next(ids), page=w.runbook, name="ops")
    own(PageLabel, ext_id=next(ids), page=w.runbook, name="runbook")
    w.next_id = ids
    return w


class Trace:
    """Appends calls (and the changes they made) to a world's trace, seq 1, 2, ..."""

    def __init__(self, world, user=None):
        self.world = world
        self.user = user
        self.seq = ApiCall.objects.filter(world=world).count()

    def call(self, method, path, body=None, status=200, response=None, query=None, changes=()):
        self.seq += 1
        row = ApiCall.objects.create(
            world=self.world,
            seq=self.seq,
            door="client",
            user=self.user,
            method=method,
            path=path,
            query=query or {},
            body=body,
            status=status,
            response=response,
            at=T0,
        )
        for action, object_type, ref, field, before, after in changes:
            Change.objects.create(
                world=self.world,
                call=row,
                action=action,
                object_type=object_type,
                object_ref=ref,
                field=field,
                before=before,
                after=after,
            )
        return row

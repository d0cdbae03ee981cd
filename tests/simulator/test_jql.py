"""JQL: parsing, every field and operator, functions against the world's clock, errors, ordering,
isolation between worlds and the number of queries a search costs."""

import datetime as dt
from types import SimpleNamespace

import pytest

from simulator.jql import JqlError, JqlSyntaxError, JqlUnboundedError, JqlValueError, compile_jql
from simulator.models import (
    Board,
    Comment,
    Component,
    Issue,
    IssueLabel,
    IssueLink,
    IssueLinkType,
    IssueType,
    Priority,
    Project,
    Resolution,
    Sprint,
    Status,
    User,
    Version,
    Watcher,
    Workflow,
    World,
)

NOW = dt.datetime(2026, 1, 14, 10, 0, tzinfo=dt.UTC)  # a Wednesday
DAY, HOUR = dt.timedelta(days=1), dt.timedelta(hours=1)


def adf(text):
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


def build_world(slug="jql"):
    """A small world: 3 users, 3 statuses, 2 projects, 7 issues (OPS-1..5, WEB-1..2) in ext_id order."""
    w = World.objects.create(slug=slug, seed="none", clock_start=NOW)
    ids = iter(range(10000, 20000))

    def make(model, **fields):
        return model.objects.create(world=w, **fields)

    alice = make(
        User, account_id="acc-alice", display_name="Alice Adams", email="alice@acme.test", groups=["dev"]
    )
    bob = make(
        User, account_id="acc-bob", display_name="Bob Brown", email="bob@acme.test", groups=["dev", "ops"]
    )
    carol = make(User, account_id="acc-carol", display_name="Carol Clark", email="carol@acme.test")
    todo = make(Status, ext_id=next(ids), name="To Do", category="new")
    doing = make(Status, ext_id=next(ids), name="In Progress", category="indeterminate")
    done = make(Status, ext_id=next(ids), name="Done", category="done")
    workflow = make(Workflow, name="Simple", initial_status=todo)
    ops = make(Project, ext_id=next(ids), key="OPS", name="Operations", workflow=workflow)
    web = make(Project, ext_id=next(ids), key="WEB", name="Website", workflow=workflow)
    types = {
        n: make(IssueType, ext_id=next(ids), name=n) for n in ["Bug", "Task", "Story", "Epic", "Sub-task"]
    }
    prio = {
        n: make(Priority, ext_id=next(ids), name=n, rank=r)
        for r, n in enumerate(["Highest", "High", "Medium", "Low", "Lowest"], 1)
    }
    fixed = make(Resolution, ext_id=next(ids), name="Done")
    wont = make(Resolution, ext_id=next(ids), name="Won't Do")
    board = make(Board, ext_id=1, name="OPS board", type="scrum", project=ops)
    s1, s2, s3 = (
        make(Sprint, ext_id=n, board=board, name=f"OPS Sprint {n}", state=state, created_date=NOW - 30 * DAY)
        for n, state in [(1, "closed"), (2, "active"), (3, "future")]
    )
    backend = make(Component, ext_id=next(ids), project=ops, name="Backend")
    frontend = make(Component, ext_id=next(ids), project=web, name="Frontend")
    v1 = make(Version, ext_id=next(ids), project=ops, name="1.0", released=True)
    v2 = make(Version, ext_id=next(ids), project=ops, name="2.0")

    def issue(project, number, summary, issue_type, status, created, *, labels=(), sprints=(), **fields):
        fields.setdefault("updated", created)
        made = make(
            Issue,
            ext_id=next(ids),
            project=project,
            number=number,
            key=f"{project.key}-{number}",
            summary=summary,
            issue_type=types[issue_type],
            status=status,
            created=created,
            status_category_changed=created,
            **fields,
        )
        for position, label in enumerate(labels):
            make(IssueLabel, issue=made, name=label, position=position)
        made.sprints.set(sprints)
        return made

    ops4 = issue(
        ops,
        4,
        "Payments epic",
        "Epic",
        todo,
        NOW - 2 * HOUR,
        updated=NOW - HOUR,
        labels=["urgent"],
        priority=prio["Highest"],
        assignee=carol,
        reporter=carol,
        creator=carol,
        sprints=[s3],
    )
    ops1 = issue(
        ops,
        1,
        "Login fails after password reset",
        "Bug",
        todo,
        NOW - 10 * DAY,
        updated=NOW - DAY,
        description=adf("Users cannot log in when the session token expired."),
        parent=ops4,
        priority=prio["High"],
        assignee=alice,
        reporter=bob,
        creator=bob,
        labels=["backend", "urgent"],
        due_date=dt.date(2026, 1, 14),
        story_points=3,
        sprints=[s2],
    )
    ops1.components.set([backend])
    ops1.fix_versions.set([v2])
    ops2 = issue(
        ops,
        2,
        "Upgrade database driver",
        "Task",
        doing,
        NOW - 5 * DAY,
        updated=NOW - 2 * HOUR,
        priority=prio["Medium"],
        assignee=bob,
        reporter=alice,
        creator=alice,
        labels=["backend"],
        due_date=dt.date(2026, 1, 20),
        story_points=5,
        sprints=[s1, s2],
    )
    ops2.fix_versions.set([v1])
    ops3 = issue(
        ops,
        3,
        "Dashboard shows stale numbers",
        "Story",
        done,
        NOW - 30 * DAY,
        updated=NOW - DAY,
        description=adf('The "type" of caching is wrong\nsince the upgrade'),
        priority=prio["Low"],
        reporter=alice,
        creator=alice,
        resolution=fixed,
        resolution_date=NOW - DAY,
        story_points=8,
        sprints=[s1],
    )
    ops3.components.set([backend])
    ops3.fix_versions.set([v1])
    ops5 = issue(
        ops,
        5,
        "Timeout in payment gateway",
        "Sub-task",
        doing,
        NOW - 3 * DAY,
        parent=ops2,
        assignee=alice,
        reporter=bob,
        creator=bob,
        story_points=1.5,
    )
    web1 = issue(
        web,
        1,
        "Logo renders blurry",
        "Bug",
        done,
        NOW - 40 * DAY,
        updated=NOW - 25 * DAY,
        priority=prio["Medium"],
        assignee=bob,
        reporter=carol,
        creator=carol,
        labels=["frontend"],
        resolution=wont,
        resolution_date=NOW - 25 * DAY,
    )
    web1.components.set([frontend])
    issue(
        web,
        2,
        "Write the release notes",
        "Task",
        todo,
        NOW,
        description={"type": "doc", "version": 1, "content": []},
        priority=prio["Lowest"],
        reporter=bob,
        creator=bob,
        due_date=dt.date(2026, 1, 13),
        story_points=2,
    )
    Comment.objects.create(
        world=w,
        ext_id=next(ids),
        issue=ops2,
        author=alice,
        created=NOW,
        updated=NOW,
        body=adf("Blocked on the login service timeouts"),
    )
    Watcher.objects.create(world=w, issue=ops3, user=carol)
    Watcher.objects.create(world=w, issue=web1, user=alice)
    blocks = make(IssueLinkType, ext_id=next(ids), name="Blocks", inward="is blocked by", outward="blocks")
    relates = make(IssueLinkType, ext_id=next(ids), name="Relates", inward="relates to", outward="relates to")
    make(
        IssueLink, ext_id=next(ids), type=blocks, inward_issue=ops2, outward_issue=ops1
    )  # OPS-2 blocks OPS-1
    make(IssueLink, ext_id=next(ids), type=relates, inward_issue=ops1, outward_issue=web1)
    # Issues were made out of order (the epic first): renumber ext_ids to follow the keys.
    for n, made in enumerate([ops1, ops2, ops3, ops4, ops5, web1], 1):
        Issue.objects.filter(pk=made.pk).update(ext_id=30000 + n)
    Issue.objects.filter(world=w, key="WEB-2").update(ext_id=30007)
    return SimpleNamespace(world=w, alice=alice, bob=bob, carol=carol, s1=s1, ops1=ops1)


@pytest.fixture
def w(db):
    return build_world()


def keys(w, jql, user="alice"):
    query = compile_jql(w.world, jql, user=getattr(w, user) if user else None)
    return list(query.apply(Issue.objects.all()).values_list("key", flat=True))


NO_COLOUR = "Field 'colour' does not exist or you do not have permission to view it."
ALL = ["OPS-1", "OPS-2", "OPS-3", "OPS-4", "OPS-5", "WEB-1", "WEB-2"]


# Each clause and the issues it finds (also run prepared, in test_jql_prepared.py).
CLAUSES = [
    # project, key, type, status
    ("project = OPS", ["OPS-1", "OPS-2", "OPS-3", "OPS-4", "OPS-5"]),
    ("project = web", ["WEB-1", "WEB-2"]),
    ("project = 'Website'", ["WEB-1", "WEB-2"]),
    ("project != OPS", ["WEB-1", "WEB-2"]),
    ("project in (OPS, WEB)", ALL),
    ("key = OPS-2", ["OPS-2"]),
    ("issuekey in (ops-1, WEB-2)", ["OPS-1", "WEB-2"]),
    ("id = 30003", ["OPS-3"]),
    ("key != OPS-1 AND project = OPS", ["OPS-2", "OPS-3", "OPS-4", "OPS-5"]),
    ("key > OPS-3", ["OPS-4", "OPS-5"]),
    ("key <= OPS-2", ["OPS-1", "OPS-2"]),
    ("issue in linkedIssues(OPS-1)", ["OPS-2", "WEB-1"]),
    ("issue in linkedIssues(OPS-1, 'is blocked by')", ["OPS-2"]),
    ("issue in linkedIssues(OPS-2, blocks)", ["OPS-1"]),
    ("issue in linkedIssues(OPS-1, blocks)", []),
    ("key in watchedIssues()", ["WEB-1"]),
    ("key not in watchedIssues() AND project = WEB", ["WEB-2"]),
    ("issuetype = Bug", ["OPS-1", "WEB-1"]),
    ("type in (Task, 'Sub-task')", ["OPS-2", "OPS-5", "WEB-2"]),
    ('status = "In Progress"', ["OPS-2", "OPS-5"]),
    ("status != Done", ["OPS-1", "OPS-2", "OPS-4", "OPS-5", "WEB-2"]),
    ("status not in ('To Do', Done)", ["OPS-2", "OPS-5"]),
    ("statusCategory = Done", ["OPS-3", "WEB-1"]),
    ("statuscategory in ('To Do', indeterminate)", ["OPS-1", "OPS-2", "OPS-4", "OPS-5", "WEB-2"]),
    # priority, by name and in priority order
    ("priority = High", ["OPS-1"]),
    ("priority > Medium", ["OPS-1", "OPS-4"]),
    ("priority >= Medium", ["OPS-1", "OPS-2", "OPS-4", "WEB-1"]),
    ("priority < Medium", ["OPS-3", "WEB-2"]),
    ("priority is EMPTY", ["OPS-5"]),
    ("priority != Medium", ["OPS-1", "OPS-3", "OPS-4", "WEB-2"]),
    # people
    ("assignee = acc-bob", ["OPS-2", "WEB-1"]),
    ("assignee = 'alice@acme.test'", ["OPS-1", "OPS-5"]),
    ('assignee = "Carol Clark"', ["OPS-4"]),
    ("assignee = currentUser()", ["OPS-1", "OPS-5"]),
    ("assignee is EMPTY", ["OPS-3", "WEB-2"]),
    ("assignee = null", ["OPS-3", "WEB-2"]),
    ("assignee is not empty AND project = WEB", ["WEB-1"]),
    ("assignee != acc-alice", ["OPS-2", "OPS-4", "WEB-1"]),
    ("assignee in (currentUser(), acc-carol)", ["OPS-1", "OPS-4", "OPS-5"]),
    ("assignee in (EMPTY, acc-carol)", ["OPS-3", "OPS-4", "WEB-2"]),
    ("assignee in membersOf('ops')", ["OPS-2", "WEB-1"]),
    ("reporter in membersOf(dev)", ["OPS-1", "OPS-2", "OPS-3", "OPS-5", "WEB-2"]),
    ("creator = acc-carol", ["OPS-4", "WEB-1"]),
    ("watcher = acc-carol", ["OPS-3"]),
    # labels
    ("labels = urgent", ["OPS-1", "OPS-4"]),
    ("labels in (backend, frontend)", ["OPS-1", "OPS-2", "WEB-1"]),
    ("labels = URGENT", ["OPS-1", "OPS-4"]),
    ("labels != urgent", ["OPS-2", "WEB-1"]),
    ("labels not in (urgent, frontend)", ["OPS-2"]),
    ("labels is EMPTY", ["OPS-3", "OPS-5", "WEB-2"]),
    ("labels = nothing-like-this", []),
    # resolution
    ("resolution = Unresolved", ["OPS-1", "OPS-2", "OPS-4", "OPS-5", "WEB-2"]),
    ("resolution is EMPTY", ["OPS-1", "OPS-2", "OPS-4", "OPS-5", "WEB-2"]),
    ("resolution != Unresolved", ["OPS-3", "WEB-1"]),
    ('resolution = "Won\'t Do"', ["WEB-1"]),
    ("resolution in (Done, Unresolved) AND project = WEB", ["WEB-2"]),
    # sprints, components, versions, parent, story points
    ("sprint in openSprints()", ["OPS-1", "OPS-2"]),
    ("sprint in closedSprints()", ["OPS-2", "OPS-3"]),
    ("sprint in futureSprints()", ["OPS-4"]),
    ('sprint = "OPS Sprint 1"', ["OPS-2", "OPS-3"]),
    ("sprint = 2", ["OPS-1", "OPS-2"]),
    ("sprint is EMPTY", ["OPS-5", "WEB-1", "WEB-2"]),
    ("sprint not in openSprints()", ["OPS-3", "OPS-4"]),
    ("cf[10020] = 3", ["OPS-4"]),
    ("component = Backend", ["OPS-1", "OPS-3"]),
    ("component is empty", ["OPS-2", "OPS-4", "OPS-5", "WEB-2"]),
    ("fixVersion = '1.0'", ["OPS-2", "OPS-3"]),
    ("fixversion in unreleasedVersions()", ["OPS-1"]),
    ("fixVersion in releasedVersions(OPS)", ["OPS-2", "OPS-3"]),
    ("fixVersion in releasedVersions(WEB)", []),
    ("parent = OPS-4", ["OPS-1"]),
    ("parent in (OPS-4, 30002)", ["OPS-1", "OPS-5"]),
    ("parent is not EMPTY", ["OPS-1", "OPS-5"]),
    ('"Story Points" >= 3', ["OPS-1", "OPS-2", "OPS-3"]),
    ("cf[10016] < 2", ["OPS-5"]),
    ("'story point estimate' = 2", ["WEB-2"]),
    ('"Story Points" is EMPTY', ["OPS-4", "WEB-1"]),
    # dates against the world clock (Wednesday 2026-01-14 10:00 UTC)
    ("created >= -7d", ["OPS-2", "OPS-4", "OPS-5", "WEB-2"]),
    ("created < '-1w'", ["OPS-1", "OPS-3", "WEB-1"]),
    ("created > -3h", ["OPS-4", "WEB-2"]),
    ('created >= "-1w 2d"', ["OPS-2", "OPS-4", "OPS-5", "WEB-2"]),
    ("created >= startOfDay()", ["OPS-4", "WEB-2"]),
    ("created >= startOfDay(-1d) AND created < startOfDay()", []),
    ("created > startOfWeek()", ["OPS-4", "OPS-5", "WEB-2"]),
    ("created <= endOfWeek(-1)", ["OPS-1", "OPS-2", "OPS-3", "WEB-1"]),
    ("created >= startOfMonth()", ["OPS-1", "OPS-2", "OPS-4", "OPS-5", "WEB-2"]),
    ("created < startOfYear()", ["OPS-3", "WEB-1"]),
    ("created >= startOfMonth(-1) AND created <= endOfMonth(-1)", ["OPS-3", "WEB-1"]),
    ("created > endOfYear(-1)", ["OPS-1", "OPS-2", "OPS-4", "OPS-5", "WEB-2"]),
    ("created >= startOfDay('-4d') AND created < endOfDay(-3)", ["OPS-5"]),
    ("created = now()", ["WEB-2"]),
    ("created >= '2026-01-11'", ["OPS-4", "OPS-5", "WEB-2"]),
    ('created < "2026/01/04 10:01"', ["OPS-1", "OPS-3", "WEB-1"]),
    ("updated >= -3h", ["OPS-2", "OPS-4", "WEB-2"]),
    ("resolved >= -2d", ["OPS-3"]),
    ("resolutiondate is empty AND project = WEB", ["WEB-2"]),
    ("duedate < now()", ["OPS-1", "WEB-2"]),
    ("due <= endOfDay()", ["OPS-1", "WEB-2"]),
    ("duedate < startOfDay()", ["WEB-2"]),
    ("duedate > endOfDay()", ["OPS-2"]),
    ("duedate = '2026-01-14'", ["OPS-1"]),
    ("duedate != '2026-01-14'", ["OPS-2", "WEB-2"]),
    ("duedate <= 5d", ["OPS-1", "WEB-2"]),
    ("duedate <= 6d", ["OPS-1", "OPS-2", "WEB-2"]),  # due Jan 20 is its midnight, before 10:00
    ("duedate is EMPTY", ["OPS-3", "OPS-4", "OPS-5", "WEB-1"]),
    # text search
    ("summary ~ login", ["OPS-1"]),
    ("summary ~ logins", ["OPS-1"]),
    ("summary ~ 'fail'", ["OPS-1"]),
    ("summary ~ log", []),
    ('summary ~ "log*"', ["OPS-1", "WEB-1"]),
    ('summary ~ "password login"', ["OPS-1"]),
    ('summary ~ "password upgrade"', []),
    ('summary ~ "\\"password reset\\""', ["OPS-1"]),
    ('summary ~ "\\"reset password\\""', []),
    ("summary !~ login", ["OPS-2", "OPS-3", "OPS-4", "OPS-5", "WEB-1", "WEB-2"]),
    ("description ~ TOKEN", ["OPS-1"]),
    ("description ~ type", ["OPS-3"]),
    ("description ~ since", ["OPS-3"]),
    ("description ~ paragraph OR description ~ doc OR description ~ version", []),
    ("description is EMPTY", ["OPS-2", "OPS-4", "OPS-5", "WEB-1", "WEB-2"]),
    ("description !~ token", ["OPS-3"]),
    ("comment ~ timeout", ["OPS-2"]),
    ("comment is not EMPTY", ["OPS-2"]),
    ("text ~ timeout", ["OPS-2", "OPS-5"]),
    ("text ~ login", ["OPS-1", "OPS-2"]),
    ("text ~ 'the caching'", ["OPS-3"]),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("jql", "expected"), CLAUSES)
def test_it_finds_the_issues_a_clause_names(w, jql, expected):
    assert keys(w, jql) == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("jql", "expected"),
    [
        # AND binds tighter than OR: a OR (b AND c)
        ("project = WEB OR labels = urgent AND priority = Highest", ["OPS-4", "WEB-1", "WEB-2"]),
        ("(project = WEB OR labels = urgent) AND priority = Highest", ["OPS-4"]),
        ("labels = urgent AND priority = Highest OR project = WEB", ["OPS-4", "WEB-1", "WEB-2"]),
        ("project = WEB || labels = urgent && priority = Highest", ["OPS-4", "WEB-1", "WEB-2"]),
        # NOT is pushed down like Jira's: NOT assignee = x is assignee != x (no empties)
        ("NOT assignee = acc-alice", ["OPS-2", "OPS-4", "WEB-1"]),
        ("NOT (project = OPS AND status = Done)", ["OPS-1", "OPS-2", "OPS-4", "OPS-5", "WEB-1", "WEB-2"]),
        ("NOT (project = WEB OR status = Done)", ["OPS-1", "OPS-2", "OPS-4", "OPS-5"]),
        ("NOT NOT project = WEB", ["WEB-1", "WEB-2"]),
        ("!labels in (urgent)", ["OPS-2", "WEB-1"]),
        ("NOT summary ~ login AND project = OPS", ["OPS-2", "OPS-3", "OPS-4", "OPS-5"]),
        ("NOT text ~ login AND project = OPS", ["OPS-3", "OPS-4", "OPS-5"]),
        ("NOT assignee is EMPTY AND project = WEB", ["WEB-1"]),
        ("NOT created < -7d", ["OPS-2", "OPS-4", "OPS-5", "WEB-2"]),
        # case-insensitive keywords, operators and field names
        ("PROJECT = web AnD StAtUs = done", ["WEB-1"]),
        ("Project IN (web) and ASSIGNEE is not NULL", ["WEB-1"]),
    ],
)
def test_it_combines_clauses(w, jql, expected):
    assert keys(w, jql) == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("jql", "expected"),
    [
        ("ORDER BY key DESC", ["WEB-2", "WEB-1", "OPS-5", "OPS-4", "OPS-3", "OPS-2", "OPS-1"]),
        # Empty values sort as the greatest, as in Jira: first when descending.
        ("project = OPS ORDER BY priority DESC", ["OPS-5", "OPS-4", "OPS-1", "OPS-2", "OPS-3"]),
        ("project = OPS ORDER BY priority", ["OPS-3", "OPS-2", "OPS-1", "OPS-4", "OPS-5"]),
        ("project = OPS ORDER BY status ASC, created DESC", ["OPS-3", "OPS-5", "OPS-2", "OPS-4", "OPS-1"]),
        ("ORDER BY created", ["WEB-1", "OPS-3", "OPS-1", "OPS-2", "OPS-5", "OPS-4", "WEB-2"]),
        ("duedate is not empty order by duedate desc", ["OPS-2", "OPS-1", "WEB-2"]),
        ("ORDER BY duedate", ["WEB-2", "OPS-1", "OPS-2", "OPS-3", "OPS-4", "OPS-5", "WEB-1"]),
        ("project = WEB ORDER BY updated DESC", ["WEB-2", "WEB-1"]),
        ("status = 'To Do' ORDER BY project DESC, key DESC", ["WEB-2", "OPS-4", "OPS-1"]),
        ("project = OPS ORDER BY assignee, key desc", ["OPS-5", "OPS-1", "OPS-2", "OPS-4", "OPS-3"]),
        ("labels = urgent ORDER BY 'Story Points' DESC", ["OPS-4", "OPS-1"]),
    ],
)
def test_it_orders_results(w, jql, expected):
    assert keys(w, jql) == expected


@pytest.mark.django_db
def test_relative_dates_follow_the_world_clock(w):
    assert keys(w, "created >= startOfDay()") == ["OPS-4", "WEB-2"]
    w.world.ticks = 24 * 3600  # one day at one second a tick
    w.world.save()
    assert keys(w, "created >= startOfDay()") == []
    assert keys(w, "created >= startOfDay(-1d)") == ["OPS-4", "WEB-2"]
    assert keys(w, "created >= -1d") == ["WEB-2"]


@pytest.mark.django_db
def test_dates_are_read_in_the_users_time_zone(w):
    w.alice.time_zone = "Asia/Tokyo"  # 10:00 UTC is 19:00 there; the day began at 15:00 UTC the day before
    Issue.objects.filter(key="OPS-5").update(created=NOW - 18 * HOUR)  # 01:00 in Tokyo today
    assert keys(w, "created >= startOfDay()") == ["OPS-4", "OPS-5", "WEB-2"]
    assert keys(w, "created >= startOfDay()", user="bob") == ["OPS-4", "WEB-2"]
    assert keys(w, "created >= '2026-01-14'") == ["OPS-4", "OPS-5", "WEB-2"]


@pytest.mark.django_db
def test_current_user_is_whoever_searches(w):
    assert keys(w, "reporter = currentUser()", user="bob") == ["OPS-1", "OPS-5", "WEB-2"]
    assert keys(w, "reporter = currentUser()", user="carol") == ["OPS-4", "WEB-1"]
    assert keys(w, "reporter = currentUser()", user=None) == []


@pytest.mark.django_db
def test_another_worlds_issues_never_match(w):
    other = build_world("other")
    assert keys(w, "key = OPS-1") == ["OPS-1"]
    assert compile_jql(w.world, "project = OPS", user=None).apply(Issue.objects.all()).count() == 5
    assert set(compile_jql(other.world, "key = OPS-1", user=None).apply(Issue.objects.all())) == {
        Issue.objects.get(world=other.world, key="OPS-1")
    }
    # A sprint id of this world names no sprint of the other.
    with pytest.raises(JqlValueError):
        compile_jql(w.world, f"sprint = {other.s1.ext_id + 100}", user=None)


@pytest.mark.django_db
def test_bare_order_by_is_unbounded(w):
    assert compile_jql(w.world, "ORDER BY key", user=None).bounded is False
    assert compile_jql(w.world, "", user=None).bounded is False
    assert compile_jql(w.world, "project = OPS ORDER BY key", user=None).bounded is True
    with pytest.raises(JqlUnboundedError) as error:
        compile_jql(w.world, "order by created DESC", user=None, require_bounded=True)
    assert str(error.value) == (
        "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
    )
    assert keys(w, "") == ALL


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("jql", "problem", "line", "column"),
    [
        ("project = OPS foo bar", "Expecting either 'OR' or 'AND' but got 'foo'.", 1, 15),
        (
            "project foo OPS",
            "Expecting operator but got 'foo'. The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', "
            "'!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'.",
            1,
            9,
        ),
        (
            "status = AND",
            "Expecting either a value, list or function but got 'AND'. You must surround 'AND' in quotation "
            "marks to use it as a value.",
            1,
            10,
        ),
        ("project = ", "Expecting either a value, list or function but got the end of the query.", 1, 11),
        ("(project = OPS", "Expecting ')' but got the end of the query.", 1, 15),
        ('summary ~ "oops', "The quoted string 'oops' has not been completed.", 1, 11),
        ("labels in (a b)", "Expecting either ',' or ')' but got 'b'.", 1, 14),
        ("assignee is bob", "Expecting 'EMPTY' but got 'bob'.", 1, 13),
        ("project = OPS ORDER key", "Expecting 'BY' but got 'key'.", 1, 21),
        ("ORDER BY", "Expecting a field name but got the end of the query.", 1, 9),
        (
            "project = OPS\nAND labels = 50%",
            "The character '%' is a reserved JQL character. You must enclose it in a string or use "
            "the escape '\\u0025' instead.",
            2,
            16,
        ),
    ],
)
def test_malformed_queries_name_the_token_and_its_position(w, jql, problem, line, column):
    with pytest.raises(JqlSyntaxError) as error:
        compile_jql(w.world, jql, user=None)
    assert str(error.value) == f"Error in the JQL Query: {problem} (line {line}, character {column})"
    assert (error.value.kind, error.value.line, error.value.column) == ("syntax", line, column)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("jql", "message"),
    [
        ("colour = red", NO_COLOUR),
        ("project = OPS ORDER BY colour", NO_COLOUR),
        ("project = NOPE", "The value 'NOPE' does not exist for the field 'project'."),
        ("Status = Closed", "The value 'Closed' does not exist for the field 'Status'."),
        ("issuetype = Incident", "The value 'Incident' does not exist for the field 'issuetype'."),
        ("priority > Urgent", "The value 'Urgent' does not exist for the field 'priority'."),
        ("resolution = Fixed", "The value 'Fixed' does not exist for the field 'resolution'."),
        ("assignee = dave", "The value 'dave' does not exist for the field 'assignee'."),
        ("sprint = 'Sprint 9'", "The value 'Sprint 9' does not exist for the field 'sprint'."),
        ("component = Mobile", "The value 'Mobile' does not exist for the field 'component'."),
        ("fixVersion = 3.0", "The value '3.0' does not exist for the field 'fixVersion'."),
        ("statusCategory = Blocked", "The value 'Blocked' does not exist for the field 'statusCategory'."),
        ("key = OPS-99", "An issue with key 'OPS-99' does not exist for field 'key'."),
        ("parent in (OPS-1, NOPE-1)", "An issue with key 'NOPE-1' does not exist for field 'parent'."),
        ("status ~ Done", "The operator '~' is not supported by the 'status' field."),
        ("summary = Login", "The operator '=' is not supported by the 'summary' field."),
        ("project = OPS ORDER BY labels", "Field 'labels' does not support sorting."),
        (
            "summary ~ '*gin'",
            "The text query '*gin' for field 'summary' is not valid: '*' and '?' are not allowed as the "
            "first character of a wildcard search.",
        ),
        (
            "created > yesterday",
            "Date value 'yesterday' for field 'created' is invalid. Valid formats include: "
            "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format "
            "e.g. '-5d', '4w 2d'.",
        ),
        ("created > tomorrow()", "Unable to find JQL function 'tomorrow()'."),
        ("status in openSprints()", "The function 'openSprints' is not supported by the 'status' field."),
        (
            "assignee in membersOf(nobody)",
            "Function 'membersOf' can not generate a list of users for group 'nobody'; the group does not "
            "exist.",
        ),
        ("assignee = currentUser(1)", "Function 'currentUser' expected '0' arguments but got '1'."),
        ("'Story Points' > many", "The value 'many' is not a valid number for the field 'Story Points'."),
    ],
)
def test_unknown_fields_values_and_operators_are_refused(w, jql, message):
    with pytest.raises(JqlValueError) as error:
        compile_jql(w.world, jql, user=w.alice)
    assert str(error.value) == message
    assert isinstance(error.value, JqlError) and isinstance(error.value, ValueError)


@pytest.mark.django_db
def test_a_complex_search_costs_a_few_queries(w, django_assert_max_num_queries):
    jql = (
        "project in (OPS, WEB) AND status != Done "
        "AND (assignee = currentUser() OR assignee in membersOf(ops)) AND priority >= Medium "
        "AND labels in (backend, urgent) AND sprint in openSprints() "
        "AND text ~ 'login' AND created >= -30d ORDER BY priority DESC, key"
    )
    # project, status, users, priority, sprint lookups + the search itself.
    with django_assert_max_num_queries(6):
        found = list(compile_jql(w.world, jql, user=w.alice).apply(Issue.objects.all()))
    assert [i.key for i in found] == ["OPS-1", "OPS-2"]


def _acme_issues(world):
    issues = Issue.objects.filter(world=world).select_related("project", "status", "issue_type", "parent")
    return list(issues.prefetch_related("labels", "sprints"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("jql", "oracle"),
    [
        ("project = OPS", lambda i, me, now: i.project.key == "OPS"),
        (
            'project = OPS AND status = "In Progress"',
            lambda i, me, now: i.project.key == "OPS" and i.status.name == "In Progress",
        ),
        (
            "assignee = currentUser() AND resolution = Unresolved",
            lambda i, me, now: i.assignee_id == me.pk and i.resolution_id is None,
        ),
        (
            "labels in (checkout, crash)",
            lambda i, me, now: {"checkout", "crash"} & {x.name for x in i.labels.all()},
        ),
        (
            "issuetype = Bug AND created >= -7d",
            lambda i, me, now: i.issue_type.name == "Bug" and i.created >= now - 7 * DAY,
        ),
        ("sprint in openSprints()", lambda i, me, now: any(s.state == "active" for s in i.sprints.all())),
        ("statusCategory != Done", lambda i, me, now: i.status.category != "done"),
        ("parent = WEB-1", lambda i, me, now: i.parent is not None and i.parent.key == "WEB-1"),
        (
            "duedate <= 7d AND resolution is EMPTY",
            lambda i, me, now: i.due_date and i.due_date <= (now + 7 * DAY).date() and not i.resolution_id,
        ),
        (
            "priority >= High AND assignee is EMPTY",
            lambda i, me, now: i.priority and i.priority.rank <= 2 and i.assignee_id is None,
        ),
    ],
)
def test_the_acme_seed_answers_what_agents_ask_most(acme, ada, jql, oracle):
    """The seed the agents train on, against a plain-Python reading of each query."""
    expected = {i.key for i in _acme_issues(acme) if oracle(i, ada, acme.now())}
    found = compile_jql(acme, jql, user=ada, require_bounded=True).apply(Issue.objects.all())
    assert expected and {i.key for i in found} == expected


@pytest.mark.django_db
def test_the_acme_seed_orders_by_priority_then_key(acme, ada):
    found = compile_jql(acme, "project = OPS ORDER BY priority DESC, key", user=ada).apply(
        Issue.objects.all()
    )
    ops = [i for i in _acme_issues(acme) if i.project.key == "OPS"]
    assert [i.key for i in found] == [i.key for i in sorted(ops, key=lambda i: (i.priority.rank, i.number))]


@pytest.mark.django_db
def test_a_query_on_the_configuration_alone_is_compiled_once_per_world_and_user(
    acme, ada, django_assert_num_queries
):
    jql = "project = WEB AND statusCategory != Done ORDER BY priority DESC, updated DESC"
    first = compile_jql(acme, jql, user=ada)
    with django_assert_num_queries(0):
        again = compile_jql(acme, jql, user=ada)
    assert again.where is first.where and again.ordering == first.ordering
    other = User.objects.filter(world=acme).exclude(pk=ada.pk).first()
    assert compile_jql(acme, "assignee = currentUser()", user=ada).where != (
        compile_jql(acme, "assignee = currentUser()", user=other).where
    )


@pytest.mark.django_db
def test_queries_on_the_clock_or_on_changing_rows_are_compiled_for_each_call(acme, ada):
    created = compile_jql(acme, "created >= startOfDay()", user=ada)
    acme.ticks += 24 * 3600  # one day later by the world's clock
    assert compile_jql(acme, "created >= startOfDay()", user=ada).where != created.where
    compile_jql(acme, "key = OPS-1", user=ada)
    Issue.objects.filter(world=acme, key="OPS-1").delete()
    with pytest.raises(JqlValueError, match="OPS-1"):
        compile_jql(acme, "key = OPS-1", user=ada)
    compile_jql(acme, "sprint = 'WEB Sprint 12' OR sprint in openSprints()", user=ada)
    Sprint.objects.filter(world=acme).update(state="closed")
    assert not compile_jql(acme, "sprint in openSprints()", user=ada).apply(Issue.objects.all()).exists()


@pytest.mark.django_db
def test_a_cached_query_gives_the_same_issues_every_time(acme, ada):
    jql = "labels in (checkout, crash) AND text ~ checkout ORDER BY key"
    first = [i.key for i in compile_jql(acme, jql, user=ada).apply(Issue.objects.all())]
    second = compile_jql(acme, jql, user=ada)
    assert first and [i.key for i in second.apply(Issue.objects.all())] == first
    assert [i.key for i in second.issue_rows(1, 2)] == first[1:3]
    assert [i.key for i in compile_jql(acme, jql, user=ada).issue_rows(0, 100)] == first

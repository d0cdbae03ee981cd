"""One sandbox ``World`` and everything in it: a small Jira + Confluence Cloud site.

Conventions every model here follows:

- Every row belongs to exactly one world (``world`` foreign key) and nothing refers across
  worlds. A world is forked from a template world (a loaded seed) for each episode.
- What the API shows as an id is ``ext_id``: a number from the world's own counter
  (``World.allocate_ids``), so the same calls on two forks of one seed give the same ids, keys
  and timestamps. Database primary keys never appear in an API response.
- Timestamps the API shows come from the world's clock (``World.now``), never from the host's:
  the clock starts at the seed's start time and advances a fixed step per API call.
- Rich text: Jira descriptions and comment bodies are stored as ADF documents (what v3 speaks;
  v2 renders them as plain text); Confluence page bodies in storage format (XHTML).
"""

import datetime as dt
import secrets

from django.db import models

STATUS_CATEGORIES = {
    # key: (id, name, colorName) exactly as Jira Cloud reports them
    "new": (2, "To Do", "blue-gray"),
    "indeterminate": (4, "In Progress", "yellow"),
    "done": (3, "Done", "green"),
}


def new_api_token():
    return "sim_" + secrets.token_urlsafe(24)


class World(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    seed = models.CharField(max_length=64, help_text="name of the seed this world was made from")
    is_template = models.BooleanField(
        default=False, help_text="a loaded seed, only ever forked; episodes never write to it"
    )
    forked_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL)
    # The world's own clock: clock_start + ticks * clock_step.
    clock_start = models.DateTimeField()
    clock_step_ms = models.PositiveIntegerField(default=1000)
    ticks = models.PositiveIntegerField(default=0)
    # The world's own counter for ext_ids (Jira ids start at 10000 like Cloud's).
    next_ext_id = models.PositiveBigIntegerField(default=10000)
    # Set by whoever used the world (e.g. "failed" after a failed episode) so that pruning can
    # keep the worlds worth a look.
    outcome = models.CharField(max_length=16, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)  # host time: only for pruning

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.slug

    def now(self):
        """The world's current time."""
        return self.clock_start + dt.timedelta(milliseconds=self.ticks * self.clock_step_ms)

    def tick(self):
        """Advance the clock by one step and return the new time. In memory: the dispatcher
        writes the clock back with the call's trace (simulator.trace)."""
        self.ticks += 1
        return self.now()

    def fork(self, slug=None):
        """A new world with this template's content (see simulator.forking)."""
        from simulator.forking import fork_world

        return fork_world(self, slug)

    def allocate_ids(self, count=1):
        """Reserve ``count`` consecutive ext_ids from this world's counter; return the first.

        In memory, inside a call: the dispatcher writes the counter back with the call's trace, and
        forgets what a failed call allocated."""
        first = self.next_ext_id
        self.next_ext_id += count
        return first


class WorldOwned(models.Model):
    world = models.ForeignKey(World, on_delete=models.CASCADE, related_name="+")

    class Meta:
        abstract = True


# --- Jira: people and configuration ---------------------------------------------------------------


class User(WorldOwned):
    account_id = models.CharField(max_length=64)
    display_name = models.CharField(max_length=120)
    email = models.EmailField()
    active = models.BooleanField(default=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    # HTTP Basic credentials (email + this token) open this world only: a fork gets new tokens.
    api_token = models.CharField(max_length=64, default=new_api_token)
    groups = models.JSONField(default=list, blank=True, help_text="group names, for membersOf()")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["world", "account_id"], name="sim_user_account"),
            models.UniqueConstraint(fields=["world", "email"], name="sim_user_email"),
        ]

    def __str__(self):
        return self.display_name


class Status(WorldOwned):
    ext_id = models.PositiveBigIntegerField()
    name = models.CharField(max_length=60)
    description = models.CharField(max_length=255, blank=True, default="")
    category = models.CharField(max_length=16, choices=[(k, v[1]) for k, v in STATUS_CATEGORIES.items()])

    class Meta:
        constraints = [models.UniqueConstraint(fields=["world", "ext_id"], name="sim_status_ext")]

    def __str__(self):
        return self.name


class Workflow(WorldOwned):
    name = models.CharField(max_length=80)
    initial_status = models.ForeignKey(Status, on_delete=models.PROTECT, related_name="+")

    def __str__(self):
        return self.name


class Transition(WorldOwned):
    """A workflow transition. Jira shows its id as a numeric string ("11", "21", ...), unique
    within its workflow, not within the site."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="transitions")
    transition_id = models.PositiveIntegerField()
    name = models.CharField(max_length=80)
    to_status = models.ForeignKey(Status, on_delete=models.CASCADE, related_name="+")
    # ext_ids of the statuses it may start from; empty = a global transition (from any status).
    from_status_ids = models.JSONField(default=list, blank=True)
    # Screen fields the transition requires, e.g. ["resolution"].
    required_fields = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["transition_id"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "transition_id"], name="sim_transition_id")
        ]

    def __str__(self):
        return f"{self.name} ({self.transition_id})"


class IssueType(WorldOwned):
    ext_id = models.PositiveBigIntegerField()
    name = models.CharField(max_length=60)
    description = models.CharField(max_length=255, blank=True, default="")
    subtask = models.BooleanField(default=False)
    hierarchy_level = models.SmallIntegerField(default=0, help_text="-1 sub-task, 0 standard, 1 epic")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["world", "ext_id"], name="sim_issuetype_ext")]

    def __str__(self):
        return self.name


class Priority(WorldOwned):
    ext_id = models.PositiveBigIntegerField()
    name = models.CharField(max_length=60)
    description = models.CharField(max_length=255, blank=True, default="")
    status_color = models.CharField(max_length=16, default="#ff7452")
    rank = models.PositiveSmallIntegerField(help_text="1 = highest; JQL's priority order")
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["rank"]
        constraints = [models.UniqueConstraint(fields=["world", "ext_id"], name="sim_priority_ext")]

    def __str__(self):
        return self.name


class Resolution(WorldOwned):
    ext_id = models.PositiveBigIntegerField()
    name = models.CharField(max_length=60)
    description = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["world", "ext_id"], name="sim_resolution_ext")]

    def __str__(self):
        return self.name


class Project(WorldOwned):
    ext_id = models.PositiveBigIntegerField()
    key = models.CharField(max_length=10)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True, default="")
    lead = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    project_type = models.CharField(max_length=32, default="software")
    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="projects")
    # Issue numbers are per project: OPS-1, OPS-2, ...
    next_issue_number = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["world", "ext_id"], name="sim_project_ext"),
            models.UniqueConstraint(fields=["world", "key"], name="sim_project_key"),
        ]

    def __str__(self):
        return self.key


class Component(WorldOwned):
    ext_id = models.PositiveBigIntegerField()
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="components")
    name = models.CharField(max_length=120)
    description = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["world", "ext_id"], name="sim_component_ext")]

    def __str__(self):
        return self.name


class Version(WorldOwned):
    ext_id = models.PositiveBigIntegerField()
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="versions")
    name = models.CharField(max_length=120)
    released = models.BooleanField(default=False)
    release_date = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["world", "ext_id"], name="sim_version_ext")]

    def __str__(self):
        return self.name


# --- Jira: boards and sprints ---------------------------------------------------------------------


class Board(WorldOwned):
    ext_id = models.PositiveIntegerField(help_text="agile ids are integers")
    name = models.CharField(max_length=120)
    type = models.CharField(max_length=16, choices=[("scrum", "scrum"), ("kanban", "kanban")])
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="boards")
    # [{"name": "To Do", "status_ids": [10000]}, ...] in display order.
    columns = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["world", "ext_id"], name="sim_board_ext")]

    def __str__(self):
        return self.name


class Sprint(WorldOwned):
    STATES = [("future", "future"), ("active", "active"), ("closed", "closed")]

    ext_id = models.PositiveIntegerField(help_text="agile ids are integers")
    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="sprints")
    name = models.CharField(max_length=120)
    state = models.CharField(max_length=8, choices=STATES, default="future")
    goal = models.CharField(max_length=255, blank=True, default="")
    start_date = models.DateTimeField(null=True, blank=True)
    end_date = models.DateTimeField(null=True, blank=True)
    complete_date = models.DateTimeField(null=True, blank=True)
    created_date = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["world", "ext_id"], name="sim_sprint_ext")]

    def __str__(self):
        return self.name


# --- Jira: issues ---------------------------------------------------------------------------------


class Issue(WorldOwned):
    ext_id = models.PositiveBigIntegerField()
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="issues")
    number = models.PositiveIntegerField()
    key = models.CharField(max_length=24)
    summary = models.CharField(max_length=255)
    description = models.JSONField(null=True, blank=True, help_text="ADF document")
    issue_type = models.ForeignKey(IssueType, on_delete=models.PROTECT, related_name="+")
    status = models.ForeignKey(Status, on_delete=models.PROTECT, related_name="+")
    priority = models.ForeignKey(Priority, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    assignee = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reporter = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    creator = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    resolution = models.ForeignKey(
        Resolution, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution_date = models.DateTimeField(null=True, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    due_date = models.DateField(null=True, blank=True)
    story_points = models.FloatField(null=True, blank=True)
    rank = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="board order set by the rank API; unranked issues follow, oldest first",
    )
    components = models.ManyToManyField(Component, blank=True, related_name="issues")
    fix_versions = models.ManyToManyField(Version, blank=True, related_name="issues")
    sprints = models.ManyToManyField(Sprint, blank=True, related_name="issues")
    created = models.DateTimeField()
    updated = models.DateTimeField()
    status_category_changed = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["world", "ext_id"], name="sim_issue_ext"),
            models.UniqueConstraint(fields=["world", "key"], name="sim_issue_key"),
        ]
        indexes = [models.Index(fields=["world", "project", "number"], name="sim_issue_number")]

    def __str__(self):
        return self.key


class IssueLabel(WorldOwned):
    """Labels are rows, not a JSON list, so that JQL can query them on every database."""

    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=255)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]
        constraints = [models.UniqueConstraint(fields=["issue", "name"], name="sim_label_unique")]
        indexes = [models.Index(fields=["world", "name"], name="sim_label_name")]

    def __str__(self):
        return self.name


class Comment(WorldOwned):
    ext_id = models.PositiveBigIntegerField()
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    update_author = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    body = models.JSONField(help_text="ADF document")
    created = models.DateTimeField()
    updated = models.DateTimeField()

    class Meta:
        ordering = ["created", "ext_id"]
        constraints = [models.UniqueConstraint(fields=["world", "ext_id"], name="sim_comment_ext")]

    def __str__(self):
        return f"comment {self.ext_id} on {self.issue_id}"


class Watcher(WorldOwned):
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="watchers")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issue", "user"], name="sim_watcher_unique")]

    def __str__(self):
        return f"{self.user_id} watches {self.issue_id}"


class IssueLinkType(WorldOwned):
    ext_id = models.PositiveBigIntegerField()
    name = models.CharField(max_length=60)
    inward = models.CharField(max_length=60)
    outward = models.CharField(max_length=60)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["world", "ext_id"], name="sim_linktype_ext")]

    def __str__(self):
        return self.name


class IssueLink(WorldOwned):
    """``inward_issue`` gets the outward phrase: {type: Blocks, inward: A, outward: B} = A blocks B."""

    ext_id = models.PositiveBigIntegerField()
    type = models.ForeignKey(IssueLinkType, on_delete=models.CASCADE, related_name="+")
    inward_issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="links_as_inward")
    outward_issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="links_as_outward")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["world", "ext_id"], name="sim_link_ext"),
            models.UniqueConstraint(fields=["type", "inward_issue", "outward_issue"], name="sim_link_unique"),
        ]

    def __str__(self):
        return f"{self.inward_issue_id} {self.type_id} {self.outward_issue_id}"


# --- Confluence -----------------------------------------------------------------------------------


class Space(WorldOwned):
    ext_id = models.PositiveBigIntegerField()
    key = models.CharField(max_length=32)
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=16, default="global")
    status = models.CharField(max_length=16, default="current")
    description = models.TextField(blank=True, default="")
    author = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    homepage = models.ForeignKey("Page", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["world", "ext_id"], name="sim_space_ext"),
            models.UniqueConstraint(fields=["world", "key"], name="sim_space_key"),
        ]

    def __str__(self):
        return self.key


class Page(WorldOwned):
    STATUSES = [("current", "current"), ("draft", "draft"), ("trashed", "trashed")]

    ext_id = models.PositiveBigIntegerField()
    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="pages")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    title = models.CharField(max_length=255)
    body = models.TextField(blank=True, default="", help_text="storage format (XHTML)")
    status = models.CharField(max_length=16, choices=STATUSES, default="current")
    position = models.IntegerField(default=0)
    author = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    owner = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField()
    # The current version; earlier ones are PageVersion rows.
    version = models.PositiveIntegerField(default=1)
    version_message = models.CharField(max_length=255, blank=True, default="")
    version_author = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    version_created = models.DateTimeField()

    class Meta:
        ordering = ["position", "ext_id"]
        constraints = [models.UniqueConstraint(fields=["world", "ext_id"], name="sim_page_ext")]
        indexes = [models.Index(fields=["world", "space", "title"], name="sim_page_title")]

    def __str__(self):
        return self.title


class PageVersion(WorldOwned):
    """A superseded version of a page (the current one lives on the Page row)."""

    page = models.ForeignKey(Page, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=255)
    body = models.TextField(blank=True, default="")
    message = models.CharField(max_length=255, blank=True, default="")
    author = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField()

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["page", "number"], name="sim_pageversion_unique")]

    def __str__(self):
        return f"{self.page_id} v{self.number}"


class PageLabel(WorldOwned):
    ext_id = models.PositiveBigIntegerField()
    page = models.ForeignKey(Page, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=255)
    prefix = models.CharField(max_length=16, default="global")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["page", "prefix", "name"], name="sim_pagelabel_unique")
        ]

    def __str__(self):
        return self.name


# --- The trace: every call and what it changed ----------------------------------------------------

# A call's row is the one row of the trace whose foreign keys are constraints in the database: its
# world's (a call on a world being deleted fails rather than leaving a trace behind). Its user's
# and its changes' keys are not (db_constraint=False): the trace statement (simulator.trace)
# writes them with ids it read or made itself, a change's world and call from the call's row of
# the same statement, and delete_worlds deletes them with their world, so those constraints had
# nothing to catch. They cost a lookup of the row pointed at for every row written (17 of the 27
# lookups of a create), and the server plans those lookups once per connection: after statistics
# taken while simulator_apicall was small, every change row scanned the whole growing table (the
# mix fell from about 400 to 210 calls/s within four worlds; docs/benchmarks.md).


class ApiCall(WorldOwned):
    """One API call made in a world, through either door (HTTP or in-process)."""

    # Every call inserts a row here: no index of the world alone, the (world, seq) constraint's
    # index serves every lookup by world.
    world = models.ForeignKey(World, on_delete=models.CASCADE, related_name="+", db_index=False)
    seq = models.PositiveIntegerField(help_text="1, 2, ... within the world")
    door = models.CharField(max_length=8, choices=[("http", "HTTP"), ("client", "in-process")])
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500, help_text="below the world prefix, e.g. /rest/api/3/issue")
    query = models.JSONField(default=dict, blank=True)
    body = models.JSONField(null=True, blank=True, help_text="the JSON request body, if any")
    status = models.PositiveSmallIntegerField()
    response = models.JSONField(null=True, blank=True)
    operation = models.CharField(max_length=80, blank=True, default="", help_text="route name")
    duration_ms = models.FloatField(default=0)
    at = models.DateTimeField(help_text="the world's clock when the call was made")

    class Meta:
        ordering = ["seq"]
        constraints = [models.UniqueConstraint(fields=["world", "seq"], name="sim_apicall_seq")]

    def __str__(self):
        return f"{self.method} {self.path} → {self.status}"

    @property
    def is_write(self):
        return self.method in {"POST", "PUT", "DELETE", "PATCH"} and 200 <= self.status < 300


class Change(WorldOwned):
    """What one call did to one field of one object: the world's change log."""

    # As ApiCall's: the sim_change_object index, which begins with the world, serves it.
    world = models.ForeignKey(
        World, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    ACTIONS = [("create", "created"), ("update", "changed"), ("delete", "deleted")]

    call = models.ForeignKey(
        ApiCall, null=True, blank=True, on_delete=models.CASCADE, related_name="changes", db_constraint=False
    )
    action = models.CharField(max_length=8, choices=ACTIONS)
    object_type = models.CharField(max_length=32, help_text="issue, comment, page, sprint, ...")
    object_ref = models.CharField(max_length=64, help_text="what the API calls it: OPS-12, page id ...")
    field = models.CharField(max_length=64, blank=True, default="")
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["world", "object_type", "object_ref"], name="sim_change_object")]

    def __str__(self):
        return f"{self.action} {self.object_type} {self.object_ref} {self.field}"

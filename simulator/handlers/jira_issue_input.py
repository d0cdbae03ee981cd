"""Reading the ``fields`` and ``update`` of an issue create, edit or transition into new values,
with Jira's validation and messages. Errors are collected per field and raised together."""

import datetime as dt

from simulator.adf import adf_to_text, is_adf, text_to_adf
from simulator.handlers.jira_fields import CREATE_ONLY, SETTABLE, SPRINT_FIELD, STORY_POINTS_FIELD
from simulator.models import Issue, Sprint
from simulator.routing import jira_error
from simulator.world_config import config_for

CANNOT_SET = "Field '{}' cannot be set. It is not on the appropriate screen, or unknown."
NOT_ADF = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
LIST_FIELDS = {"labels", "components", "fixVersions"}


class IssueInput:
    """Parses one request's ``fields`` + ``update`` against an issue's current values.

    ``values`` maps field id -> new value (model objects, lists, text); ``comments`` and ``links``
    collect what ``update`` adds; ``errors`` maps field id -> message.
    """

    def __init__(self, req, project, current=None, *, creating=False, allowed=SETTABLE):
        self.req = req
        self.config = config_for(req.world)
        self.project = project
        self.current = current or {}
        self.creating = creating
        self.allowed = allowed
        self.values = {}
        self.comments = []
        self.links = []
        self.errors = {}

    def read(self, fields, update):
        if fields is not None and not isinstance(fields, dict):
            raise jira_error(400, "Can not deserialize 'fields': a JSON object is expected.")
        if update is not None and not isinstance(update, dict):
            raise jira_error(400, "Can not deserialize 'update': a JSON object is expected.")
        fields, update = fields or {}, update or {}
        for fid in fields:
            if fid in update:
                self.errors[fid] = f"Field '{fid}' cannot be set in both 'fields' and 'update'."
        for fid, value in fields.items():
            if fid in self.errors:
                continue
            if fid not in self.allowed or (fid in CREATE_ONLY and not self.creating):
                self.errors[fid] = CANNOT_SET.format(fid)
                continue
            self._set(fid, value)
        for fid, operations in update.items():
            if fid in self.errors:
                continue
            self._update(fid, operations)
        return self

    def raise_errors(self):
        if self.errors:
            raise jira_error(400, [], self.errors)

    # ``update`` verbs

    def _update(self, fid, operations):
        if not isinstance(operations, list):
            self.errors[fid] = f"Field '{fid}': the operations must be a list."
            return
        for op in operations:
            if not isinstance(op, dict) or len(op) != 1:
                self.errors[fid] = f"Field '{fid}': each operation is an object with one verb."
                return
            verb, value = next(iter(op.items()))
            if fid == "comment" and verb == "add":
                self.comments.append(self._comment_body(value))
            elif fid == "issuelinks" and verb == "add":
                self.links.append(value)
            elif fid not in self.allowed or (fid in CREATE_ONLY and not self.creating):
                self.errors[fid] = CANNOT_SET.format(fid)
            elif verb == "set":
                self._set(fid, value)
            elif verb in ("add", "remove") and fid in LIST_FIELDS:
                self._add_remove(fid, verb, value)
            else:
                self.errors[fid] = f"Field '{fid}' does not support the operation '{verb}'."

    def _add_remove(self, fid, verb, value):
        items = self._list(fid, [value])
        if items is None:
            return
        current = list(self.values.get(fid, self.current.get(fid, [])))
        for item in items:
            if verb == "add" and item not in current:
                current.append(item)
            elif verb == "remove" and item in current:
                current.remove(item)
        self.values[fid] = current

    def _comment_body(self, value):
        body = value.get("body") if isinstance(value, dict) else None
        return self.rich_text("comment", body)

    # ``fields`` values (and ``set``)

    def _set(self, fid, value):
        parse = getattr(self, "_parse_" + fid.replace("customfield_", "cf"), None)
        if fid in LIST_FIELDS:
            items = self._list(fid, value)
            if items is not None:
                self.values[fid] = items
        elif parse is not None:
            parsed = parse(value)
            if fid not in self.errors:
                self.values[fid] = parsed

    def rich_text(self, fid, value):
        """ADF for v3 (a plain string is refused), a string for v2 (stored as ADF)."""
        if value is None or value == "":
            return None
        if self.req.adf:
            if not is_adf(value):
                self.errors[fid] = NOT_ADF
            return value
        if isinstance(value, dict) and is_adf(value):
            return value  # a v2 caller who sends ADF anyway
        if not isinstance(value, str):
            self.errors[fid] = f"Field '{fid}' must be a string."
            return None
        return text_to_adf(value)

    def _parse_summary(self, value):
        if not isinstance(value, str) or not value.strip():
            self.errors["summary"] = "You must specify a summary of the issue."
        elif "\n" in value or "\r" in value:
            self.errors["summary"] = "The summary is invalid because it contains newline characters."
        elif len(value) > 255:
            self.errors["summary"] = "Summary must be less than 255 characters."
        return value.strip() if isinstance(value, str) else None

    def _parse_description(self, value):
        return self.rich_text("description", value)

    def _ref(self, value):
        """The id or name/key of a ``{"id": ..}`` / ``{"name": ..}`` / ``{"key": ..}`` reference."""
        if isinstance(value, dict):
            for key in ("id", "key", "name"):
                if value.get(key) not in (None, ""):
                    return str(value[key])
            return None
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
        return None

    def _parse_project(self, value):
        ref = self._ref(value)
        project = self.config.project(ref) if ref else None
        if project is None:
            self.errors["project"] = "Specify a valid project ID or key"
        return project

    def _parse_issuetype(self, value):
        ref = self._ref(value)
        issue_type = self.config.issue_type(ref) if ref else None
        if issue_type is None:
            self.errors["issuetype"] = "Specify a valid issue type" if ref else "Specify an issue type"
        return issue_type

    def _parse_priority(self, value):
        if value is None:
            return None
        ref = self._ref(value)
        priority = self.config.priority(ref) if ref else None
        if priority is None:
            self.errors["priority"] = "The priority selected is invalid."
        return priority

    def _parse_resolution(self, value):
        if value is None:
            return None
        ref = self._ref(value)
        resolution = self.config.resolution(ref) if ref else None
        if resolution is None:
            self.errors["resolution"] = "The resolution selected is invalid."
        return resolution

    def user(self, fid, value):
        if value is None:
            return None
        if not isinstance(value, dict) or "accountId" not in value:
            self.errors[fid] = f"Specify a valid value for {fid}: users are identified by accountId."
            return None
        if value["accountId"] is None:
            return None
        user = self.config.user(value["accountId"])
        if user is None or not user.active:
            self.errors[fid] = f"User '{value['accountId']}' does not exist or cannot be {fid}."
        return user

    def _parse_assignee(self, value):
        return self.user("assignee", value)

    def _parse_reporter(self, value):
        return self.user("reporter", value)

    def _parse_duedate(self, value):
        if value in (None, ""):
            return None
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            self.errors["duedate"] = f"Error parsing date string: {value}"
            return None

    def _parse_parent(self, value):
        if value is None:
            return None
        ref = self._ref(value)
        qs = Issue.objects.filter(world=self.req.world)
        parent = None
        if ref:
            parent = (qs.filter(ext_id=int(ref)) if ref.isdecimal() else qs.filter(key=ref.upper())).first()
        if parent is None:
            self.errors["parent"] = f"Could not find issue by id or key: {ref}"
        return parent

    def _parse_cf10016(self, value):  # story points
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            self.errors[STORY_POINTS_FIELD] = "Operation value must be a number"
            return None
        return value

    def _parse_cf10020(self, value):  # sprint: one sprint id (or null)
        if value is None:
            return None
        if isinstance(value, dict):
            value = value.get("id")
        try:
            sprint_id = int(value)
        except (TypeError, ValueError):
            self.errors[SPRINT_FIELD] = "Number value expected as the Sprint id."
            return None
        sprint = Sprint.objects.filter(world=self.req.world, ext_id=sprint_id).first()
        if sprint is None:
            self.errors[SPRINT_FIELD] = f"Sprint with id {sprint_id} does not exist."
        elif sprint.state == "closed":
            self.errors[SPRINT_FIELD] = (
                f"Issue can be assigned only to active or future sprints ({sprint.name})."
            )
        return sprint

    def _list(self, fid, value):
        if not isinstance(value, list):
            self.errors[fid] = f"Field '{fid}' takes a list."
            return None
        if fid == "labels":
            for label in value:
                if not isinstance(label, str) or not label:
                    self.errors["labels"] = "Labels must be non-empty strings."
                    return None
                if " " in label:
                    self.errors["labels"] = f"The label '{label}' contains spaces which is invalid."
                    return None
            return list(dict.fromkeys(value))
        find = self.config.component if fid == "components" else self.config.version
        what = "Component" if fid == "components" else "Version"
        out = []
        for item in value:
            ref = self._ref(item)
            found = find(self.project, ref) if ref else None
            if found is None:
                self.errors[fid] = f"{what} name '{ref}' is not valid"
                return None
            if found not in out:
                out.append(found)
        return out


def touched_lists(body):
    """The list fields (labels, components, fix versions, sprint) a request body's ``fields`` or
    ``update`` names: the only ones an edit needs to read first."""
    names = set()
    for part in ("fields", "update"):
        if isinstance(body.get(part), dict):
            names.update(body[part])
    return sorted(names & (LIST_FIELDS | {SPRINT_FIELD}))


def current_values(config, issue, fids):
    """The current values of the list fields ``fids`` of an issue loaded for them
    (``fetch_issues``), in IssueInput's terms."""
    out = {}
    if "labels" in fids:
        out["labels"] = [name for _, name in issue.label_rows]
    if "components" in fids:
        out["components"] = [config.component_by_pk[pk] for pk in issue.component_ids]
    if "fixVersions" in fids:
        out["fixVersions"] = [config.version_by_pk[pk] for pk in issue.version_ids]
    return out


def shown(fid, value):
    """A value as the change log keeps it (JSON, readable)."""
    if value is None:
        return None
    if fid == "description" or fid == "comment":
        return adf_to_text(value)
    if fid in ("assignee", "reporter"):
        return value.account_id
    if fid in ("parent", "project"):
        return value.key
    if fid == "duedate":
        return value.isoformat()
    if fid == SPRINT_FIELD:
        return value.ext_id
    if isinstance(value, list):
        return [v if isinstance(v, str) else v.name for v in value]
    if hasattr(value, "name"):
        return value.name
    return value

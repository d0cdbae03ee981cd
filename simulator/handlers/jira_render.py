"""How Jira shows its entities: the JSON of users, statuses, projects, ... as Cloud writes them.

Every ``self`` is absolute and carries the world's mount and the call's REST version
(``req.api_url``), because real clients navigate with it.
"""

from simulator.models import STATUS_CATEGORIES


def jira_time(value):
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def jira_date(value):
    return value.isoformat() if value else None


def avatar_urls(base, kind, ident):
    url = f"{base}/secure/{kind}avatar?avatarId={ident}"
    return {
        size: f"{url}&size={n}" for size, n in (("48x48", 48), ("24x24", 24), ("16x16", 16), ("32x32", 32))
    }


def user_json(req, user):
    if user is None:
        return None
    return {
        "self": f"{req.api_url}/user?accountId={user.account_id}",
        "accountId": user.account_id,
        "accountType": "atlassian",
        "emailAddress": user.email,
        "avatarUrls": avatar_urls(req.base_url, "user", user.account_id),
        "displayName": user.display_name,
        "active": user.active,
        "timeZone": user.time_zone,
    }


def status_category_json(req, key):
    ident, name, color = STATUS_CATEGORIES[key]
    return {
        "self": f"{req.api_url}/statuscategory/{ident}",
        "id": ident,
        "key": key,
        "colorName": color,
        "name": name,
    }


def status_json(req, status):
    return {
        "self": f"{req.api_url}/status/{status.ext_id}",
        "description": status.description,
        "iconUrl": f"{req.base_url}/images/icons/statuses/generic.png",
        "name": status.name,
        "id": str(status.ext_id),
        "statusCategory": status_category_json(req, status.category),
    }


def issue_type_json(req, issue_type):
    return {
        "self": f"{req.api_url}/issuetype/{issue_type.ext_id}",
        "id": str(issue_type.ext_id),
        "description": issue_type.description,
        "iconUrl": f"{req.base_url}/images/icons/issuetypes/{issue_type.name.lower()}.svg",
        "name": issue_type.name,
        "subtask": issue_type.subtask,
        "avatarId": 10300 + issue_type.hierarchy_level,
        "hierarchyLevel": issue_type.hierarchy_level,
    }


def priority_json(req, priority):
    if priority is None:
        return None
    return {
        "self": f"{req.api_url}/priority/{priority.ext_id}",
        "statusColor": priority.status_color,
        "description": priority.description,
        "iconUrl": f"{req.base_url}/images/icons/priorities/{priority.name.lower()}.svg",
        "name": priority.name,
        "id": str(priority.ext_id),
        "isDefault": priority.is_default,
    }


def resolution_json(req, resolution):
    if resolution is None:
        return None
    return {
        "self": f"{req.api_url}/resolution/{resolution.ext_id}",
        "id": str(resolution.ext_id),
        "description": resolution.description,
        "name": resolution.name,
    }


def component_json(req, component):
    return {
        "self": f"{req.api_url}/component/{component.ext_id}",
        "id": str(component.ext_id),
        "name": component.name,
        "description": component.description,
    }


def version_json(req, version):
    out = {
        "self": f"{req.api_url}/version/{version.ext_id}",
        "id": str(version.ext_id),
        "name": version.name,
        "archived": False,
        "released": version.released,
    }
    if version.release_date:
        out["releaseDate"] = version.release_date.isoformat()
    return out


def project_ref_json(req, project):
    """The short project form nested in issues."""
    return {
        "self": f"{req.api_url}/project/{project.ext_id}",
        "id": str(project.ext_id),
        "key": project.key,
        "name": project.name,
        "projectTypeKey": project.project_type,
        "simplified": False,
        "avatarUrls": avatar_urls(req.base_url, "project", project.ext_id),
    }


def link_type_json(req, link_type):
    return {
        "id": str(link_type.ext_id),
        "name": link_type.name,
        "inward": link_type.inward,
        "outward": link_type.outward,
        "self": f"{req.api_url}/issueLinkType/{link_type.ext_id}",
    }


def page_bean(req, path, values, start_at, max_results, total, extra_query=""):
    """Jira's page bean (``/project/search`` and friends) with an absolute ``nextPage``."""
    out = {
        "self": f"{req.api_url}{path}?startAt={start_at}&maxResults={max_results}{extra_query}",
        "maxResults": max_results,
        "startAt": start_at,
        "total": total,
        "isLast": start_at + len(values) >= total,
        "values": values,
    }
    if not out["isLast"]:
        out["nextPage"] = (
            f"{req.api_url}{path}?startAt={start_at + max_results}&maxResults={max_results}{extra_query}"
        )
    return out

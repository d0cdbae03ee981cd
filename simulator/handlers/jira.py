"""Jira platform REST (v3, v2 and latest over one store): every route, from the modules of each
concern."""

from simulator.handlers import (
    jira_comments,
    jira_history,
    jira_issues,
    jira_jql_parse,
    jira_links,
    jira_meta,
    jira_meta_search,
    jira_search,
    jira_workflow,
)

routes = (
    jira_meta.routes
    + jira_meta_search.routes
    + jira_issues.routes
    + jira_workflow.routes
    + jira_comments.routes
    + jira_history.routes
    + jira_links.routes
    + jira_search.routes
    + jira_jql_parse.routes
)

"""Jira platform REST (v3, v2 and latest over one store): every route, from the modules of each
concern."""

from simulator.handlers import jira_meta

routes = jira_meta.routes

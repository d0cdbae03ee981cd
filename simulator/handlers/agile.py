"""Jira Software (agile 1.0) handlers: boards, sprints, backlog."""

from simulator.routing import JIRA, Routes

routes = Routes(api=JIRA)

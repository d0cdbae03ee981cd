"""Jira Software (agile 1.0) handlers: boards, sprints, backlog, and moving issues between them.

Agile ids (boards, sprints) are integers. Errors use Jira's ``{"errorMessages", "errors"}`` shape.
"""

from simulator.handlers import agile_boards, agile_rank, agile_sprints

routes = agile_boards.routes + agile_sprints.routes + agile_rank.routes

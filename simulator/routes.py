"""THE route table: every operation the simulator serves, through both doors."""

from simulator.handlers import agile, confluence, jira

TABLE = jira.routes + agile.routes + confluence.routes

"""Confluence handlers: v2 (/wiki/api/v2) and the classic v1 content API (/wiki/rest/api)."""

from simulator.routing import CONFLUENCE_V2, Routes

routes = Routes(api=CONFLUENCE_V2)

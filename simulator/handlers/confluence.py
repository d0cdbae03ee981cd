"""Confluence handlers: v2 (/wiki/api/v2) and the classic v1 content API (/wiki/rest/api), over
one page store (confluence_pages.py)."""

from simulator.handlers import confluence_v1, confluence_v1_search, confluence_v2

routes = confluence_v2.routes + confluence_v1.routes + confluence_v1_search.routes

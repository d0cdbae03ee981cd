"""Confluence Cloud REST v2 (/wiki/api/v2): spaces, pages, page children, ancestors, versions and
labels, over the page store of confluence_pages.py.

Lists are cursor-paged (keyset: the cursor carries the sort values of the last row given) with a
relative ``_links.next``, ``_links.base`` and a ``Link`` header. Errors use the v2 shape
``{"errors": [{"status", "code", "title", "detail"}]}``.
"""

from simulator.handlers import confluence_v2_pages, confluence_v2_spaces, confluence_v2_tree

routes = confluence_v2_spaces.routes + confluence_v2_pages.routes + confluence_v2_tree.routes

"""Atlassian Document Format (ADF): Jira v3's rich text. The store keeps ADF; REST v2 and
``latest`` speak plain strings, converted here in both directions."""


def text_to_adf(text):
    """A plain (v2) string as an ADF document: one paragraph per line; None for no text."""
    if text is None or text == "":
        return None
    content = []
    for line in str(text).split("\n"):
        paragraph = {"type": "paragraph", "content": []}
        if line:
            paragraph["content"].append({"type": "text", "text": line})
        content.append(paragraph)
    return {"type": "doc", "version": 1, "content": content}


_BLOCKS = {
    "paragraph",
    "heading",
    "listItem",
    "codeBlock",
    "blockquote",
    "rule",
    "tableRow",
    "panel",
    "mediaSingle",
    "decisionItem",
    "taskItem",
}


def adf_to_text(doc):
    """The plain text of an ADF document (what v2 shows and what JQL's ``~`` searches)."""
    if not doc:
        return None
    if isinstance(doc, str):
        return doc
    lines = []
    _walk(doc, lines, [])
    text = "\n".join(lines)
    return text


def _walk(node, lines, current):
    kind = node.get("type")
    if kind == "text":
        current.append(node.get("text", ""))
    elif kind == "hardBreak":
        current.append("\n")
    elif kind == "mention":
        current.append(node.get("attrs", {}).get("text", ""))
    elif kind == "emoji":
        current.append(node.get("attrs", {}).get("text") or node.get("attrs", {}).get("shortName", ""))
    elif kind in ("inlineCard", "blockCard"):
        current.append(node.get("attrs", {}).get("url", ""))
    children = node.get("content") or []
    if kind in _BLOCKS or kind == "doc":
        own = []
        for child in children:
            _walk(child, lines, own)
        if own and kind != "doc":
            lines.append("".join(own))
        elif kind == "paragraph" and not own:
            lines.append("")
    else:
        for child in children:
            _walk(child, lines, current)


def is_adf(value):
    """Whether ``value`` is a well-formed ADF document (the shape v3 insists on)."""
    if not isinstance(value, dict) or value.get("type") != "doc" or value.get("version") != 1:
        return False
    content = value.get("content")
    return isinstance(content, list) and all(_is_node(n) for n in content)


def _is_node(node):
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        return False
    if node["type"] == "text" and not isinstance(node.get("text"), str):
        return False
    content = node.get("content", [])
    return isinstance(content, list) and all(_is_node(n) for n in content)

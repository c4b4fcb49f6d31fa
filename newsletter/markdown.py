"""Summary text is Markdown written by editors: render it safely to HTML and readably to plain text.

Raw HTML is escaped, never passed through, and only http(s) and mailto links survive, so a summary
cannot smuggle script, tracking pixels or relative links into a message. Images are off for the
same reason: a digest needs none, and a remote image is a tracking pixel.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode
from markupsafe import Markup

__all__ = ["SAFE_SCHEMES", "WIDTH", "markdown_to_text", "render_markdown", "smart_quotes", "wrap_text"]

SAFE_SCHEMES = ("http://", "https://", "mailto:")
WIDTH = 72


def _safe_link(url: str) -> bool:
    return url.strip().lower().startswith(SAFE_SCHEMES)


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "typographer": True})
    md.enable("smartquotes")
    md.disable("image")
    md.validateLink = _safe_link  # type: ignore[method-assign]
    return md


_MD = _parser()


def render_markdown(md: str) -> Markup:
    """HTML for a template: safe to insert unescaped because the parser never emits raw HTML."""
    return Markup(_MD.render(md))


def markdown_to_text(md: str, width: int = WIDTH) -> str:
    """The text/plain twin of `render_markdown`: wrapped paragraphs, `- item`, `text <url>`."""
    root = SyntaxTreeNode(_MD.parse(md))
    return "\n\n".join(_blocks(root.children, width)).rstrip()


def _blocks(nodes: list[SyntaxTreeNode], width: int) -> list[str]:
    return [text for node in nodes if (text := _block(node, width))]


def _block(node: SyntaxTreeNode, width: int) -> str:
    if node.type in ("paragraph", "heading"):
        return wrap_text(_inline(node.children[0]) if node.children else "", width)
    if node.type in ("bullet_list", "ordered_list"):
        return _list(node, width)
    if node.type == "blockquote":
        inner = "\n\n".join(_blocks(node.children, width - 2))
        return "\n".join(("> " + line).rstrip() for line in inner.splitlines())
    if node.type in ("code_block", "fence"):
        return textwrap.indent(node.content.rstrip("\n"), "    ")
    if node.type == "hr":
        return "-" * min(width, 20)
    return "\n\n".join(_blocks(node.children, width))


def _list(node: SyntaxTreeNode, width: int) -> str:
    start = int(str(node.attrs.get("start", 1)))
    bullet: Callable[[int], str] = (
        (lambda i: f"{start + i}. ") if node.type == "ordered_list" else (lambda i: "- "))
    tight = any(p.hidden for item in node.children for p in item.children if p.type == "paragraph")
    items = []
    for i, item in enumerate(node.children):
        mark = bullet(i)
        body = "\n\n".join(_blocks(item.children, width - len(mark)))
        items.append(mark + textwrap.indent(body, " " * len(mark)).lstrip(" "))
    return ("\n" if tight else "\n\n").join(items)


def _inline(node: SyntaxTreeNode) -> str:
    parts = []
    for child in node.children:
        if child.type in ("text", "code_inline", "html_inline"):
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
        elif child.type == "link":
            parts.append(_link(child))
        else:
            parts.append(_inline(child))
    return "".join(parts)


def _link(node: SyntaxTreeNode) -> str:
    href = str(node.attrs.get("href", ""))
    text = _inline(node)
    if text in (href, href.removeprefix("mailto:")):
        return f"<{text}>"
    return f"{text} <{href}>"


_NOT_AFTER_WORD = r"(?<![\w.,;:!?)\]}%\u2019\u201d])"
"""A quote opens unless it follows a word or closing punctuation (the typographer's rule, roughly)."""
_DOUBLE_OPEN = re.compile(_NOT_AFTER_WORD + r'"(?=\S)')
_SINGLE_OPEN = re.compile(_NOT_AFTER_WORD + r"'(?=\w)")
_URL_OR_CODE = re.compile(r"(`[^`]*`|<?\b(?:https?://|mailto:|www\.)\S+)")


def smart_quotes(text: str) -> str:
    """Typographic quotes for a line of prose (a headline): “ ” ‘ ’ for straight ones, the way
    the Markdown typographer does it for bodies; URLs and `code` keep theirs."""
    parts = _URL_OR_CODE.split(text)
    for i in range(0, len(parts), 2):
        part = _DOUBLE_OPEN.sub("\u201c", parts[i]).replace('"', "\u201d")
        parts[i] = _SINGLE_OPEN.sub("\u2018", part).replace("'", "\u2019")
    return "".join(parts)


def wrap_text(text: str, width: int = WIDTH) -> str:
    """Wrap without breaking words or URLs, keeping hard line breaks."""
    return "\n".join(
        textwrap.fill(line, width, break_long_words=False, break_on_hyphens=False)
        for line in text.split("\n"))

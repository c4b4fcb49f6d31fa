"""Turn an edition into one message per variant: Jinja2, then premailer, once, never per recipient.

Recipient values are unknown here. Each stands in the output as a marker (see `new_markers`) that
the personaliser replaces later, so per recipient there is only string substitution. The markers
carry a fresh random nonce per render, so no summary text can forge or collide with one.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

import jinja2
import lxml.etree
import lxml.html
from premailer import Premailer
from premailer.premailer import PremailerError

from ..domain import Branding, EditionContent
from ..errors import RenderError
from ..markdown import SAFE_SCHEMES, markdown_to_text, render_markdown, wrap_text
from ..paths import templates_dir
from ..text import visible_line as clean_header

__all__ = ["GMAIL_CLIP_BYTES", "PLACEHOLDERS", "RenderedVariant", "Renderer", "check_rendered",
           "clean_header", "new_markers"]

PLACEHOLDERS = ("name", "email", "topics", "unsubscribe_url", "preferences_url")
GMAIL_CLIP_BYTES = 102 * 1024


@dataclass(frozen=True)
class RenderedVariant:
    """The body every recipient of a variant shares; `markers[p]` stands where their value goes."""

    subject: str
    preheader: str
    html: str
    text: str
    markers: Mapping[str, str]


def new_markers() -> Mapping[str, str]:
    """`nl<16 hex nonce><placeholder without _>x`: only [a-z0-9], so autoescaping, lxml
    serialisation and URL attributes all leave it byte-for-byte intact."""
    nonce = secrets.token_hex(8)
    return MappingProxyType({p: f"nl{nonce}{p.replace('_', '')}x" for p in PLACEHOLDERS})


def is_safe_url(url: object) -> bool:
    return isinstance(url, str) and url.strip().lower().startswith(SAFE_SCHEMES)


def underline(text: str, char: str = "=") -> str:
    """A plain-text heading: wrapped, then ruled as wide as its longest line."""
    wrapped = wrap_text(" ".join(text.split()))
    return wrapped + "\n" + char * max(map(len, wrapped.splitlines()), default=0)


class Renderer:
    """Holds one Jinja2 environment: templates compile once and are reused for every variant."""

    def __init__(self, branding: Branding, override_dir: str | Path | None = None) -> None:
        self.branding = branding
        search = ([str(override_dir)] if override_dir else []) + [str(templates_dir())]
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(search),
            autoescape=jinja2.select_autoescape(["html"]),
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.env.filters.update(markdown=render_markdown, markdown_text=markdown_to_text,
                                wrap=wrap_text, underline=underline)
        self.env.tests["safe_url"] = is_safe_url

    def render_message(self, template_base: str, context: dict[str, Any]) -> RenderedVariant:
        """Render `email/<base>.html` and `.txt`; `context` supplies `subject` and `preheader`."""
        markers = new_markers()
        subject = clean_header(str(context.get("subject", "")))
        preheader = clean_header(str(context.get("preheader", "")))
        full = {**context, "subject": subject, "preheader": preheader,
                "branding": self.branding, "recipient": markers}
        html_name = f"email/{template_base}.html"
        html = inline_css(self._render(html_name, full), html_name)
        text = self._render(f"email/{template_base}.txt", full).rstrip() + "\n"
        return RenderedVariant(subject, preheader, html, text, markers)

    def render_variant(self, edition: EditionContent,
                       summary_ids: tuple[int, ...]) -> RenderedVariant:
        return self.render_message("edition", self.edition_context(edition, summary_ids))

    def edition_context(self, edition: EditionContent,
                        summary_ids: tuple[int, ...]) -> dict[str, Any]:
        """Edition-only template variables; `render_message` adds branding, recipient, subject…"""
        items = edition.subset(summary_ids)
        known = {item.id for item in edition.items}
        if not items or not set(summary_ids) <= known:
            raise RenderError(f"edition {edition.month}: variant {summary_ids} does not match "
                              f"its summaries {sorted(known)}")
        archive = f"archive/{edition.month}"
        others = [{"headline": item.headline,
                   "url": self.branding.url(f"{archive}#{quote(item.uid)}")}
                  for item in edition.items if item.id not in summary_ids]
        return {"subject": edition.subject, "preheader": edition.preheader, "edition": edition,
                "items": items, "others": others, "archive_url": self.branding.url(archive)}

    def _render(self, name: str, context: dict[str, Any]) -> str:
        try:
            return self.env.get_template(name).render(context)
        except jinja2.TemplateError as err:
            raise RenderError(f"{name}: {type(err).__name__}: {err}") from err


def inline_css(html: str, template: str = "message") -> str:
    """Copy class rules into style="" (many clients drop <style>); @media rules stay in <head>,
    made !important by premailer so that mobile and dark-mode overrides beat the inline styles."""
    premailer = Premailer(html, remove_classes=False, strip_important=False,
                          disable_validation=True, allow_network=False,
                          cssutils_logging_level=logging.CRITICAL)
    try:
        return str(premailer.transform(pretty_print=True))
    except (PremailerError, lxml.etree.LxmlError, ValueError) as err:
        raise RenderError(f"{template}: inlining CSS failed: {err}") from err


def check_rendered(r: RenderedVariant) -> list[str]:
    """Problems that make a message unsendable; empty when it may go out."""
    problems = []
    if not r.subject.strip():
        problems.append("subject is empty")
    size = len(r.html.encode("utf-8"))
    if size > GMAIL_CLIP_BYTES:
        problems.append(f"HTML is {size} bytes ({size / 1024:.1f} KB): Gmail clips messages "
                        f"over {GMAIL_CLIP_BYTES // 1024} KB")
    problems.extend(f"link is not absolute http(s)/mailto: {url!r}" for url in _bad_links(r))
    return problems


def _bad_links(r: RenderedVariant) -> Iterator[str]:
    markers = set(r.markers.values())
    try:
        root = lxml.html.document_fromstring(r.html)
    except (lxml.etree.LxmlError, ValueError):
        yield "<HTML could not be parsed>"
        return
    for url in root.xpath("//@href | //@src"):
        if str(url).strip() not in markers and not is_safe_url(str(url)):
            yield str(url)

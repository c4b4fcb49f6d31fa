"""Turn an edition into one message per variant: Jinja2, then premailer, once, never per recipient.

Recipient values are unknown here. Each stands in the output as a marker (see `new_markers`) that
the personaliser replaces later, so per recipient there is only string substitution. The markers
carry a fresh random nonce per render, so no summary text can forge or collide with one.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
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
from ..i18n import DEFAULT_LANGUAGE, format_month, translations
from ..markdown import SAFE_SCHEMES, WIDTH, markdown_to_text, render_markdown, smart_quotes, wrap_text
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
    language: str = DEFAULT_LANGUAGE


LinkRewrite = Callable[[EditionContent, tuple[int, ...], RenderedVariant], RenderedVariant]
"""Applied once to each rendered variant (click tracking: `mail.clicks.ClickLinks.rewrite`)."""


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
    """One Jinja2 environment per language, made on first use: templates compile once per
    language and are reused for every variant. Each environment has its language's `email`
    catalogue installed for good, so a render never swaps translations under another thread."""

    def __init__(self, branding: Branding, override_dir: str | Path | None = None, *,
                 rewrite_links: LinkRewrite | None = None) -> None:
        self.branding = branding
        self.rewrite_links = rewrite_links
        self._search = ([str(override_dir)] if override_dir else []) + [str(templates_dir())]
        self._envs: dict[str, jinja2.Environment] = {}
        self._lock = threading.Lock()
        self.env = self.env_for(DEFAULT_LANGUAGE)

    def env_for(self, language: str) -> jinja2.Environment:
        """The environment whose gettext speaks `language`; ValueError for an unknown one."""
        env = self._envs.get(language)
        if env is None:
            catalogue = translations(language, "email")
            with self._lock:
                env = self._envs.get(language)
                if env is None:
                    env = self._envs[language] = self._new_env(catalogue)
        return env

    def _new_env(self, catalogue: Any) -> jinja2.Environment:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self._search),
            autoescape=jinja2.select_autoescape(["html"]),
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
            extensions=["jinja2.ext.i18n"])
        env.install_gettext_translations(catalogue, newstyle=True)  # type: ignore[attr-defined]
        env.filters.update(markdown=render_markdown, markdown_text=markdown_to_text,
                           wrap=wrap_text, underline=underline, smartquotes=smart_quotes)
        env.tests["safe_url"] = is_safe_url
        return env

    def render_message(self, template_base: str, context: dict[str, Any],
                       language: str = DEFAULT_LANGUAGE) -> RenderedVariant:
        """Render `email/<base>.html` and `.txt` in `language`; `context` supplies `subject` and
        `preheader`."""
        markers = new_markers()
        subject = clean_header(str(context.get("subject", "")))
        preheader = clean_header(str(context.get("preheader", "")))
        full = {**context, "subject": subject, "preheader": preheader, "language": language,
                "branding": self.branding, "recipient": markers, "rule": "-" * WIDTH}
        env = self.env_for(language)
        html_name = f"email/{template_base}.html"
        html = inline_css(self._render(env, html_name, full), html_name)
        text = self._render(env, f"email/{template_base}.txt", full).rstrip() + "\n"
        return RenderedVariant(subject, preheader, html, text, markers, language)

    def render_variant(self, edition: EditionContent, summary_ids: tuple[int, ...],
                       language: str = DEFAULT_LANGUAGE) -> RenderedVariant:
        rendered = self.render_message(
            "edition", self.edition_context(edition, summary_ids, language), language)
        if self.rewrite_links is None:
            return rendered
        return self.rewrite_links(edition, summary_ids, rendered)

    def edition_context(self, edition: EditionContent, summary_ids: tuple[int, ...],
                        language: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
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
        year, month = (int(part) for part in edition.month.split("-"))
        return {"subject": edition.subject, "preheader": edition.preheader, "edition": edition,
                "title": format_month(year, month, language), "items": items, "others": others,
                "archive_url": self.branding.url(archive)}

    @staticmethod
    def _render(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
        try:
            return env.get_template(name).render(context)
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

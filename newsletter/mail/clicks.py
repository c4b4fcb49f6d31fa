"""Click links: an edition's summary links, rewritten once per variant to a signed `/r/TOKEN`.

A token names (edition month, summary uid, target URL) and nothing about the reader, so every
recipient of a variant gets the same bytes and rendering stays once per variant. What is rewritten:
the links a summary carries (its citation's DOI or URL, the links in its note, body and practice
implications) and the "Also this month" archive links to the summaries a reader does not get.
What is not: the per-recipient unsubscribe and preferences links, the edition's "view in your
browser" link, mailto: links, and anything not http(s).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from urllib.parse import quote, urlsplit

import lxml.etree
import lxml.html

from newsletter.tokens import InvalidToken, Purpose, TokenSigner

from ..config import Config
from ..domain import EditionContent, SummaryItem
from ..markdown import render_markdown
from .render import RenderedVariant

__all__ = ["MAX_TOKEN_CHARS", "ClickLinks", "ClickTarget", "UntrackableLink", "check_target",
           "rewrite_html", "rewrite_text", "summary_links"]

MAX_TOKEN_CHARS = 500
"""`TokenSigner.verify` refuses longer tokens; a link whose token would be longer stays as it is."""
MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
UID = re.compile(r"[A-Za-z0-9_-]{1,32}")
HREF = re.compile(r'(\shref=")([^"]*)(")')
TRAILING = ".,;:!?)]}'"
URL_STARTS = r"""(?<![^\s<(\['"])"""
"""Text start, white space or an opening bracket or quote before a URL in the text part."""
URL_ENDS = rf"""(?=$|[\s<>"]|[{re.escape(TRAILING)}](?:$|[\s<>"]))"""
"""After it: the end, white space, `<>"`, or one punctuation mark that ends a sentence there."""
FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f]")


class UntrackableLink(ValueError):
    """A link that may not sit behind /r/: not absolute http(s), or with spaces or control
    characters that a Location header must never carry."""


@dataclass(frozen=True)
class ClickTarget:
    """What one click counts for, and where it goes."""

    month: str
    summary_uid: str
    url: str

    def payload(self) -> str:
        """`month uid url`: none of the three contains a space, so the split back is exact."""
        return f"{self.month} {self.summary_uid} {self.url}"

    @classmethod
    def from_payload(cls, payload: str) -> ClickTarget:
        parts = payload.split(" ", 2)
        if len(parts) != 3:
            raise InvalidToken("this link is not valid")
        target = cls(*parts)
        try:
            target.check()
        except UntrackableLink as err:
            raise InvalidToken("this link is not valid") from err
        return target

    def check(self) -> None:
        if not MONTH.fullmatch(self.month):
            raise UntrackableLink(f"edition month {self.month!r} is not YYYY-MM")
        if not UID.fullmatch(self.summary_uid):
            raise UntrackableLink(f"summary uid {self.summary_uid!r} is not a uid")
        check_target(self.url)


def check_target(url: str) -> None:
    """UntrackableLink unless `url` is an absolute http(s) URL safe to put in a Location header."""
    if FORBIDDEN.search(url):
        raise UntrackableLink(f"link {url[:80]!r} contains spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise UntrackableLink(f"link {url[:80]!r} is not an absolute http(s) URL")


class ClickLinks:
    """Mints and reads click tokens, and rewrites a rendered variant's links to them."""

    def __init__(self, signer: TokenSigner, base_url: str) -> None:
        self.signer = signer
        self.base = base_url.rstrip("/")

    @classmethod
    def for_config(cls, config: Config) -> ClickLinks | None:
        """None while click tracking is off (the default)."""
        if not config.click_tracking:
            return None
        return cls(TokenSigner(config.secret_keys), config.base_url)

    def token(self, target: ClickTarget) -> str:
        """UntrackableLink for a javascript:, data:, relative or otherwise unsafe target."""
        target.check()
        return self.signer.sign(Purpose.CLICK, target.payload())

    def url(self, target: ClickTarget) -> str | None:
        """The /r/ link for `target`, or None when its token would be too long to verify."""
        token = self.token(target)
        return f"{self.base}/r/{token}" if len(token) <= MAX_TOKEN_CHARS else None

    def read(self, token: str) -> ClickTarget:
        """The target a genuine token names; InvalidToken for anything else."""
        return ClickTarget.from_payload(self.signer.verify(Purpose.CLICK, token))

    def rewrite(self, edition: EditionContent, summary_ids: tuple[int, ...],
                rendered: RenderedVariant) -> RenderedVariant:
        """`rendered` with every tracked link of this variant pointing to /r/, in both parts."""
        replacements = self.replacements(edition, summary_ids)
        if not replacements:
            return rendered
        return replace(rendered, html=rewrite_html(rendered.html, replacements),
                       text=rewrite_text(rendered.text, replacements))

    def replacements(self, edition: EditionContent,
                     summary_ids: tuple[int, ...]) -> dict[str, str]:
        """Original URL → /r/ URL for this variant; a URL in two summaries counts for the first."""
        owners: dict[str, str] = {}
        wanted = set(summary_ids)
        for item in edition.items:
            urls = summary_links(item) if item.id in wanted else (self._archive_url(edition, item),)
            for url in urls:
                owners.setdefault(url, item.uid)
        result = {}
        for url, uid in owners.items():
            try:
                tracked = self.url(ClickTarget(edition.month, uid, url))
            except UntrackableLink:
                continue
            if tracked is not None:
                result[url] = tracked
        return result

    def _archive_url(self, edition: EditionContent, item: SummaryItem) -> str:
        """As `Renderer.edition_context` writes an "Also this month" link."""
        return f"{self.base}/archive/{edition.month}#{quote(item.uid)}"


@lru_cache(maxsize=64)
def summary_links(item: SummaryItem) -> tuple[str, ...]:
    """The hrefs a summary puts in a message, exactly as the Markdown renderer writes them;
    cached, since every variant holding the summary asks again (the Markdown is most of the cost)."""
    links = [item.citation.link] if item.citation.link else []
    for md in (item.note_md, item.body_md, item.implications_md):
        if md:
            links.extend(_hrefs(str(render_markdown(md))))
    return tuple(links)


def _hrefs(fragment: str) -> Iterable[str]:
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (lxml.etree.LxmlError, ValueError):
        return []
    return [str(href) for href in root.xpath("//a/@href")]


def rewrite_html(document: str, replacements: Mapping[str, str]) -> str:
    """Swap the href values found in `replacements`; every other byte stays as rendered."""
    def swap(match: re.Match[str]) -> str:
        tracked = replacements.get(html.unescape(match[2]))
        return match[0] if tracked is None else match[1] + tracked + match[3]
    return HREF.sub(swap, document)


def rewrite_text(text: str, replacements: Mapping[str, str]) -> str:
    """Swap each whole occurrence of a known URL in the plain text: one not run into other URL
    characters on either side, though a sentence's full stop or a closing bracket may follow."""
    urls = "|".join(map(re.escape, sorted(replacements, key=len, reverse=True)))
    pattern = re.compile(f"{URL_STARTS}({urls}){URL_ENDS}")
    return pattern.sub(lambda match: replacements[match[1]], text)

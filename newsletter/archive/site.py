"""The web archive: every sent edition as pages, a search index and an Atom feed.

One `ArchiveSite` knows every page by its path under `archive/` and renders any one of them;
`build_site` writes them all to a folder, and the Flask blueprint (`views.py`) serves the same
paths live, so the static and live archives cannot drift apart. Pages link to each other by
relative paths ending in `index.html`, so the built folder works from any host, under any prefix,
and straight from disk (file://). Nothing loads from elsewhere: no CDN, no web fonts; only the
feed carries absolute URLs (built from `base_url`).

Only what was published appears: editions whose status is sent, and in them ready summaries.
"""

from __future__ import annotations

import json
import posixpath
import re
import shutil
import tempfile
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import jinja2
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..content.models import Edition, EditionItem, EditionStatus, Summary, SummaryStatus
from ..content.store import edition_content
from ..context import Newsletter
from ..db.models import ResearchType, Topic
from ..domain import Branding, EditionContent, Named, SummaryItem
from ..errors import ContentError
from ..i18n import DEFAULT_LANGUAGE, format_date, translations
from ..mail.compose import branding_for, make_renderer
from ..mail.render import Renderer
from ..markdown import markdown_to_text
from ..taxonomy import slugify
from .search import snippet

__all__ = ["ARCHIVE_PREFIX", "ArchiveSite", "BuildReport", "Entry", "Page", "Published",
           "PublishedEdition", "archive_env", "build_site", "excerpt", "load_published", "logo",
           "open_site"]

ARCHIVE_PREFIX = "archive"
FEED_ENTRIES = 50
MARKER = ".newsletter-archive"
ATOM = "http://www.w3.org/2005/Atom"
_TEMPLATES = "web/archive/"
_MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".js": "text/javascript; charset=utf-8",
                ".xml": "application/atom+xml; charset=utf-8"}


@dataclass(frozen=True)
class PublishedEdition:
    content: EditionContent
    sent_at: datetime


@dataclass(frozen=True)
class Published:
    """What the archive may show, newest edition first, plus the whole taxonomy."""

    editions: tuple[PublishedEdition, ...]
    topics: tuple[Named, ...]
    research_types: tuple[Named, ...]


@dataclass(frozen=True)
class Entry:
    """A summary as the archive lists it: its edition and the path of its own page."""

    item: SummaryItem
    edition: PublishedEdition
    path: str

    @property
    def edition_path(self) -> str:
        return f"{self.item.month}/index.html"


@dataclass(frozen=True)
class Page:
    body: bytes
    media_type: str


@dataclass(frozen=True)
class BuildReport:
    root: Path
    pages: int
    editions: int
    summaries: int


def load_published(session: Session, months: Iterable[str] | None = None) -> Published:
    """Sent editions with their ready summaries; drafts and unsent months never leave here.
    `months`: only those editions (a search answer needs a few, not the whole archive)."""
    query = select(Edition).where(Edition.status == EditionStatus.SENT)
    if months is not None:
        query = query.where(Edition.month.in_(sorted(set(months))))
    query = (query
             .order_by(Edition.month.desc())
             .options(selectinload(Edition.items).selectinload(EditionItem.summary)
                      .selectinload(Summary.topics)))
    editions = []
    for edition in session.scalars(query).unique():
        content = edition_content(edition)
        ready = {row.summary_id for row in edition.items
                 if row.summary.status is SummaryStatus.READY}
        items = tuple(item for item in content.items if item.id in ready)
        if items:
            sent_at = edition.sent_at or edition.updated_at
            editions.append(PublishedEdition(replace(content, items=items), sent_at))
    topics = tuple(Named(t.slug, t.name) for t in session.scalars(
        select(Topic).order_by(Topic.position)))
    types = tuple(Named(t.slug, t.name) for t in session.scalars(
        select(ResearchType).order_by(ResearchType.position)))
    return Published(tuple(editions), topics, types)


def relative(page: str, target: str) -> str:
    """The link from `page` to `target`, both paths under archive/."""
    return posixpath.relpath(target, posixpath.dirname(page) or ".")


def page_url(path: str) -> str:
    """`2015-01/index.html` → `archive/2015-01/`: the address readers share."""
    return f"{ARCHIVE_PREFIX}/" + path.removesuffix("index.html")


def _entries(published: Published) -> list[Entry]:
    """Every summary, newest edition first, in edition order; page paths unique per month."""
    entries = []
    for edition in published.editions:
        taken: set[str] = set()
        for item in edition.content.items:
            slug = slugify(item.headline)[:80].rstrip("-") or "summary"
            unique, n = slug, 2
            while unique in taken:
                unique, n = f"{slug}-{n}", n + 1
            taken.add(unique)
            entries.append(Entry(item, edition, f"{item.month}/{unique}/index.html"))
    return entries


def archive_env(renderer: Renderer, language: str = DEFAULT_LANGUAGE) -> jinja2.Environment:
    """The renderer's environment with the web pages' gettext (`messages`) in `language`: its
    own template cache, so a template compiled for the emails is never reused here."""
    env = renderer.env.overlay(extensions=["jinja2.ext.i18n"], cache_size=400)
    env.install_gettext_translations(translations(language, "messages"),  # type: ignore[attr-defined]
                                     newstyle=True)
    env.globals.update(lang=language, format_date=lambda moment: format_date(moment, language))
    return env


class ArchiveSite:
    """Every page of the archive by path; renders one on demand.

    `env` (from `archive_env`) decides the chrome's language; by default English. `base` is
    where the archive's root is for pages shown at another address (the live `/`, a 404, a
    search answer); pages at their own path link relatively, so a built folder works anywhere.
    """

    def __init__(self, published: Published, renderer: Renderer,
                 env: jinja2.Environment | None = None) -> None:
        self.published, self.renderer = published, renderer
        self.branding, self.env = renderer.branding, env or archive_env(renderer)
        self.entries = _entries(published)
        self.by_uid = {entry.item.uid: entry for entry in self.entries}
        self.by_topic = {t.slug: [e for e in self.entries if t.slug in e.item.topic_slugs]
                         for t in published.topics}
        self.by_type = {t.slug: [e for e in self.entries if e.item.research_type.slug == t.slug]
                        for t in published.research_types}
        self._pages = self._routes()

    def _routes(self) -> dict[str, Callable[[], bytes]]:
        routes: dict[str, Callable[[], bytes]] = {
            "index.html": self._index, "topics/index.html": self._topics,
            "types/index.html": self._types, "search/index.html": self._search,
            "feed.xml": self._feed, "assets/search-index.js": self._search_index,
            "assets/archive.css": lambda: self._asset("archive.css"),
            "assets/frame.css": lambda: self._frame_css(),
            "assets/archive.js": lambda: self._asset("archive.js")}
        for edition in self.published.editions:
            routes[f"{edition.content.month}/index.html"] = (
                lambda e=edition: self._edition(e))  # type: ignore[misc]
        for entry in self.entries:
            routes[entry.path] = lambda e=entry: self._summary(e)  # type: ignore[misc]
        for topic in self.published.topics:
            routes[f"topics/{topic.slug}/index.html"] = (
                lambda t=topic: self._listing(t, "topics", self.by_topic[t.slug]))  # type: ignore[misc]
        for kind in self.published.research_types:
            routes[f"types/{kind.slug}/index.html"] = (
                lambda t=kind: self._listing(t, "types", self.by_type[t.slug]))  # type: ignore[misc]
        return routes

    def paths(self) -> list[str]:
        return list(self._pages)

    def __contains__(self, path: object) -> bool:
        return path in self._pages

    def render(self, path: str) -> Page | None:
        """The page at `path` (e.g. `2015-01/index.html`), or None when there is none."""
        make = self._pages.get(path)
        if make is None:
            return None
        return Page(make(), _MEDIA_TYPES[posixpath.splitext(path)[1]])

    def _html(self, template: str, path: str, section: str, base: str | None = None,
              **context: Any) -> bytes:
        def rel(target: str) -> str:
            return base + target if base is not None else relative(path, target)
        html = self.env.get_template(_TEMPLATES + template).render(
            branding=self.branding, page=path, section=section, rel=rel,
            subscribe_url=self.branding.url("subscribe"), logo=logo(self.branding), **context)
        return html.encode("utf-8")

    def front(self, base: str) -> bytes:
        """The index, shown at another address than its own (the live site's `/`)."""
        return self._index(base)

    def not_found(self, base: str) -> bytes:
        return self._html("not_found.html", "404.html", "", base=base)

    def search_results(self, base: str, query: str, hits: list[Entry],
                       terms: tuple[str, ...]) -> bytes:
        """The search page with its answer made by the server (it needs no JavaScript)."""
        results = [(entry, snippet(entry.item.headline, terms, width=400),
                    snippet(entry.item.citation.apa(), terms, width=600),
                    snippet(_plain_text(entry.item), terms)) for entry in hits]
        return self._html("search.html", "search/index.html", "search", base=base,
                          query=query, results=results, searched=bool(terms))

    def _frame_css(self) -> bytes:
        """The frame's stylesheet is the signup pages' own file: one frame, one source."""
        loader = self.env.loader
        assert loader is not None
        return loader.get_source(self.env, "web/static/frame.css")[0].encode("utf-8")

    def _asset(self, name: str) -> bytes:
        loader = self.env.loader
        assert loader is not None
        return loader.get_source(self.env, f"{_TEMPLATES}assets/{name}")[0].encode("utf-8")

    def _index(self, base: str | None = None) -> bytes:
        years: dict[str, list[PublishedEdition]] = {}
        for edition in self.published.editions:
            years.setdefault(edition.content.month[:4], []).append(edition)
        excerpts = {e.item.uid: excerpt(e.item) for e in self.entries}
        return self._html("index.html", "index.html", "editions", base=base, years=years,
                          entries=self.by_uid, summaries=len(self.entries), excerpts=excerpts)

    def _edition(self, edition: PublishedEdition) -> bytes:
        months = [e.content.month for e in self.published.editions]
        at = months.index(edition.content.month)
        newer = self.published.editions[at - 1] if at > 0 else None
        older = self.published.editions[at + 1] if at + 1 < len(months) else None
        return self._html("edition.html", f"{edition.content.month}/index.html", "editions",
                          edition=edition, entries=[self.by_uid[i.uid] for i in edition.content.items],
                          newer=newer, older=older)

    def _summary(self, entry: Entry) -> bytes:
        return self._html("summary.html", entry.path, "editions", entry=entry)

    def _facets(self, kind: str, names: Iterable[Named],
                groups: dict[str, list[Entry]]) -> list[dict[str, Any]]:
        return [{"name": n.name, "path": f"{kind}/{n.slug}/index.html", "count": len(groups[n.slug])}
                for n in names]

    def _topics(self) -> bytes:
        return self._html("facets.html", "topics/index.html", "topics", heading="Topics",
                          facets=self._facets("topics", self.published.topics, self.by_topic),
                          total=len(self.entries), untagged=sum(
                              not e.item.topics for e in self.entries))

    def _types(self) -> bytes:
        facets = self._facets("types", self.published.research_types, self.by_type)
        return self._html("facets.html", "types/index.html", "types", heading="Research types",
                          facets=facets, total=len(self.entries), untagged=0)

    def _listing(self, named: Named, kind: str, entries: list[Entry]) -> bytes:
        return self._html("listing.html", f"{kind}/{named.slug}/index.html", kind, named=named,
                          kind=kind, entries=entries)

    def _search(self) -> bytes:
        return self._html("search.html", "search/index.html", "search", results=None, query="",
                          searched=False)

    def _search_index(self) -> bytes:
        """The prebuilt index, as JSON assigned to a global so that a <script> tag loads it
        even from file://, where fetch() is refused."""
        docs = [{"u": e.path, "h": e.item.headline, "m": e.edition.content.title,
                 "t": e.item.research_type.name, "c": _short_citation(e.item),
                 "w": " ".join(_terms(e.item))} for e in self.entries]
        data = json.dumps(docs, ensure_ascii=True, separators=(",", ":"))
        return f"window.ARCHIVE_SEARCH_INDEX = {data};\n".encode()

    def _feed(self) -> bytes:
        return atom_feed(self)


def logo(branding: Branding) -> tuple[str, str]:
    """(image URL, alt text) of the masthead's optional logo; ("", "") when there is none."""
    url = str(getattr(branding, "logo_url", "") or branding.extra.get("logo_url", ""))
    alt = str(getattr(branding, "logo_alt", "") or branding.extra.get("logo_alt", "")
              or branding.organisation)
    return (url, alt) if url else ("", "")


def _plain_text(item: SummaryItem) -> str:
    return " ".join(markdown_to_text(md, width=10**6) for md in
                    (item.note_md or "", item.body_md, item.implications_md) if md)


def excerpt(item: SummaryItem, limit: int = 220) -> str:
    """The summary's first sentences, cut at a word, for the index."""
    body = " ".join(markdown_to_text(item.body_md, width=10**6).split())
    if len(body) <= limit:
        return body
    return body[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def _short_citation(item: SummaryItem) -> str:
    c = item.citation
    names = [a.split(",")[0] for a in c.authors]
    who = names[0] if len(names) == 1 else (
        f"{names[0]} & {names[1]}" if len(names) == 2 else f"{names[0]} et al.")
    return f"{who} ({c.year or 'n.d.'}). {c.book_title or c.source}."


def _fold(text: str) -> str:
    """Lowercase without accents: `Höglend` is found by `hoglend` (search.js folds alike)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def _terms(item: SummaryItem) -> list[str]:
    c = item.citation
    texts = [item.headline, " ".join(c.authors), c.title, c.source, c.book_title or "",
             item.research_type.name, *(t.name for t in item.topics),
             *(markdown_to_text(md, width=10**6) for md in
               (item.note_md or "", item.body_md, item.implications_md))]
    words = re.split(r"[^0-9a-z]+", _fold(" ".join(texts)))
    return list(dict.fromkeys(w for w in words if len(w) > 1))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _atom_id(uid: str, fallback: str) -> str:
    try:
        return uuid.UUID(hex=uid).urn
    except ValueError:
        return fallback


def atom_feed(site: ArchiveSite) -> bytes:
    """Atom 1.0: the latest summaries, newest first, with absolute links from base_url."""
    b = site.branding
    feed = ElementTree.Element("feed", xmlns=ATOM)

    def add(parent: ElementTree.Element, tag: str, text: str | None = None,
            **attrs: str) -> ElementTree.Element:
        child = ElementTree.SubElement(parent, tag, attrs)
        child.text = text
        return child

    add(feed, "id", b.url(page_url("index.html")))
    add(feed, "title", f"{b.newsletter_name}: archive")
    add(feed, "subtitle", f"Monthly psychotherapy research summaries from {b.organisation}")
    newest = site.published.editions[0].sent_at if site.published.editions else datetime(
        1970, 1, 1, tzinfo=UTC)
    add(feed, "updated", _iso(newest))
    add(feed, "link", rel="self", type="application/atom+xml", href=b.url(page_url("feed.xml")))
    add(feed, "link", rel="alternate", type="text/html", href=b.url(page_url("index.html")))
    add(add(feed, "author"), "name", b.organisation)
    entry_html = site.env.get_template(_TEMPLATES + "feed_entry.html")
    for entry in site.entries[:FEED_ENTRIES]:
        url = b.url(page_url(entry.path))
        node = add(feed, "entry")
        add(node, "id", _atom_id(entry.item.uid, url))
        add(node, "title", entry.item.headline)
        add(node, "link", rel="alternate", type="text/html", href=url)
        add(node, "published", _iso(entry.edition.sent_at))
        add(node, "updated", _iso(entry.edition.sent_at))
        for topic in entry.item.topics:
            add(node, "category", term=topic.slug, label=topic.name)
        add(node, "category", term=entry.item.research_type.slug,
            label=entry.item.research_type.name, scheme=b.url(page_url("types/index.html")))
        add(node, "summary", entry.item.citation.apa())
        add(node, "content", entry_html.render(item=entry.item), type="html")
    ElementTree.indent(feed)
    return ElementTree.tostring(feed, encoding="utf-8", xml_declaration=True) + b"\n"


def open_site(nl: Newsletter, renderer: Renderer | None = None,
              env: jinja2.Environment | None = None,
              months: Iterable[str] | None = None) -> ArchiveSite:
    """The archive as the store holds it now (only `months`' editions, if given)."""
    with nl.session() as session:
        published = load_published(session, months)
    return ArchiveSite(published, renderer or make_renderer(nl), env)


def build_site(nl: Newsletter, out_dir: Path, *, base_url: str | None = None,
               language: str = DEFAULT_LANGUAGE) -> BuildReport:
    """Write the whole archive to `out_dir/archive/`, replacing what an earlier build wrote
    there (stale pages go too); a folder that a build did not make is refused, not replaced.
    `language`: the chrome's (the summaries keep their own)."""
    branding = branding_for(nl)
    if base_url:
        branding = replace(branding, base_url=base_url)
    renderer = Renderer(branding, nl.config.templates_dir or None)
    site = open_site(nl, renderer, archive_env(renderer, language))
    root = out_dir / ARCHIVE_PREFIX
    if root.exists() and not (root / MARKER).exists() and any(root.iterdir()):
        raise ContentError(f"{root} exists and was not written by `newsletter archive build`; "
                           "choose another output folder", field="OUT")
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".archive-", dir=out_dir))
    staging.chmod(0o755)  # mkdtemp makes it private; a web server must read the archive
    try:
        for path in site.paths():
            page = site.render(path)
            assert page is not None
            target = staging / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(page.body)
        (staging / MARKER).write_text("Written by `newsletter archive build`; replaced by the "
                                      "next build.\n", encoding="utf-8")
        if root.exists():
            shutil.rmtree(root)
        staging.rename(root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BuildReport(root, len(site.paths()), len(site.published.editions), len(site.entries))

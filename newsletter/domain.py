"""Plain values that the pure core (assemble, plan, render) works on: no session, socket or clock."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Named:
    """A topic or research type as a reader sees it."""

    slug: str
    name: str


@dataclass(frozen=True)
class Citation:
    authors: tuple[str, ...]
    year: int | None
    title: str
    source: str
    volume: str | None = None
    issue: str | None = None
    pages: str | None = None
    doi: str | None = None
    url: str | None = None

    @property
    def link(self) -> str | None:
        """Where a reader can find the article: the DOI resolver first, else the given URL."""
        if self.doi:
            return "https://doi.org/" + self.doi
        return self.url

    def authors_text(self) -> str:
        if len(self.authors) <= 1:
            return "".join(self.authors)
        return ", ".join(self.authors[:-1]) + ", & " + self.authors[-1]

    def locator(self) -> str:
        """`51(3), 381-387`: the part after the source, APA style."""
        text = self.volume or ""
        if self.issue:
            text += f"({self.issue})"
        if self.pages:
            text += (", " if text else "") + self.pages
        return text

    def apa(self) -> str:
        """The full reference as plain text, APA 7 order."""
        year = f"({self.year})" if self.year else "(n.d.)"
        text = f"{self.authors_text()} {year}. {self.title.rstrip('.')}. {self.source}"
        if self.locator():
            text += ", " + self.locator()
        text += "."
        if self.link:
            text += " " + self.link
        return text


@dataclass(frozen=True)
class SummaryItem:
    id: int
    uid: str
    month: str
    headline: str
    citation: Citation
    body_md: str
    implications_md: str
    topics: tuple[Named, ...]
    research_type: Named
    note_md: str | None = None

    @property
    def topic_slugs(self) -> frozenset[str]:
        return frozenset(t.slug for t in self.topics)


@dataclass(frozen=True)
class EditionContent:
    """An assembled month: what `render` needs, nothing more."""

    month: str
    subject: str
    preheader: str
    items: tuple[SummaryItem, ...]
    intro_md: str | None = None
    id: int | None = None

    @property
    def title(self) -> str:
        """`January 2015`."""
        year, month = self.month.split("-")
        return f"{calendar.month_name[int(month)]} {year}"

    def subset(self, summary_ids: tuple[int, ...]) -> tuple[SummaryItem, ...]:
        wanted = set(summary_ids)
        return tuple(item for item in self.items if item.id in wanted)


@dataclass(frozen=True)
class Branding:
    """Everything about the sender that appears in a message but is not content."""

    organisation: str
    postal_address: str
    base_url: str
    newsletter_name: str = "Research Digest"
    extra: dict[str, str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")

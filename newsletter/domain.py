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
    # A chapter in an edited book: `source` is then the book's title too, for readers that only
    # know journals; `book_title` being set is what marks a chapter.
    editors: tuple[str, ...] = ()
    book_title: str | None = None
    edition: str | None = None
    publisher: str | None = None

    def __post_init__(self) -> None:
        """Names as tuples even when they come back from stored JSON as lists (hashable, equal)."""
        object.__setattr__(self, "authors", tuple(self.authors))
        object.__setattr__(self, "editors", tuple(self.editors))

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

    def editors_text(self) -> str:
        """`M. E. Lambert (Ed.)`, `A. Bergin & S. Garfield (Eds.)`: initials first, as APA wants."""
        names = [" ".join(reversed(name.split(", ", 1))) for name in self.editors]
        if not names:
            return ""
        joined = names[0] if len(names) == 1 else (
            f"{names[0]} & {names[1]}" if len(names) == 2
            else ", ".join(names[:-1]) + ", & " + names[-1])
        return f"{joined} ({'Ed.' if len(names) == 1 else 'Eds.'})"

    def chapter_locator(self) -> str:
        """`6th ed., pp. 298-340`: what APA puts in parentheses after a book's title."""
        parts = [f"{self.edition} ed."] if self.edition else []
        parts += [f"Vol. {self.volume}"] if self.volume else []
        parts += [f"pp. {self.pages}"] if self.pages else []
        return ", ".join(parts)

    def apa(self) -> str:
        """The full reference as plain text, APA 7 order."""
        year = f"({self.year})" if self.year else "(n.d.)"
        text = f"{self.authors_text()} {year}. {_sentence(self.title)}"
        if self.book_title:
            editors = self.editors_text()
            text += f" In {editors + ', ' if editors else ''}{self.book_title}"
            if self.chapter_locator():
                text += f" ({self.chapter_locator()})"
            text += "." + (f" {_sentence(self.publisher)}" if self.publisher else "")
        else:
            text += f" {self.source}" + (", " + self.locator() if self.locator() else "") + "."
        if self.link:
            text += " " + self.link
        return text


def _sentence(text: str) -> str:
    """`Title.`, but `An elusive goal?` keeps its own mark instead of gaining a period."""
    text = text.strip()
    return text if text.endswith(("?", "!")) else text.rstrip(".") + "."


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
    byline: str | None = None

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

"""The console's summary form: what an editor typed, written as the summary file and checked by
the file loader itself, so the form and the files accept the same values with the same messages.

Values stay text exactly as typed (an autosave keeps them even when they do not validate); the
file form is made with `format_summary`, read back with `parse_summary`, and each of the loader's
problems is put back on the form field it is about.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..domain import Citation
from ..errors import ContentError, ContentErrors
from .summary_file import STATUSES, SummaryDraft, format_summary, parse_summary

__all__ = ["CITATION_FIELDS", "FIELDS", "FORM_ERROR", "FormCheck", "FormValues", "check_form",
           "citation_of", "form_field", "is_draft", "read_form", "values_of", "values_of_citation"]

FIELDS = ("id", "month", "status", "headline", "byline", "doi", "authors", "year", "title",
          "source", "book_title", "editors", "edition", "volume", "issue", "pages", "publisher",
          "url", "research_type", "note", "body", "implications")
"""The form's text fields (topics are a checklist apart); `authors` and `editors` one a line."""
CITATION_FIELDS = ("doi", "authors", "year", "title", "source", "book_title", "editors",
                   "edition", "volume", "issue", "pages", "publisher", "url")
NAME_FIELDS = ("authors", "editors")
FORM_ERROR = "form"
"""Where a problem that is about no one field goes (the file as a whole)."""
MAX_TOPICS_KEPT = 200
SOURCE = "console"


@dataclass(frozen=True)
class FormValues:
    """The form as typed: every text field (newlines as `\\n`) and the ticked topic slugs."""

    text: dict[str, str]
    topics: tuple[str, ...] = ()

    def get(self, name: str) -> str:
        return self.text.get(name, "")

    def as_json(self) -> dict[str, Any]:
        return {"text": dict(self.text), "topics": list(self.topics)}

    @classmethod
    def from_json(cls, data: Any) -> FormValues:
        """Back from a stored autosave; anything odd in it is dropped, not trusted."""
        text = data.get("text") if isinstance(data, dict) else None
        topics = data.get("topics") if isinstance(data, dict) else None
        return cls({k: v for k, v in (text or {}).items() if k in FIELDS and isinstance(v, str)},
                   tuple(t for t in (topics or []) if isinstance(t, str)))


def read_form(get: Callable[[str], str], topics: Iterable[str]) -> FormValues:
    """The values of a posted form, by name; browsers send textarea lines as CRLF."""
    def clean(value: str) -> str:
        return value.replace("\r\n", "\n").replace("\r", "\n")

    ticked = tuple(dict.fromkeys(clean(t) for t in topics))[:MAX_TOPICS_KEPT]
    return FormValues({name: clean(get(name)) for name in FIELDS}, ticked)


def values_of_citation(citation: Citation) -> dict[str, str]:
    """A citation as the form shows it: names one a line, a chapter's book only as book title."""
    return {
        "doi": citation.doi or "", "authors": "\n".join(citation.authors),
        "year": "" if citation.year is None else str(citation.year), "title": citation.title,
        "source": "" if citation.book_title else citation.source,
        "book_title": citation.book_title or "", "editors": "\n".join(citation.editors),
        "edition": citation.edition or "", "volume": citation.volume or "",
        "issue": citation.issue or "", "pages": citation.pages or "",
        "publisher": citation.publisher or "", "url": citation.url or ""}


def values_of(draft: SummaryDraft) -> FormValues:
    """A stored summary (in file form) as the form shows it."""
    text = {"id": draft.id or "", "month": draft.month, "status": draft.status,
            "headline": draft.headline, "byline": draft.byline or "",
            "research_type": draft.research_type, "note": draft.note_md or "",
            "body": draft.body_md, "implications": draft.implications_md,
            **values_of_citation(draft.citation)}
    return FormValues(text, tuple(draft.topics))


def _year(raw: str) -> Any:
    """A number as the file would carry it (`year: 2014`), anything else as the text typed."""
    value = raw.strip()
    if value.isdigit() and len(value) <= 6:
        return int(value)
    return value or None


def _names(raw: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in raw.split("\n") if line.strip())


def _optional(raw: str) -> str | None:
    return raw if raw.strip() else None


def citation_of(values: FormValues) -> Citation:
    """The citation as typed (the year may still be text: the loader says what is wrong)."""
    get = values.get
    book_title = _optional(get("book_title"))
    return Citation(
        authors=_names(get("authors")), year=_year(get("year")), title=get("title"),
        source=book_title or get("source"), volume=_optional(get("volume")),
        issue=_optional(get("issue")), pages=_optional(get("pages")), doi=_optional(get("doi")),
        url=_optional(get("url")), editors=_names(get("editors")), book_title=book_title,
        edition=_optional(get("edition")), publisher=_optional(get("publisher")))


def _draft(values: FormValues) -> SummaryDraft:
    get = values.get
    return SummaryDraft(
        source=SOURCE, id=_optional(get("id")), month=get("month"), headline=get("headline"),
        citation=citation_of(values), topics=values.topics,
        research_type=get("research_type"), note_md=_optional(get("note")), body_md=get("body"),
        implications_md=get("implications"), status=get("status"),
        byline=_optional(get("byline")))


def form_field(name: str | None) -> str:
    """The form field a loader problem is about: `citation.authors[2]` is `authors`."""
    base = (name or "").split("[", 1)[0].removeprefix("citation.")
    if base in FIELDS or base in ("topics", "citation"):
        return base
    return FORM_ERROR


def _where(error: ContentError) -> str:
    """`Line 3: ` for one name of a list (the message says what is wrong, not which one)."""
    name = error.field or ""
    if "[" in name and form_field(name) in NAME_FIELDS:
        index = name.split("[", 1)[1].rstrip("]")
        if index.isdigit():
            return f"Line {int(index) + 1}: "
    return ""


@dataclass
class FormCheck:
    """The loader's verdict: the draft to store, or the problems by form field."""

    draft: SummaryDraft | None
    errors: dict[str, list[str]] = field(default_factory=dict)
    text: str = ""

    def add(self, where: str, message: str) -> None:
        self.errors.setdefault(where, []).append(message)


def _line_field(text: str, line: int | None) -> str:
    """A problem the loader found by line only (a control character in the Markdown)."""
    closing = text.find("\n---\n")
    if line is None or closing < 0:
        return FORM_ERROR
    body_start = text.count("\n", 0, closing + 1) + 3
    heading = text.find("\n## Practice Implications\n", closing)
    heading_line = text.count("\n", 0, heading + 1) + 1 if heading >= 0 else None
    if line < body_start:
        return FORM_ERROR
    return "body" if heading_line is None or line < heading_line else "implications"


def check_form(values: FormValues, *, topics: Collection[str],
               research_types: Collection[str]) -> FormCheck:
    """Run the form through the file loader (`parse_summary`), exactly as a file would be."""
    try:
        text = format_summary(_draft(values))
    except ValueError as err:  # the body holds a Practice Implications heading
        check = FormCheck(None)
        check.add("body", str(err))
        return check
    try:
        draft = parse_summary(text, SOURCE, topics=topics, research_types=research_types)
    except ContentErrors as err:
        check = FormCheck(None, text=text)
        for error in err.errors:
            where = form_field(error.field) if error.field else _line_field(text, error.line)
            check.add(where, _where(error) + error.reason)
        return check
    except ContentError as err:
        check = FormCheck(None, text=text)
        check.add(form_field(err.field), err.reason)
        return check
    return FormCheck(draft, text=text)


def is_draft(values: FormValues) -> bool:
    return values.get("status") != STATUSES[1]

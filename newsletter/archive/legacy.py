"""The legacy blog's archive page, as plain text, read into posts. Pure: no store, no clock.

The format (`../shared/seed/archive-sample.txt`): the page preamble (title, introduction, "This
month...", "Type of Research", "Topics" and the topic filter as "- " lines), then the posts, newest
first. Every non-blank line is one paragraph. A post reads:

    January 2015                                   month heading
    Methods of Repairing Alliance Ruptures         headline
    Handbook of …: Starting in March 2013 I will   editorial note paragraph(s), optional
    Safran , J. D. & Kraus , J. (2014). Alliance…  one APA citation line
    In this clinically oriented review, Safran…    summary paragraph(s)
    Practice Implications                          heading
    Alliance ruptures can range in intensity…      implication paragraph(s)

A post that cannot be read completely is left out and reported with its line and the reason; the
others are returned, so one bad post never blocks the rest. Warnings mark posts that are read but
incomplete (a citation without volume or pages, say).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..content.summary_file import LIMITS, multi_line_problem, single_line_problem
from ..domain import Citation

__all__ = ["CitationProblem", "LegacyPost", "ParsedArchive", "Problem", "infer_research_type",
           "parse_archive", "parse_authors", "parse_citation", "parse_editors", "plain_to_markdown"]

_MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_name) if name}
_MONTH_HEADING = re.compile(r"(?P<name>[A-Za-z]+)\s+(?P<year>\d{4})")
_IMPLICATIONS = re.compile(r"practice\s+implications\s*:?", re.IGNORECASE)
_PREAMBLE_HEADINGS = ("topics", "type of research")
# A citation line: no parentheses before `(2014).` (or `(2014, March).`), which comes early.
_CITATION_LIKE = re.compile(r"[^()]{2,600}?\(\d{4}[a-z]?(?:,[^)]*)?\)\.\s")
_YEAR = re.compile(r"\s*\((?P<year>\d{4})[a-z]?(?:,[^)]*)?\)\.\s+")
_AUTHOR = re.compile(
    r"\s*(?:&\s*|and\s+)?(?P<surname>[^\W\d_][^,&()]*?)\s*,\s*"
    r"(?P<initials>(?:[^\W\d_]{1,2}\.\s*(?:-\s*)?)+)\s*(?:,|(?=&)|(?=and\s)|$)")
_EDITOR = re.compile(r"(?P<initials>(?:[^\W\d_]{1,2}\.\s*(?:-\s*)?)+)\s*(?P<surname>\S.*)")
_INITIAL = re.compile(r"-?[^\W\d_]{1,2}\.")
_DOI = re.compile(r"\s*(?:doi:\s*|https?://(?:dx\.)?doi\.org/)(?P<doi>10\.\d+(?:\.\d+)*/\S+?)\.?$",
                  re.IGNORECASE)
_URL = re.compile(r"\s*(?:Retrieved from\s+)?(?P<url>https?://\S+?)\.?$", re.IGNORECASE)
_ONLINE_FIRST = re.compile(r"\.?\s*Advance online publication\.?$", re.IGNORECASE)
_PAGES = r"(?:Article\s+)?[eE]?\d+[A-Za-z]?(?:\s*[-–—]\s*[eE]?\d+[A-Za-z]?)?"
_LOCATOR = re.compile(r",\s*(?P<volume>\d+[A-Za-z]?)(?:\s*\((?P<issue>[^()]+)\))?"
                      rf"(?:,\s*(?P<pages>{_PAGES}))?\.?$")
_TITLE_END = re.compile(r"[.?!]\s+(?=[\w“\"‘'(\[])")
_CHAPTER = re.compile(r"(?P<title>.+?[.?!])\s+In\s+(?P<rest>.+)")
_IN_BOOK = re.compile(r"(?:(?P<editors>[^()]+?)\s*\((?P<role>Eds?\.)\),\s*)?(?P<book>[^()]+?)\s*"
                      r"\((?P<details>[^()]*\bpp?\.\s*[^()]+)\)\.\s*(?P<publisher>.*?)\.?")
_LOOKS_LIKE_BOOK = re.compile(r"\((?:Eds?\.|[^()]*\bpp?\.)")
_BOOK_EDITION = re.compile(r",?\s*(?P<edition>\d+(?:st|nd|rd|th))\s+(?:ed\.|edition)$",
                           re.IGNORECASE)
_TYPE_WORDS = (("meta-analysis", re.compile(r"\bmeta[- ]?analy(?:sis|ses|tic)\b")),
               ("randomized-controlled-trial", re.compile(r"\brandomi[sz]ed\b")),
               ("review", re.compile(r"\breview(?:s|ed)?\b")))


@dataclass(frozen=True)
class Problem:
    """Something wrong in the file, at `line`; `imported` when the post was kept regardless."""

    line: int
    reason: str
    imported: bool = False

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class LegacyPost:
    """One post as the blog showed it; the paragraphs are plain text, not Markdown yet."""

    line: int
    month: str
    headline: str
    note: tuple[str, ...]
    citation: Citation
    citation_line: int
    body: tuple[str, ...]
    implications: tuple[str, ...]
    research_type: str
    research_type_reason: str

    @property
    def note_md(self) -> str | None:
        return plain_to_markdown(self.note) if self.note else None

    @property
    def body_md(self) -> str:
        return plain_to_markdown(self.body)

    @property
    def implications_md(self) -> str:
        return plain_to_markdown(self.implications)


@dataclass(frozen=True)
class ParsedArchive:
    posts: tuple[LegacyPost, ...]
    problems: tuple[Problem, ...]


class CitationProblem(ValueError):
    """A citation line that cannot be read into its fields; the message says what is missing."""


Line = tuple[int, str]


def parse_archive(text: str) -> ParsedArchive:
    """Every readable post, newest first as in the file, and every problem with its line."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = [(number, line.strip()) for number, line in enumerate(text.split("\n"), 1)
             if line.strip()]
    start = _posts_start(lines)
    if start == len(lines):
        return ParsedArchive((), (Problem(1, "no posts found: a post starts with a month heading "
                                             "like 'January 2015'"),))
    posts, problems = [], []
    for segment in _segments(lines[start:]):
        post, found = _parse_post(segment)
        problems += found
        if post is not None:
            posts.append(post)
    repeated = _duplicates(posts)
    problems += repeated
    skipped = {problem.line for problem in repeated}
    return ParsedArchive(tuple(p for p in posts if p.line not in skipped),
                         tuple(sorted(problems, key=lambda p: p.line)))


def month_of(text: str) -> str | None:
    """`January 2015` → `2015-01`; None for anything else."""
    found = _MONTH_HEADING.fullmatch(text)
    if not found or found["name"].lower() not in _MONTHS or not 1900 <= int(found["year"]) <= 2100:
        return None
    return f"{found['year']}-{_MONTHS[found['name'].lower()]:02d}"


def _posts_start(lines: Sequence[Line]) -> int:
    """Index of the first post line: after the topic filter list, else at the first month."""
    for index, (_, text) in enumerate(lines):
        if month_of(text):
            return index
        if text.lower() == "topics":
            index += 1
            while index < len(lines) and (lines[index][1].startswith("- ")
                                          or lines[index][1].lower() in _PREAMBLE_HEADINGS):
                index += 1
            return index
    return len(lines)


def _heading_like(text: str) -> bool:
    """Short and not a sentence: after a post's implications, where only a month may come."""
    return len(text) <= 120 and not text.endswith((".", "?", "!", ";", ":", ",", "”", '"', ")"))


def _segments(lines: Sequence[Line]) -> list[list[Line]]:
    """Cut at month headings; also at a garbled one, i.e. a heading-like line after a post's
    implications (unless a real month heading follows it at once)."""
    segments: list[list[Line]] = []
    after_implications = 0
    for index, (number, text) in enumerate(lines):
        following = lines[index + 1][1] if index + 1 < len(lines) else ""
        garbled = (after_implications > 0 and _heading_like(text)
                   and not _IMPLICATIONS.fullmatch(text) and month_of(following) is None)
        if not segments or month_of(text) or garbled:
            segments.append([])
            after_implications = 0
        segments[-1].append((number, text))
        if _IMPLICATIONS.fullmatch(text):
            after_implications = -1
        elif after_implications:
            after_implications = 1
    return segments


def _parse_post(segment: list[Line]) -> tuple[LegacyPost | None, list[Problem]]:
    (first_line, first), rest = segment[0], segment[1:]
    month = month_of(first)
    problems = [Problem(n, why) for n, t in segment if (why := multi_line_problem(t))]
    if month is None:
        return None, [Problem(first_line, f"expected a month heading like 'January 2015', found "
                                          f"{first[:60]!r}; this post was skipped"), *problems]
    marks = [i for i, (_, t) in enumerate(rest) if _IMPLICATIONS.fullmatch(t)]
    if len(marks) > 1:
        problems.append(Problem(rest[marks[1]][0], f"a second 'Practice Implications' heading in "
                                f"the post of line {first_line}: is the next post's month heading "
                                "missing?"))
    if not marks:
        problems.append(Problem(first_line, "no 'Practice Implications' heading in this post"))
    before = rest[:marks[0]] if marks else rest
    after = rest[marks[0] + 1:marks[1] if len(marks) > 1 else None] if marks else []
    if marks and not after:
        problems.append(Problem(rest[marks[0]][0], "the Practice Implications section is empty"))
    post = _read_sections(month, first_line, before, after, problems)
    return (post if not any(not p.imported for p in problems) else None), problems


def _read_sections(month: str, first_line: int, before: list[Line], after: list[Line],
                   problems: list[Problem]) -> LegacyPost | None:
    """Headline, note, citation and summary from the lines before Practice Implications."""
    if not before or _CITATION_LIKE.match(before[0][1]):
        problems.append(Problem(first_line, "no headline after the month heading"))
        return None
    (headline_line, headline), candidates = before[0], before[1:]
    problem = single_line_problem(headline) or (
        f"the headline is {len(headline)} characters long; the limit is {LIMITS['headline']}"
        if len(headline) > LIMITS["headline"] else None)
    if problem:
        problems.append(Problem(headline_line, problem))
    at = next((i for i, (_, t) in enumerate(candidates) if _CITATION_LIKE.match(t)), None)
    if at is None:
        problems.append(Problem(headline_line, "no citation line like 'Author, A. (2014). Title. "
                                               "Journal, 51, 381-387.' after the headline"))
        return None
    citation_line, citation_text = candidates[at]
    body = [t for _, t in candidates[at + 1:]]
    for number, text in [*candidates[at + 1:], *after]:
        if _another_citation(text):
            problems.append(Problem(number, f"another citation line in the post of line "
                                            f"{first_line}: is a month heading missing or garbled "
                                            "above it?"))
    if not body:
        problems.append(Problem(citation_line, "the summary is empty: no paragraph between the "
                                               "citation and Practice Implications"))
    try:
        citation, warnings = parse_citation(citation_text)
    except CitationProblem as err:
        problems.append(Problem(citation_line, f"citation: {err}"))
        return None
    problems += [Problem(citation_line, f"citation: {w}", imported=True) for w in warnings]
    kind, reason = infer_research_type(citation, headline, body)
    return LegacyPost(line=first_line, month=month, headline=headline,
                      note=tuple(t for _, t in candidates[:at]), citation=citation,
                      citation_line=citation_line, body=tuple(body),
                      implications=tuple(t for _, t in after), research_type=kind,
                      research_type_reason=reason)


def _another_citation(text: str) -> bool:
    """A person-authored reference line (`Smith, A. B. (2014). …`) where only prose should be:
    the sign of a post whose month heading is missing, so two posts ran together."""
    found = _CITATION_LIKE.match(text)
    return bool(found) and len(text) < 600 and bool(
        re.search(r",\s*[^\W\d_]\.", text[:text.index("(")]))


def _duplicates(posts: Sequence[LegacyPost]) -> list[Problem]:
    """A month holds each headline once (the store's rule); repeats are left out."""
    seen: dict[tuple[str, str], int] = {}
    problems = []
    for post in posts:
        key = (post.month, post.headline.casefold())
        if key in seen:
            problems.append(Problem(post.line, f"the same headline as the post of line "
                                               f"{seen[key]} in the same month; skipped"))
        seen.setdefault(key, post.line)
    return problems


def _initials(text: str) -> str:
    """`A.C.` → `A. C.`, `J.-P.` stays `J.-P.`: APA spacing."""
    tokens = _INITIAL.findall(text.replace(" ", ""))
    return "".join(t if t.startswith("-") or i == 0 else " " + t for i, t in enumerate(tokens))


def parse_authors(text: str) -> tuple[str, ...]:
    """`Safran , J. D. & Kraus , J.` → (`Safran, J. D.`, `Kraus, J.`); a group author stays whole."""
    text = " ".join(text.split()).strip()
    if not text.strip(" ."):
        raise CitationProblem("no authors before the year")
    if "," not in text:
        if re.search(r"\s[^\W\d_]\.$", text):
            raise CitationProblem(f"cannot read the authors from {text[:40]!r}: write them as "
                                  "'Surname, A. B.'")
        return (text.rstrip(". "),)  # a group author: "American Psychological Association"
    names, position = [], 0
    while position < len(text):
        found = _AUTHOR.match(text, position)
        if found is None or found.end() == position:
            raise CitationProblem(f"cannot read the authors from {text[position:][:40]!r}: write "
                                  "them as 'Surname, A. B., & Other, C.'")
        names.append(f"{' '.join(found['surname'].split())}, {_initials(found['initials'])}")
        position = found.end()
    if len(names) > LIMITS["authors"]:
        raise CitationProblem(f"{len(names)} authors; the limit is {LIMITS['authors']}")
    return tuple(names)


def parse_editors(text: str) -> tuple[str, ...]:
    """`M.E. Lambert` → (`Lambert, M. E.`,): stored in the same order as authors."""
    names = []
    for part in re.split(r"\s*,?\s*&\s*|\s*,\s*|\s+and\s+", text.strip()):
        found = _EDITOR.fullmatch(part)
        if found is None:
            raise CitationProblem(f"cannot read the editor {part!r}: write 'A. B. Editor'")
        names.append(f"{found['surname'].strip()}, {_initials(found['initials'])}")
    return tuple(names)


def _split_link(text: str) -> tuple[str, str | None, str | None]:
    """The reference without its trailing DOI or URL, and those."""
    found = _DOI.search(text)
    if found:
        return text[:found.start()].rstrip(), found["doi"], None
    found = _URL.search(text)
    if found:
        return text[:found.start()].rstrip(), None, found["url"]
    return text, None, None


def parse_citation(text: str) -> tuple[Citation, list[str]]:
    """An APA reference line → its fields, and warnings about what it lacks but can do without.

    Journal: `Authors (2014). Title. Source, 51(3), 381-387. https://doi.org/…`; chapter:
    `Authors (2013). Title. In M. E. Lambert (Ed.), Book (6th ed., pp. 298-340). Wiley.`
    """
    text = " ".join(text.split())
    found = _YEAR.search(text)
    if found is None:
        raise CitationProblem("no year in parentheses, like '(2014).', after the authors")
    year = int(found["year"])
    if not 1900 <= year <= 2100:
        raise CitationProblem(f"the year {year} is not between 1900 and 2100")
    authors = parse_authors(text[:found.start()])
    rest, doi, url = _split_link(text[found.end():])
    chapter = _CHAPTER.fullmatch(rest)
    if chapter and _LOOKS_LIKE_BOOK.search(chapter["rest"]):
        fields, warnings = _chapter(chapter["title"], chapter["rest"])
    else:
        fields, warnings = _article(rest)
    return Citation(authors=authors, year=year, doi=doi, url=url, **fields), warnings


def _title(text: str) -> str:
    return text.strip().removesuffix(".").strip()


def _article(rest: str) -> tuple[dict[str, Any], list[str]]:
    """`Title. Source, 51(3), 381-387.` (volume, issue and pages as far as given)."""
    rest, online_first = _ONLINE_FIRST.sub("", rest), bool(_ONLINE_FIRST.search(rest))
    locator = _LOCATOR.search(rest)
    head = rest[:locator.start()] if locator else rest.rstrip(".")
    ends = list(_TITLE_END.finditer(head))
    if not ends:
        raise CitationProblem("cannot tell the title from the source: expected "
                              "'Title. Source, volume, pages.'")
    cut = ends[-1]
    title, source = _title(head[:cut.start() + 1]), head[cut.end():].strip()
    warnings = []
    if locator is None:
        warnings.append("advance online publication: no volume or pages" if online_first
                        else "no volume or pages after the source")
    elif locator["pages"] is None:
        warnings.append("no pages after the volume")
    pages = locator["pages"] if locator else None
    return {"title": title, "source": source, "volume": locator["volume"] if locator else None,
            "issue": locator["issue"].strip() if locator and locator["issue"] else None,
            "pages": re.sub(r"\s*[-–—]\s*", "-", pages) if pages else None}, warnings


def _chapter(title: str, rest: str) -> tuple[dict[str, Any], list[str]]:
    """`In M. E. Lambert (Ed.), Book, 6th Edition (pp. 298-340). New York: Wiley.`"""
    found = _IN_BOOK.fullmatch(rest)
    if found is None:
        raise CitationProblem("a book chapter needs 'In A. Editor (Ed.), Book title "
                              "(pp. 1-10). Publisher.'")
    book, edition, volume, pages = found["book"].strip(), None, None, None
    if (named := _BOOK_EDITION.search(book)) is not None:
        book, edition = book[:named.start()].strip(), named["edition"]
    for part in (p.strip() for p in found["details"].split(",")):
        if (ed := re.fullmatch(r"(\d+(?:st|nd|rd|th))\s+ed\.?", part, re.IGNORECASE)):
            edition = ed[1]
        elif (vol := re.fullmatch(r"Vol\.\s*(\S+)", part, re.IGNORECASE)):
            volume = vol[1]
        elif (pp := re.fullmatch(r"pp?\.\s*(.+)", part)):
            pages = re.sub(r"\s*[-–—]\s*", "-", pp[1])
    publisher = found["publisher"].rpartition(": ")[2].strip() or None
    warnings = [] if publisher else ["no publisher after the book's pages"]
    editors = parse_editors(found["editors"]) if found["editors"] else ()
    return {"title": _title(title), "source": book, "book_title": book, "editors": editors,
            "edition": edition, "volume": volume, "pages": pages,
            "publisher": publisher}, warnings


def infer_research_type(citation: Citation, headline: str,
                        body: Sequence[str]) -> tuple[str, str]:
    """(slug, why): the legacy blog never recorded the type, so it is read from the words used,
    most telling first: the article title, the headline, the summary's first sentence, then the
    whole summary (where a review may merely *mention* a meta-analysis)."""
    if citation.book_title:
        return "book-chapter", "the citation is a chapter in an edited book"
    whole = " ".join(body)
    first = re.split(r"(?<=[.?!])\s", whole, maxsplit=1)[0]
    for where, text in (("the article title", citation.title), ("the headline", headline),
                        ("the summary's first sentence", first), ("the summary", whole)):
        for slug, pattern in _TYPE_WORDS:
            if (word := pattern.search(text.lower())) is not None:
                return slug, f"{where} says {word.group()!r}"
    return "other", "neither the title, the headline nor the summary names a type of research"


_MD_INLINE = re.compile(r"([\\`*_\[\]<>&])")
_MD_BLOCK_START = re.compile(r"^([#>+\-=~])|^(\d+)([.)])")


def plain_to_markdown(paragraphs: Sequence[str]) -> str:
    """Plain paragraphs as Markdown that renders back to exactly that text: `*`, `_`, `[`, a
    leading `1.` or `#` and friends are escaped, so legacy text never turns into markup."""
    def escape(text: str) -> str:
        text = _MD_INLINE.sub(r"\\\1", text)
        return _MD_BLOCK_START.sub(lambda m: "\\" + m[1] if m[1] else m[2] + "\\" + m[3], text)
    return "\n\n".join(escape(p) for p in paragraphs)

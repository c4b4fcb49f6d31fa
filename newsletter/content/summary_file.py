"""Summary files: YAML front matter, then the summary and its practice implications in Markdown.

Editors write these by hand, so every input is treated as hostile: sizes and field lengths are
capped, the encoding and control characters are checked, YAML is only composed (never constructed
into objects), and every problem in a file is reported at once with its line and field, so the file
can be fixed in one pass. docs/file-formats.md describes the format for editors.
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from ..domain import Citation
from ..errors import ContentError, ContentErrors
from ..text import line_problem

__all__ = [
    "EXAMPLES_DIR", "LIMITS", "MAX_FILE_BYTES", "STATUSES", "SummaryDraft", "decode_utf8",
    "format_summary", "multi_line_problem", "nearest", "parse_summary", "read_summary_file",
    "single_line_problem", "unknown_message",
]

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
MAX_FILE_BYTES = 256 * 1024
LIMITS = {
    "id": 100, "headline": 300, "byline": 200, "note": 5000, "body": 50_000, "implications": 50_000,
    "slug": 100, "authors": 100, "author": 200, "title": 500, "source": 500, "volume": 50,
    "issue": 50, "pages": 50, "doi": 300, "url": 2000, "topics": 50,
    "editors": 100, "editor": 200, "book_title": 500, "edition": 50, "publisher": 200,
}
STATUSES = ("draft", "ready")

_TOP_KEYS = ("id", "month", "status", "headline", "byline", "citation", "topics", "research_type",
             "note")
_TOP_REQUIRED = ("month", "headline", "citation", "topics", "research_type")
_CITATION_KEYS = ("authors", "year", "title", "source", "editors", "book_title", "edition", "volume",
                  "issue", "pages", "publisher", "doi", "url")
_CITATION_REQUIRED = ("authors", "year", "title")
_CITATION_TEXT = ("title", "source", "book_title", "volume", "issue", "pages", "publisher")
_CITATION_OPTIONAL_TEXT = ("volume", "issue", "pages", "publisher")
_BOOK_ONLY_KEYS = ("editors", "edition", "publisher")
_TAG = "tag:yaml.org,2002:"
_TEXT_TAGS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp"))
_MAX_DEPTH = 8

_MULTI_LINE_BAD = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_MONTH = re.compile(r"(?:19\d\d|20\d\d|2100)-(?:0[1-9]|1[0-2])")
_DATE = re.compile(r"(\d{4})-(\d{1,2})")
_INITIALS = re.compile(r"(?:[^\W\d_]\.[\s-]*)+")
_EDITION_NUMBER = re.compile(r"0*([1-9]\d{0,2})")
_EDITION_WORD = re.compile(r"(?:\A|\s)ed(?:ition|\.)?\Z", re.IGNORECASE)
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:)\s*", re.IGNORECASE)
_DOI = re.compile(r"10\.\d+(?:\.\d+)*/\S+")
_IMPLICATIONS = re.compile(r"^ {0,3}#{1,3}[ \t]+practice[ \t]+implications[ \t]*(?:#+[ \t]*)?$",
                           re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class SummaryDraft:
    """One validated summary file, before it is stored: slugs, not database rows."""

    source: str
    id: str | None
    month: str
    headline: str
    citation: Citation
    topics: tuple[str, ...]
    research_type: str
    note_md: str | None
    body_md: str
    implications_md: str
    status: str = "ready"
    byline: str | None = None
    """Who wrote the summary, as readers see it ("Summary by …"); optional."""


def _show(value: str, width: int = 60) -> str:
    """A value quoted for a message: repr escapes control characters, the cut keeps it short."""
    return repr(value[:width]) + ("…" if len(value) > width else "")


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        return "a single value"
    return "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"


def single_line_problem(value: str) -> str | None:
    """Why `value` cannot be a one-line field (it would split or disguise a header), else None."""
    found = line_problem(value)
    return None if found is None else f"must be a single line without control characters ({found})"


def multi_line_problem(value: str) -> str | None:
    """Why `value` cannot be Markdown text (NUL and other control characters), else None."""
    found = _MULTI_LINE_BAD.search(value)
    return None if found is None else f"contains the control character U+{ord(found.group()):04X}"


def nearest(value: str, valid: Collection[str], n: int = 3) -> list[str]:
    """The slugs an author most likely meant: those containing the word, then close spellings."""
    word, options = value.lower()[:100], sorted(valid)
    squashed = word.replace("-", "")
    found = [s for s in options if len(squashed) >= 3 and squashed in s.replace("-", "")]
    found += difflib.get_close_matches(word, options, n=n, cutoff=0.6)
    return list(dict.fromkeys(found))[:n]


def unknown_message(kind: str, value: str, valid: Collection[str]) -> str:
    """`unknown topic 'x'; did you mean: y?`, so a typo is a quick fix, not a hunt in the config."""
    close = nearest(value, valid)
    if close:
        return f"unknown {kind} {_show(value)}; did you mean: {', '.join(close)}?"
    listed = f"; valid: {', '.join(sorted(valid))}" if len(valid) <= 15 else ""
    return f"unknown {kind} {_show(value)}{listed}"


def _file_error(message: str, source: str, line: int | None = None) -> ContentErrors:
    return ContentErrors([ContentError(message, source=source, line=line)])


def decode_utf8(data: bytes, source: str) -> str:
    """Bytes to text, dropping a UTF-8 BOM; a wrong encoding is located by byte offset and line."""
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        return str(memoryview(data)[start:], "utf-8")
    except UnicodeDecodeError as err:
        offset = start + err.start
        line = data.count(b"\n", 0, offset) + 1
        raise _file_error(f"not UTF-8: byte 0x{data[offset]:02x} at byte offset {offset}; "
                          "save the file with the UTF-8 encoding", source, line) from None


def _too_big(source: str) -> ContentErrors:
    return _file_error(f"larger than {MAX_FILE_BYTES // 1024} KB; a summary is a few KB: "
                       "is this the right file?", source)


def read_summary_file(path: Path, *, topics: Collection[str],
                      research_types: Collection[str]) -> SummaryDraft:
    """Read one file, refusing oversized or non-UTF-8 input before any YAML sees it."""
    source = str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise _file_error(f"cannot read the file: {err.strerror or err}", source) from err
    if len(data) > MAX_FILE_BYTES:
        raise _too_big(source)
    return parse_summary(decode_utf8(data, source), source, topics=topics,
                         research_types=research_types)


def _control_errors(text: str, source: str) -> list[ContentError]:
    """NUL and other control characters, by line: YAML and Markdown would mangle them silently."""
    errors = []
    for found in _MULTI_LINE_BAD.finditer(text):
        hint = " (a NUL byte: is this a text file?)" if found.group() == "\x00" else ""
        errors.append(ContentError(
            f"control character U+{ord(found.group()):04X} is not allowed{hint}",
            source=source, line=text.count("\n", 0, found.start()) + 1))
        if len(errors) == 10:
            break
    return errors


def _split_front_matter(text: str, source: str) -> tuple[str, str, int]:
    """(front matter, Markdown, line of the closing `---`): the front matter starts on line 2."""
    lines = text.split("\n")
    if lines[0].rstrip() != "---":
        raise _file_error("the file must start with a '---' line, then the front matter "
                          "(month:, headline:, citation: ...), then another '---' line", source, 1)
    for index in range(1, len(lines)):
        if lines[index].rstrip() == "---":
            return "\n".join(lines[1:index]) + "\n", "\n".join(lines[index + 1:]), index + 1
    raise _file_error("the front matter that starts on line 1 never ends: add a '---' line "
                      "after it", source, 1)


class _FrontMatter:
    """The front matter's YAML nodes, located by file line, and the problems found in them."""

    def __init__(self, text: str, source: str, errors: list[ContentError]) -> None:
        self.yaml_text, self.source, self.errors = text, source, errors
        self._breaks = [found.start() for found in re.finditer("\n", text)]

    def line_at(self, index: int) -> int:
        """File line of a character of the front matter, which starts on line 2."""
        return 2 + bisect.bisect_left(self._breaks, index)

    def line(self, node: yaml.Node) -> int:
        return self.line_at(node.start_mark.index)

    def error(self, message: str, line: int, field: str | None) -> None:
        self.errors.append(ContentError(message, source=self.source, line=line, field=field))

    def compose(self) -> yaml.MappingNode | None:
        """The root mapping, or None after reporting why there is none."""
        try:
            root = yaml.compose(self.yaml_text, Loader=yaml.SafeLoader)
        except RecursionError:
            self.error("the front matter is nested too deeply", 1, None)
            return None
        except yaml.YAMLError as err:
            self._yaml_error(err)
            return None
        if not isinstance(root, yaml.MappingNode):
            self.error("the front matter is empty" if root is None else
                       f"the front matter must be key: value lines, not {_kind(root)}", 1, None)
            return None
        return root if self._plain_tree(root) else None

    def _yaml_error(self, err: yaml.YAMLError) -> None:
        """The parser's own words, at the line it stopped, with a hint for the commonest slip."""
        if isinstance(err, yaml.MarkedYAMLError):
            mark = err.problem_mark or err.context_mark
            hint = " (put quotes around text that contains ': ')" if (
                err.problem == "mapping values are not allowed here") else ""
            self.error(f"invalid YAML: {err.problem or err.context}{hint}",
                       self.line_at(mark.index) if mark else 1, None)
        else:  # a ReaderError: a character YAML does not allow, such as U+FFFF
            position = getattr(err, "position", None)
            self.error(f"invalid YAML: {str(err).splitlines()[0]}",
                       1 if position is None else self.line_at(position), None)

    def _plain_tree(self, root: yaml.Node) -> bool:
        """Refuse aliases and deep nesting: they only serve to blow up memory or recursion."""
        seen: set[int] = set()
        stack = [(root, 0)]
        while stack:
            node, depth = stack.pop()
            if id(node) in seen or depth > _MAX_DEPTH:
                problem = "is nested too deeply" if depth > _MAX_DEPTH else (
                    "uses YAML anchors and aliases (&name, *name), which are not allowed")
                self.error(f"the front matter {problem}", self.line(node), None)
                return False
            seen.add(id(node))
            if isinstance(node, yaml.SequenceNode):
                stack.extend((child, depth + 1) for child in node.value)
            elif isinstance(node, yaml.MappingNode):
                stack.extend((child, depth + 1) for pair in node.value for child in pair)
        return True

    def mapping(self, entry: tuple[int, yaml.MappingNode], allowed: tuple[str, ...],
                required: tuple[str, ...], prefix: str) -> dict[str, tuple[int, yaml.Node]]:
        """key → (line, value node); unknown, duplicate and missing keys are reported."""
        found: dict[str, tuple[int, yaml.Node]] = {}
        for key_node, value_node in entry[1].value:
            line = self.line(key_node)
            if not isinstance(key_node, yaml.ScalarNode):
                self.error("keys must be plain words, like headline:", line,
                           prefix.rstrip(".") or None)
            elif key_node.value not in allowed:
                self.error(unknown_message("key", key_node.value, allowed), line,
                           prefix + key_node.value[:100])
            elif key_node.value in found:
                self.error(f"duplicate key (first on line {found[key_node.value][0]})", line,
                           prefix + key_node.value)
            else:
                found[key_node.value] = (line, value_node)
        for key in required:
            if key not in found:
                self.error("is required but missing", entry[0], prefix + key)
        return found

    def scalar(self, entry: tuple[int, yaml.Node], field: str) -> str | None:
        """The text as written, so `1984`, `yes`, `03` stay text; None after reporting why not."""
        line, node = entry
        if not isinstance(node, yaml.ScalarNode):
            self.error(f"must be text, not {_kind(node)}", line, field)
            return None
        if node.tag not in _TEXT_TAGS:
            self.error(f"YAML tags like {_show(node.tag)} are not allowed", line, field)
            return None
        return "" if node.tag == _TAG + "null" else node.value

    def text(self, entry: tuple[int, yaml.Node], field: str, limit: int, *,
             optional: bool = False, multi_line: bool = False) -> str | None:
        """Stripped text within its limit; None when absent, or after reporting a problem."""
        raw = self.scalar(entry, field)
        value = None if raw is None else raw.strip()
        if not value:
            if raw is not None and not optional:
                self.error("is empty", entry[0], field)
            return None
        check = multi_line_problem if multi_line else single_line_problem
        problem = (f"is {len(value)} characters long; the limit is {limit}"
                   if len(value) > limit else check(value))
        if problem:
            self.error(problem, entry[0], field)
            return None
        return value

    def choice(self, entry: tuple[int, yaml.Node], field: str, valid: Collection[str],
               kind: str) -> str | None:
        """One slug from a closed list, with the nearest valid ones suggested when unknown."""
        value = self.text(entry, field, LIMITS["slug"])
        if value is not None and value not in valid:
            self.error(unknown_message(kind, value, valid), entry[0], field)
            return None
        return value

    def items(self, entry: tuple[int, yaml.Node], field: str, limit: int,
              example: str) -> list[tuple[int, yaml.Node]]:
        """A list's items with their lines; [] after reporting a non-list, empty or long list."""
        line, node = entry
        if not isinstance(node, yaml.SequenceNode):
            self.error(f"must be a list, one item per '- ' line (e.g. {example})", line, field)
        elif not node.value:
            self.error("must list at least one item", line, field)
        elif len(node.value) > limit:
            self.error(f"has {len(node.value)} items; the limit is {limit}", line, field)
        else:
            return [(self.line(item), item) for item in node.value]
        return []

    def month(self, entry: tuple[int, yaml.Node]) -> str | None:
        line, node = entry
        if isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "timestamp":
            parts = _DATE.match(node.value)
            example = f"{parts[1]}-{int(parts[2]):02d}" if parts else "2015-01"
            self.error(f"{_show(node.value)} is a date: write only the year and month, as YYYY-MM "
                       f"(e.g. month: {example})", line, "month")
            return None
        value = self.scalar(entry, "month")
        if value is not None and not _MONTH.fullmatch(value.strip()):
            self.error(f"must be a month as YYYY-MM, e.g. 2015-01 (got {_show(value)})", line,
                       "month")
            return None
        return None if value is None else value.strip()

    def year(self, entry: tuple[int, yaml.Node]) -> int | None:
        line, node = entry
        value = self.scalar(entry, "citation.year")
        if value is None:
            return None
        if node.tag == _TAG + "int" and re.fullmatch(r"(?:19\d\d|20\d\d|2100)", value):
            return int(value)
        hint = " without quotes" if node.tag == _TAG + "str" and value.strip().isdigit() else ""
        self.error(f"must be a year from 1900 to 2100, written as a number{hint} (e.g. year: 2014)",
                   line, "citation.year")
        return None

    def doi(self, entry: tuple[int, yaml.Node]) -> str | None:
        value = self.text(entry, "citation.doi", LIMITS["doi"], optional=True)
        doi = None if value is None else _DOI_PREFIX.sub("", value, count=1)
        if doi is not None and not _DOI.fullmatch(doi):
            self.error(f"{_show(value or '')} is not a DOI; it must look like 10.1037/pst0000172 "
                       "(a https://doi.org/ or doi: prefix is fine)", entry[0], "citation.doi")
            return None
        return doi

    def url(self, entry: tuple[int, yaml.Node]) -> str | None:
        value = self.text(entry, "citation.url", LIMITS["url"], optional=True)
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        except ValueError:
            valid = False
        if not valid or re.search(r"\s", value):
            self.error(f"{_show(value)} is not an http(s) address", entry[0], "citation.url")
            return None
        return value


def _names(fm: _FrontMatter, entry: tuple[int, yaml.Node], key: str, role: str,
           example: str) -> tuple[str, ...]:
    """Authors or editors, catching `[Hoglend, P.]`, which YAML reads as two names, "Hoglend"
    and "P."."""
    items = fm.items(entry, f"citation.{key}", LIMITS[key], f'- "{example}"')
    names = []
    for index, item in enumerate(items):
        name = fm.text(item, f"citation.{key}[{index}]", LIMITS[role])
        if name is not None and _INITIALS.fullmatch(name):
            fm.error(f"{_show(name)} is only initials: put each {role} in quotes, "
                     f'["{example}"], or on its own \'- \' line', item[0],
                     f"citation.{key}[{index}]")
        names.append(name or "")
    return tuple(names)


def _ordinal(number: int) -> str:
    suffixes = {1: "st", 2: "nd", 3: "rd"}
    suffix = "th" if 10 <= number % 100 <= 20 else suffixes.get(number % 10, "th")
    return f"{number}{suffix}"


def _joined(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _edition(fm: _FrontMatter, entry: tuple[int, yaml.Node]) -> str | None:
    """`3` becomes `3rd` and `2nd ed.` is refused: the reference adds ` ed.` after the edition."""
    value = fm.text(entry, "citation.edition", LIMITS["edition"])
    if value is None:
        return None
    if (number := _EDITION_NUMBER.fullmatch(value)) is not None:
        return _ordinal(int(number[1]))
    if _EDITION_WORD.search(value):
        fm.error(f"write only the edition, like 2nd: the reference adds ' ed.' itself "
                 f"(got {_show(value)})", entry[0], "citation.edition")
        return None
    return value


def _check_book_or_journal(fm: _FrontMatter, line: int,
                           found: dict[str, tuple[int, yaml.Node]]) -> None:
    """A journal article has a source, a chapter a book_title; editors, edition and publisher
    describe the book, so without its title they are a mistake either way."""
    book_only = [key for key in _BOOK_ONLY_KEYS if key in found]
    if "source" in found and "book_title" in found:
        fm.error("give source (a journal) or book_title (the book a chapter is in), not both: "
                 "for a chapter, remove source", found["source"][0], "citation.source")
    elif book_only and "book_title" not in found:
        instead = " instead of source" if "source" in found else ""
        journal = "" if "source" in found else "give the journal as source and "
        fm.error("is required when editors, edition or publisher is given: for a chapter, give "
                 f"the book's title as book_title{instead}; for a journal article, {journal}"
                 f"remove {_joined(book_only)}", line, "citation.book_title")
    elif "source" not in found and "book_title" not in found:
        fm.error("is required but missing (for a chapter in an edited book, give book_title "
                 "instead)", line, "citation.source")


def _citation(fm: _FrontMatter, entry: tuple[int, yaml.Node]) -> Citation | None:
    """A journal article, or a chapter whose `source` is its book's title, as the domain wants."""
    line, node = entry
    if not isinstance(node, yaml.MappingNode):
        fm.error("must be indented key: value lines (authors:, year:, title:, source: ...)",
                 line, "citation")
        return None
    found = fm.mapping((line, node), _CITATION_KEYS, _CITATION_REQUIRED, "citation.")
    _check_book_or_journal(fm, line, found)
    text = {key: fm.text(found[key], f"citation.{key}", LIMITS[key],
                         optional=key in _CITATION_OPTIONAL_TEXT)
            for key in _CITATION_TEXT if key in found}
    return Citation(
        authors=_names(fm, found["authors"], "authors", "author", "Hoglend, P.")
        if "authors" in found else (),
        year=fm.year(found["year"]) if "year" in found else None,
        title=text.get("title") or "", source=text.get("book_title") or text.get("source") or "",
        volume=text.get("volume"), issue=text.get("issue"), pages=text.get("pages"),
        doi=fm.doi(found["doi"]) if "doi" in found else None,
        url=fm.url(found["url"]) if "url" in found else None,
        editors=_names(fm, found["editors"], "editors", "editor", "Lambert, M. J.")
        if "editors" in found else (),
        book_title=text.get("book_title"),
        edition=_edition(fm, found["edition"]) if "edition" in found else None,
        publisher=text.get("publisher"))


def _topics(fm: _FrontMatter, entry: tuple[int, yaml.Node],
            valid: Collection[str]) -> tuple[str, ...]:
    items = fm.items(entry, "topics", LIMITS["topics"], "- empathy")
    slugs = (fm.choice(item, f"topics[{index}]", valid, "topic")
             for index, item in enumerate(items))
    return tuple(dict.fromkeys(slug for slug in slugs if slug is not None))


def _status(fm: _FrontMatter, entry: tuple[int, yaml.Node]) -> str | None:
    value = fm.text(entry, "status", LIMITS["slug"])
    if value is not None and value not in STATUSES:
        fm.error(f"must be draft or ready, not {_show(value)}", entry[0], "status")
    return value


def _fields(fm: _FrontMatter, root: yaml.MappingNode, topics: Collection[str],
            research_types: Collection[str]) -> dict[str, Any]:
    """Each front-matter key through its own check, so one bad field does not hide the others."""
    found = fm.mapping((1, root), _TOP_KEYS, _TOP_REQUIRED, "")
    readers: dict[str, Callable[[tuple[int, yaml.Node]], Any]] = {
        "id": lambda e: fm.text(e, "id", LIMITS["id"], optional=True),
        "month": fm.month,
        "status": lambda e: _status(fm, e),
        "headline": lambda e: fm.text(e, "headline", LIMITS["headline"]),
        "byline": lambda e: fm.text(e, "byline", LIMITS["byline"], optional=True),
        "citation": lambda e: _citation(fm, e),
        "topics": lambda e: _topics(fm, e, topics),
        "research_type": lambda e: fm.choice(e, "research_type", research_types, "research type"),
        "note": lambda e: fm.text(e, "note", LIMITS["note"], optional=True, multi_line=True),
    }
    return {key: read(found[key]) if key in found else None for key, read in readers.items()}


def _sections(body: str, first_line: int, source: str) -> tuple[str, str, list[ContentError]]:
    """Split at the first Practice Implications heading; both parts must say something."""
    errors: list[ContentError] = []
    match = _IMPLICATIONS.search(body)
    summary = (body[:match.start()] if match else body).strip()
    implications = body[match.end():].strip() if match else ""
    heading_line = first_line + body.count("\n", 0, match.start()) if match else first_line
    limit = LIMITS["body"]
    if not summary or len(summary) > limit:
        errors.append(ContentError(
            f"the summary is {len(summary)} characters long; the limit is {limit}" if summary else
            "the summary is empty: write it after the front matter, before the Practice "
            "Implications heading", source=source, line=first_line, field="body"))
    if not match:
        errors.append(ContentError("no '## Practice Implications' heading: add one after the "
                                   "summary; the implications run from it to the end of the file",
                                   source=source, line=first_line, field="implications"))
    elif not implications or len(implications) > limit:
        errors.append(ContentError(
            f"is {len(implications)} characters long; the limit is {limit}" if implications else
            "the Practice Implications section is empty", source=source, line=heading_line,
            field="implications"))
    return summary, implications, errors


def parse_summary(text: str, source: str, *, topics: Collection[str],
                  research_types: Collection[str]) -> SummaryDraft:
    """Validate one summary file completely, raising every problem found with its line and field."""
    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise _too_big(source)
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    control = _control_errors(text, source)
    if control:
        raise ContentErrors(control)
    front, body, closing_line = _split_front_matter(text, source)
    errors: list[ContentError] = []
    fm = _FrontMatter(front, source, errors)
    root = fm.compose()
    fields = _fields(fm, root, topics, research_types) if root is not None else {}
    body_md, implications_md, body_errors = _sections(body, closing_line + 1, source)
    errors.extend(body_errors)
    if errors:
        raise ContentErrors(sorted(errors, key=lambda error: error.line or 0))
    return SummaryDraft(
        source=source, id=fields["id"], month=fields["month"], headline=fields["headline"],
        citation=fields["citation"], topics=fields["topics"], research_type=fields["research_type"],
        note_md=fields["note"], body_md=body_md, implications_md=implications_md,
        status=fields["status"] or "ready", byline=fields["byline"])


class _Dumper(yaml.SafeDumper):
    """Indented lists and literal blocks for multi-line text, as an editor would write them."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar(_TAG + "str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _represent_text)


def _citation_front_matter(c: Citation) -> dict[str, Any]:
    """The fields given, in reading order; a chapter's book only as book_title, which parsing
    copies into source."""
    values = {**asdict(c), "authors": list(c.authors), "editors": list(c.editors)}
    if c.book_title:
        del values["source"]
    return {key: values[key] for key in _CITATION_KEYS
            if key in values and (key in ("authors", "year", "title", "source") or values[key])}


def _front_matter(draft: SummaryDraft) -> dict[str, Any]:
    front: dict[str, Any] = {"id": draft.id} if draft.id is not None else {}
    front.update(month=draft.month, status=draft.status, headline=draft.headline)
    if draft.byline is not None:
        front["byline"] = draft.byline
    front.update(citation=_citation_front_matter(draft.citation), topics=list(draft.topics),
                 research_type=draft.research_type)
    if draft.note_md is not None:
        front["note"] = draft.note_md
    return front


def format_summary(draft: SummaryDraft) -> str:
    """The file that parses back to `draft`: how tools write summaries an editor can then open."""
    if _IMPLICATIONS.search(draft.body_md):
        raise ValueError("the summary body contains a Practice Implications heading; "
                         "the file would be split there")
    front = yaml.dump(_front_matter(draft), Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                      default_flow_style=False, width=1_000_000)
    return (f"---\n{front}---\n\n{draft.body_md}\n\n## Practice Implications\n\n"
            f"{draft.implications_md}\n")

"""Crossref's REST API: a DOI's citation, and the editorial notices (retractions…) that update it.

Everything Crossref answers is outside input: sizes are capped before parsing, every field is
type-checked, stripped of markup and control characters and cut to the summary file's limits.
A lookup never raises: an unreachable, slow, broken or hostile server gives a `LookupFailure`
whose message the editor can read, so a failed autofill never blocks typing a citation by hand.
docs/crossref.md describes the mapping and the retraction guard.
"""

from __future__ import annotations

import html
import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from .domain import Citation
from .errors import ContentError
from .text import line_problem

__all__ = ["BLOCKING_KINDS", "CrossrefClient", "LookupFailure", "MAX_BODY_BYTES", "Notice", "Work",
           "normalise_doi", "sentence_case"]

MAX_BODY_BYTES = 2 * 1024 * 1024
"""A work record is a few KB (a long reference list: a few hundred); more is not Crossref."""
MAX_DOI_CHARS = 300
MAX_NAMES = 100
BLOCKING_KINDS = frozenset({"retraction", "withdrawal", "removal"})
"""Notice types that mean the work should not be summarised as it stands."""

_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)
_DOI = re.compile(r"10\.\d{4,9}(?:\.\d+)*/[^\s\x00-\x1f\x7f]+")
_TAGS = re.compile(r"<[^>]{0,500}>")
_SPACE = re.compile(r"\s+")
_KIND = re.compile(r"[a-z][a-z_]{0,49}")
_LIMITS = {"title": 500, "source": 500, "volume": 50, "issue": 50, "pages": 50, "name": 200,
           "publisher": 200, "edition": 50, "isbn": 20, "label": 200}


def normalise_doi(value: str) -> str:
    """`https://doi.org/10.1037/ABC`, `doi: 10.1037/abc ` → `10.1037/abc`; anything else refused."""
    text = value.strip() if isinstance(value, str) else ""
    text = _DOI_PREFIX.sub("", text, count=1).strip().lower()
    if not text or len(text) > MAX_DOI_CHARS or not _DOI.fullmatch(text):
        shown = repr(value[:60]) if isinstance(value, str) else type(value).__name__
        raise ContentError(f"{shown} is not a DOI; a DOI looks like 10.1037/pst0000172 "
                           "(a https://doi.org/ or doi: prefix is fine)", field="doi")
    return text


def _keeps_case(piece: str) -> bool:
    """An acronym (`CBT`, `PTSD`) or a name with an inner capital (`McDonald`)."""
    letters = [c for c in piece if c.isalpha()]
    return len(letters) > 1 and (all(c.isupper() for c in letters)
                                 or any(c.isupper() for c in letters[1:]))


def sentence_case(title: str) -> str:
    """APA's sentence case, as a suggestion: lower-case every word but the first, the first after a
    colon, acronyms and names with inner capitals; proper nouns (`Rogers`) still need an eye."""
    out, capital_next = [], True
    for word in title.split(" "):
        pieces = []
        for index, piece in enumerate(word.split("-")):
            if _keeps_case(piece):
                pieces.append(piece)
            elif capital_next and index == 0:
                pieces.append(piece[:1].upper() + piece[1:].lower())
            else:
                pieces.append(piece.lower())
        out.append("-".join(pieces))
        if any(c.isalpha() for c in word):
            capital_next = word.endswith((":", "?", "!", "."))
    return " ".join(out)


@dataclass(frozen=True)
class LookupFailure:
    """Why Crossref gave no usable answer; `unreachable` when asking again later may help."""

    doi: str
    message: str
    status: int | None = None
    unreachable: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"doi": self.doi, "error": self.message, "status": self.status}


@dataclass(frozen=True)
class Work:
    """A citation as Crossref describes it, for the editor to confirm before it is saved."""

    citation: Citation
    type: str
    title_as_given: str
    suggested_title: str
    isbn: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    """What was dropped or guessed (an over-long field, a missing year), in the editor's words."""

    @property
    def title_needs_casing(self) -> bool:
        """Crossref titles come in publisher casing; APA wants sentence case."""
        return self.suggested_title != self.title_as_given


@dataclass(frozen=True)
class Notice:
    """An editorial update (retraction, correction…) published about a summarised work."""

    doi: str
    notice_doi: str
    kind: str
    label: str
    date: str | None
    title: str | None

    @property
    def blocking(self) -> bool:
        return self.kind in BLOCKING_KINDS


@dataclass
class _Body:
    data: Any = None
    failure: LookupFailure | None = None


@dataclass(frozen=True)
class CrossrefClient:
    """One Crossref endpoint; `mailto` puts requests in the polite pool, as Crossref asks."""

    base_url: str = "https://api.crossref.org"
    mailto: str = ""
    timeout: float = 5.0
    max_body: int = MAX_BODY_BYTES

    @property
    def contact(self) -> str:
        """The mailto address, if it is one line (it goes into a header)."""
        return self.mailto.strip() if line_problem(self.mailto.strip()) is None else ""

    @property
    def user_agent(self) -> str:
        return f"newsletter/1 (+mailto:{self.contact})" if self.contact else "newsletter/1"

    def work(self, doi: str) -> Work | LookupFailure:
        """The citation of `doi`, or why there is none."""
        try:
            doi = normalise_doi(doi)
        except ContentError as err:
            return LookupFailure(doi[:60] if isinstance(doi, str) else "", str(err))
        body = self._get(f"/works/{quote(doi, safe='')}", {}, doi)
        if body.failure is not None:
            return body.failure
        message = _envelope(body.data, "work")
        if message is None:
            return LookupFailure(doi, "Crossref's answer is not a work record")
        return _work(doi, message)

    def notices(self, doi: str) -> list[Notice] | LookupFailure:
        """Every editorial update Crossref knows that names `doi` in its `update-to`."""
        try:
            doi = normalise_doi(doi)
        except ContentError as err:
            return LookupFailure(doi[:60] if isinstance(doi, str) else "", str(err))
        body = self._get("/works", {"filter": f"updates:{doi}", "rows": "100"}, doi)
        if body.failure is not None:
            return body.failure
        message = _envelope(body.data, "work-list")
        items = message.get("items") if message is not None else None
        if not isinstance(items, list):
            return LookupFailure(doi, "Crossref's answer is not a list of works")
        found: dict[str, Notice] = {}
        for item in items[:1000]:
            for notice in _notices_in(doi, item):
                found.setdefault(notice.notice_doi, notice)
        return list(found.values())

    def _get(self, path: str, params: dict[str, str], doi: str) -> _Body:
        """GET and parse JSON, with a total deadline and a byte cap: a server that drips or floods
        is cut off rather than waited for."""
        base = self.base_url.rstrip("/")
        if not base.startswith(("http://", "https://")):
            return _Body(failure=LookupFailure(doi, f"crossref_url {base!r} is not an http(s) "
                                                    "address", unreachable=True))
        if self.contact:
            params = {**params, "mailto": self.contact}
        deadline = time.monotonic() + self.timeout
        try:
            with requests.Session() as session, session.get(
                    base + path, params=params, stream=True, allow_redirects=False,
                    timeout=(min(self.timeout, 5.0), self.timeout),
                    headers={"User-Agent": self.user_agent,
                             "Accept": "application/json"}) as response:
                if response.status_code == 404:
                    return _Body(failure=LookupFailure(
                        doi, f"Crossref does not know the DOI {doi}: check it, or fill the "
                             "citation by hand", status=404))
                if response.status_code != 200:
                    return _Body(failure=LookupFailure(
                        doi, f"Crossref answered HTTP {response.status_code}; try again later or "
                             "fill the citation by hand", status=response.status_code,
                        unreachable=response.status_code >= 500 or response.status_code == 429))
                data = bytearray()
                for chunk in response.iter_content(64 * 1024):
                    data += chunk
                    if len(data) > self.max_body:
                        return _Body(failure=LookupFailure(
                            doi, f"Crossref's answer is larger than {self.max_body // 1024} KB; "
                                 "refused", status=200))
                    if time.monotonic() > deadline:
                        raise requests.Timeout
        except requests.Timeout:
            return _Body(failure=LookupFailure(
                doi, f"Crossref did not answer within {self.timeout:g} s; try again later",
                unreachable=True))
        except requests.RequestException as err:
            return _Body(failure=LookupFailure(
                doi, f"Crossref cannot be reached ({type(err).__name__}); try again later",
                unreachable=True))
        try:
            return _Body(data=json.loads(bytes(data)))
        except (ValueError, RecursionError):
            return _Body(failure=LookupFailure(doi, "Crossref's answer is not valid JSON",
                                               status=200))


def _envelope(data: Any, message_type: str) -> dict[str, Any] | None:
    """The `message` of `{"status": "ok", "message-type": …, "message": {…}}`, else None."""
    if not isinstance(data, dict) or data.get("status") != "ok" \
            or data.get("message-type") != message_type:
        return None
    message = data.get("message")
    return message if isinstance(message, dict) else None


def _clean(value: Any, limit: int, notes: list[str] | None = None, name: str = "") -> str | None:
    """One line of plain text: JATS/HTML tags dropped, entities decoded, spaces collapsed."""
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str) and v.strip()), None)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    text = _SPACE.sub(" ", html.unescape(_TAGS.sub("", value))).strip() \
        if len(value) <= limit * 4 else value
    if not text or line_problem(text) is not None:
        return None
    if len(text) > limit:
        if notes is not None:
            notes.append(f"{name} is longer than {limit} characters; left out")
        return None
    return text


def _initials(given: str) -> str:
    """`Jeremy D.` → `J. D.`; `Jean-Pierre` → `J.-P.`: APA's reference form."""
    parts = []
    for word in given.replace(".", " ").split():
        pieces = [p for p in word.split("-") if p]
        parts.append("-".join(p[0].upper() + "." for p in pieces))
    return " ".join(parts)


def _names(people: Any, notes: list[str], role: str) -> tuple[str, ...]:
    """`Family, G. M.` for people, the name as given for an organisation."""
    if not isinstance(people, list):
        return ()
    if len(people) > MAX_NAMES:
        notes.append(f"{len(people)} {role}s; the first {MAX_NAMES} kept")
    names = []
    for person in people[:MAX_NAMES]:
        if not isinstance(person, dict):
            continue
        family = _clean(person.get("family"), _LIMITS["name"])
        given = _clean(person.get("given"), _LIMITS["name"])
        if family:
            name = f"{family}, {_initials(given)}" if given and _initials(given) else family
        else:
            name = _clean(person.get("name"), _LIMITS["name"]) or ""
        if name and len(name) <= _LIMITS["name"]:
            names.append(name)
    return tuple(names)


def _year(message: dict[str, Any]) -> int | None:
    """`issued` first (Crossref's earliest date), then the print and online dates."""
    for key in ("issued", "published-print", "published-online", "published"):
        date = _date(message.get(key))
        if date is not None and 1900 <= int(date[:4]) <= 2100:
            return int(date[:4])
    return None


def _title(message: dict[str, Any], notes: list[str]) -> str:
    title = _clean(message.get("title"), _LIMITS["title"], notes, "the title") or ""
    subtitle = _clean(message.get("subtitle"), _LIMITS["title"])
    if title and subtitle and subtitle.lower() not in title.lower():
        joined = f"{title.rstrip(':')}: {subtitle}"
        title = joined if len(joined) <= _LIMITS["title"] else title
    return title


def _ordinal(value: str | None) -> str | None:
    """Crossref's `edition-number` `2` as the file's `2nd`; words (`Revised`) as given."""
    if value is None or not value.isdigit():
        return value
    number = int(value)
    if not 0 < number < 1000:
        return None
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _work(doi: str, message: dict[str, Any]) -> Work:
    notes: list[str] = []
    kind = _clean(message.get("type"), 50) or "unknown"
    title = _title(message, notes)
    if not title:
        notes.append("Crossref gives no title; write it")
    authors = _names(message.get("author"), notes, "author")
    if not authors:
        notes.append("Crossref gives no authors; write them")
    year = _year(message)
    if year is None:
        notes.append("Crossref gives no publication year; write it")
    container = _clean(message.get("container-title"), _LIMITS["source"], notes, "the source")
    text = {key: _clean(message.get(crossref_key), _LIMITS[key], notes, key)
            for key, crossref_key in (("volume", "volume"), ("issue", "issue"),
                                      ("pages", "page"))}
    found_doi = _clean(message.get("DOI"), MAX_DOI_CHARS)
    try:
        found_doi = normalise_doi(found_doi) if found_doi else doi
    except ContentError:
        found_doi = doi
    chapter = kind in ("book-chapter", "book-section", "book-part", "reference-entry")
    listed = message.get("ISBN")
    isbn = tuple(i for i in (_clean(v, _LIMITS["isbn"])
                             for v in (listed[:10] if isinstance(listed, list) else [])) if i)
    if chapter:
        citation = Citation(
            authors=authors, year=year, title=title, source=container or "",
            book_title=container, pages=text["pages"], volume=text["volume"], doi=found_doi,
            editors=_names(message.get("editor"), notes, "editor"),
            edition=_ordinal(_clean(message.get("edition-number"), _LIMITS["edition"])),
            publisher=_clean(message.get("publisher"), _LIMITS["publisher"], notes, "publisher"))
        if not container:
            notes.append("Crossref gives no book title; write it")
    else:
        citation = Citation(authors=authors, year=year, title=title, source=container or "",
                            volume=text["volume"], issue=text["issue"], pages=text["pages"],
                            doi=found_doi)
        if not container:
            notes.append("Crossref gives no journal title; write the source")
    return Work(citation=citation, type=kind, title_as_given=title,
                suggested_title=sentence_case(title), isbn=isbn, notes=tuple(notes))


def _date(value: Any) -> str | None:
    parts = value.get("date-parts") if isinstance(value, dict) else None
    if not (isinstance(parts, list) and parts and isinstance(parts[0], list)):
        return None
    numbers = [p for p in parts[0][:3] if isinstance(p, int) and not isinstance(p, bool)]
    if not numbers or not 1000 <= numbers[0] <= 9999:
        return None
    return "-".join([f"{numbers[0]:04d}"] + [f"{n:02d}" for n in numbers[1:] if 0 < n < 32])


def _notices_in(doi: str, item: Any) -> list[Notice]:
    if not isinstance(item, dict) or not isinstance(item.get("update-to"), list):
        return []
    raw_notice = _clean(item.get("DOI"), MAX_DOI_CHARS)
    try:
        notice_doi = normalise_doi(raw_notice or "")
    except ContentError:
        return []
    found = []
    for update in item["update-to"][:50]:
        if not isinstance(update, dict):
            continue
        target = _clean(update.get("DOI"), MAX_DOI_CHARS)
        try:
            if target is None or normalise_doi(target) != doi:
                continue
        except ContentError:
            continue
        kind = (_clean(update.get("type"), 50) or "").lower().replace("-", "_").replace(" ", "_")
        kind = kind if _KIND.fullmatch(kind) else "other"
        label = _clean(update.get("label"), _LIMITS["label"]) or kind.replace("_", " ").capitalize()
        found.append(Notice(doi=doi, notice_doi=notice_doi, kind=kind, label=label,
                            date=_date(update.get("updated")) or _date(item.get("issued")),
                            title=_clean(item.get("title"), _LIMITS["title"])))
    return found

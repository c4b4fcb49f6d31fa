"""Full-text search of the published summaries: SQLite FTS5 or PostgreSQL full-text search,
behind one function.

    hits = search_published(session, "drop out 2014")     # uids, best match first
    snippet(text, query_terms("drop out"))                 # Markup: escaped text, <mark>ed words

Both engines match whole words, all of them, without stemming and without accents ("höglend"
finds "Höglend", "drop out" never matches "outcome"), over the headline, the citation (authors,
year, title, journal or book, editors) and the text (editor's note, summary, implications). The
index is kept by the database itself, with triggers on `summaries` (migration 0009), so every way
of writing a summary (files, import, CLI) keeps it current.

A query is hostile input: it is reduced here to at most MAX_TERMS words of letters and digits,
each quoted (FTS5) or passed as plain text (`plainto_tsquery`), so no search syntax (`NEAR`,
`*`, quotes, parentheses, column filters) ever reaches an engine.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from markupsafe import Markup, escape
from sqlalchemy import text
from sqlalchemy.orm import Session

__all__ = ["FTS_OBJECTS", "MAX_QUERY_CHARS", "MAX_TERMS", "SearchHit", "clean_query", "fold",
           "include_object",
           "query_terms", "search_published", "snippet"]

MAX_QUERY_CHARS = 200
MAX_TERMS = 8
MAX_TERM_CHARS = 40
MAX_RESULTS = 50
FTS_TABLE = "summary_search"
FTS_OBJECTS = frozenset({FTS_TABLE, *(f"{FTS_TABLE}_{part}" for part in
                                       ("data", "idx", "content", "docsize", "config"))})
"""The index's tables (FTS5 makes the shadow tables): kept by migration 0009, not by models."""
_WORD = re.compile(r"[^\W_]+")

# Matches are ranked inside the engine first, and the published summaries (in a sent edition)
# are found once and joined: an EXISTS per match would scan edition_items once per row, and
# without MATERIALIZED SQLite would loop over summaries and run the MATCH once per row.
_PUBLISHED = """
  published AS MATERIALIZED (
    SELECT DISTINCT ei.summary_id AS id FROM edition_items ei
    JOIN editions e ON e.id = ei.edition_id WHERE e.status = 'sent')"""
_SQLITE = f"""
WITH hits AS MATERIALIZED (
  SELECT rowid AS id, bm25({FTS_TABLE}, 8.0, 4.0, 1.0) AS score FROM {FTS_TABLE}
  WHERE {FTS_TABLE} MATCH :query), {_PUBLISHED}
SELECT s.uid, s.month FROM hits JOIN published p ON p.id = hits.id
JOIN summaries s ON s.id = hits.id
WHERE s.status = 'ready'
ORDER BY hits.score, s.month DESC LIMIT :limit"""
_POSTGRESQL = f"""
WITH hits AS MATERIALIZED (
  SELECT f.summary_id AS id, ts_rank(f.document, q) AS score
  FROM {FTS_TABLE} f, plainto_tsquery('simple', :query) q WHERE f.document @@ q), {_PUBLISHED}
SELECT s.uid, s.month FROM hits JOIN published p ON p.id = hits.id
JOIN summaries s ON s.id = hits.id
WHERE s.status = 'ready'
ORDER BY hits.score DESC, s.month DESC LIMIT :limit"""


@dataclass(frozen=True)
class SearchHit:
    uid: str
    month: str
    """The summary's edition: the archive loads only the editions it must show."""


def fold(word: str) -> str:
    """Lowercase without accents, as both indexes store words."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def clean_query(raw: str) -> str:
    """The query as a page may show it back: one line, at most MAX_QUERY_CHARS, no control
    characters (NUL included) and no replacement characters left by bytes that were not UTF-8."""
    kept = "".join(ch if ch.isprintable() and ch != "\ufffd" else " " for ch in raw[:MAX_QUERY_CHARS])
    return " ".join(kept.split())


def query_terms(raw: str) -> tuple[str, ...]:
    """The words a query asks for: letters and digits only, folded, at most MAX_TERMS of them.

    Everything else (NUL, quotes, `*`, FTS operators' punctuation, replacement characters from
    bytes that were not UTF-8) separates words and is dropped; `NEAR` or `AND` become words.
    """
    words = (fold(w)[:MAX_TERM_CHARS] for w in _WORD.findall(raw[:MAX_QUERY_CHARS]))
    return tuple(dict.fromkeys(w for w in words if w))[:MAX_TERMS]


def search_published(session: Session, raw: str, limit: int = MAX_RESULTS) -> list[SearchHit]:
    """Published summaries that contain every word of the query, best match first."""
    terms = query_terms(raw)
    if not terms:
        return []
    if session.get_bind().dialect.name == "sqlite":
        statement, query = _SQLITE, " ".join(f'"{t}"' for t in terms)
    else:
        statement, query = _POSTGRESQL, " ".join(terms)
    rows = session.execute(text(statement), {"query": query, "limit": limit})
    return [SearchHit(uid, month) for uid, month in rows]


def snippet(source: str, terms: tuple[str, ...], width: int = 240) -> Markup:
    """About `width` characters of `source` around its first matching word, every matching
    word in <mark>. The text is escaped piece by piece, so only our <mark> is markup."""
    wanted = set(terms)
    matches = [m for m in _WORD.finditer(source) if fold(m.group()) in wanted]
    if len(source) <= width:
        start, end = 0, len(source)
    else:
        first = matches[0].start() if matches else 0
        start = max(0, first - width // 3)
        while start > 0 and not source[start - 1].isspace():
            start -= 1
        end = min(len(source), start + width)
        while end < len(source) and not source[end].isspace():
            end += 1
    pieces: list[str] = ["… " if start > 0 else ""]
    at = start
    for match in matches:
        if match.start() < start or match.end() > end:
            continue
        pieces += [str(escape(source[at:match.start()])), "<mark>",
                   str(escape(match.group())), "</mark>"]
        at = match.end()
    pieces += [str(escape(source[at:end])), " …" if end < len(source) else ""]
    return Markup("".join(pieces))


def include_object(obj: object, name: str | None, type_: str, reflected: bool,
                   compare_to: object) -> bool:
    """For Alembic's autogenerate/compare_metadata: the search index is the migration's, not a
    model's, so it is left out of the comparison."""
    return not (type_ == "table" and name in FTS_OBJECTS)

"""Archive search: SQLite FTS5 and PostgreSQL full-text search behind `search_published`, the
index kept by the migration's triggers, and the live `/archive/search/?q=` page, on both
databases, with the network's real archive excerpt and hostile queries."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from markupsafe import Markup
from sqlalchemy import select

from newsletter.archive.importer import import_archive
from newsletter.archive.search import MAX_TERMS, fold, query_terms, search_published, snippet
from newsletter.content.models import Edition, EditionItem, EditionStatus, Summary, SummaryStatus
from newsletter.content.store import assemble_edition, upsert_summary
from newsletter.context import Newsletter
from newsletter.domain import Citation

from .builders import ARCHIVE_SAMPLE, SUMMARIES

SEED = ARCHIVE_SAMPLE
HOSTILE = "<img src=x onerror=alert(1)> Dropout & “quotes”"


def headlines(nl: Newsletter, query: str) -> list[str]:
    with nl.session() as session:
        uids = [hit.uid for hit in search_published(session, query)]
        by_uid = {uid: headline for uid, headline in session.execute(
            select(Summary.uid, Summary.headline))}
    return [by_uid[uid] for uid in uids]


def publish_month(nl: Newsletter, month: str, *drafts) -> None:  # type: ignore[no-untyped-def]
    with nl.session() as session:
        for draft in drafts:
            upsert_summary(session, replace(draft, month=month))
        assemble_edition(session, month)
        edition = session.scalars(select(Edition).where(Edition.month == month)).one()
        edition.status, edition.sent_at = EditionStatus.SENT, datetime(2016, 1, 5, tzinfo=UTC)


@pytest.fixture
def seeded(newsletter: Newsletter) -> Newsletter:
    """The blog's real excerpt, imported (sent editions), plus one month written for the test."""
    if not SEED.is_file():
        pytest.skip(f"the legacy archive sample {SEED} is absent (it sits beside the checkout)")
    assert not import_archive(newsletter, SEED).problems
    dropout = replace(SUMMARIES[0], source="dropout.md", headline="Why Clients Drop Out Early",
                      body_md="Clients who **drop out** early are often the ones who felt unheard.",
                      implications_md="Ask about the alliance in the first sessions.",
                      citation=replace(SUMMARIES[0].citation, authors=("Swift, J. K.",),
                                       year=2012, source="Journal of Clinical Psychology",
                                       title="Premature discontinuation", doi=None))
    hostile = replace(SUMMARIES[2], source="hostile.md", headline=HOSTILE,
                      body_md="A body with <script>alert('x')</script> in it, and Höglend's name.",
                      citation=replace(SUMMARIES[2].citation, doi=None, year=2019))
    publish_month(newsletter, "2016-01", dropout, hostile)
    return newsletter


def test_the_citation_is_indexed_so_2014_finds_all_three_2014_articles(seeded: Newsletter) -> None:
    found = headlines(seeded, "2014")
    assert len(found) == 3, found
    assert "Methods of Repairing Alliance Ruptures" in found
    assert headlines(seeded, "Hoglend 2014") == ["Transference in Psychotherapy: A Review of the "
                                                 "Research"]
    assert headlines(seeded, "American Psychologist") != []  # the journal
    assert headlines(seeded, "swift") == ["Why Clients Drop Out Early"]  # an author


def oracle(nl: Newsletter, query: str) -> set[str]:
    """What a whole-word search must find, by brute force: published summaries whose headline,
    citation or text holds every word of the query as a whole word (case and accents folded)."""
    terms = query_terms(query)
    found = set()
    with nl.session() as session:
        rows = session.execute(
            select(Summary.headline, Summary.citation, Summary.note_md, Summary.body_md,
                   Summary.implications_md)
            .join(EditionItem, EditionItem.summary_id == Summary.id)
            .join(Edition, Edition.id == EditionItem.edition_id)
            .where(Edition.status == EditionStatus.SENT, Summary.status == SummaryStatus.READY))
        for headline, citation, *texts in rows:
            cited = [*citation.get("authors", []), *citation.get("editors", []),
                     str(citation.get("year") or ""), citation.get("title", ""),
                     citation.get("source", ""), citation.get("book_title") or ""]
            words = {fold(w) for w in re.findall(r"[^\W_]+", " ".join(
                [headline, *cited, *(t or "" for t in texts)]))}
            if terms and set(terms) <= words:
                found.add(headline)
    return found


@pytest.mark.parametrize("query", ["drop out", "out", "outcome", "outcomes", "alliance rupture",
                                   "HÖGLEND", "hoglend", "psychotherapy 2014", "Tracey"])
def test_finds_exactly_the_summaries_with_every_whole_word(seeded: Newsletter, query: str) -> None:
    assert set(headlines(seeded, query)) == oracle(seeded, query) != set()


def test_whole_words_all_of_them_without_accents_or_case(seeded: Newsletter) -> None:
    dropping = set(headlines(seeded, "drop out"))
    assert dropping == {"Why Clients Drop Out Early",  # and the blog's "drop out at":
                        "Is There Such a Thing as Expertise in Psychotherapy?"}
    outcome_only = set(headlines(seeded, "outcome")) - dropping
    assert outcome_only and not outcome_only & set(headlines(seeded, "drop out"))
    assert headlines(seeded, "outcom") == []  # no prefix matching by default
    assert headlines(seeded, "HÖGLEND") == headlines(seeded, "hoglend") != []
    assert headlines(seeded, "drop unheard-of-word") == []


def test_only_published_summaries_are_found(seeded: Newsletter) -> None:
    with seeded.session() as session:
        upsert_summary(session, replace(SUMMARIES[1], month="2016-02", source="draft.md",
                                        headline="Unsent Zebrafish Study"))
        assemble_edition(session, "2016-02")  # a draft edition
        upsert_summary(session, replace(SUMMARIES[1], month="2016-01", source="d2.md",
                                        headline="Zebrafish Draft", status="draft"))
    assert headlines(seeded, "zebrafish") == []


def test_the_index_follows_edits_and_deletions(seeded: Newsletter) -> None:
    with seeded.session() as session:
        summary = session.scalars(select(Summary).where(
            Summary.headline == "Why Clients Drop Out Early")).one()
        summary.body_md = "Now about platypus habits."
    assert headlines(seeded, "platypus") == ["Why Clients Drop Out Early"]
    assert headlines(seeded, "unheard") == []
    with seeded.session() as session:
        summary = session.scalars(select(Summary).where(
            Summary.headline == "Why Clients Drop Out Early")).one()
        summary.status = SummaryStatus.DRAFT
    assert headlines(seeded, "platypus") == []


@pytest.mark.parametrize("query", [
    '"', '""', "'", "drop\" OR \"outcome", "NEAR(drop out)", "drop NEAR out", "*", "drop*",
    "out*", "headline:drop", "-drop", "drop AND", "AND OR NOT", "(", ")", "^drop", "{drop}",
    "drop\x00out", "\x00", "%", "_", "\\", "drop' OR '1'='1", "a" * 5000, "drop " * 400,
    "\ufffd\ufffd", "🙂 drop", "&amp; <mark>",
])
def test_hostile_queries_never_reach_the_engine_as_syntax(seeded: Newsletter, query: str) -> None:
    found = headlines(seeded, query)
    terms = query_terms(query)
    assert len(terms) <= MAX_TERMS and all(re.fullmatch(r"\w+", t) for t in terms)
    assert set(found) == oracle(seeded, query)  # the words, as words: never an operator


def test_snippets_mark_whole_words_and_escape_everything_else() -> None:
    text = "Outcome <b>drop</b> & out; dropout. DROP-out"
    marked = snippet(text, query_terms("drop out"))
    assert isinstance(marked, Markup)
    assert str(marked) == ("Outcome &lt;b&gt;<mark>drop</mark>&lt;/b&gt; &amp; <mark>out</mark>; "
                           "dropout. <mark>DROP</mark>-<mark>out</mark>")
    long = "word " * 200 + "needle " + "word " * 200
    cut = str(snippet(long, ("needle",), width=100))
    assert cut.startswith("… ") and cut.endswith(" …") and "<mark>needle</mark>" in cut
    assert len(cut) < 140


def test_the_live_search_page_works_without_javascript(seeded: Newsletter,
                                                       client: FlaskClient) -> None:
    response = client.get("/archive/search/?q=drop+out")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "no-store" in response.headers["Cache-Control"]
    assert "search-index.js" not in page  # the answer is in the page
    assert "2 summaries match “drop out”." in page
    assert "Why Clients <mark>Drop</mark> <mark>Out</mark> Early" in page
    assert "Clients who <mark>drop</mark> <mark>out</mark> early" in page
    assert 'value="drop out"' in page
    year = client.get("/archive/search?q=2014").get_data(as_text=True)
    assert "3 summaries match “2014”." in year and year.count("<mark>2014</mark>") >= 3
    none = client.get("/archive/search/index.html?q=zzzz").get_data(as_text=True)
    assert "No summary matches “zzzz”." in none


@pytest.mark.parametrize("raw", [
    b"q=%3Cscript%3Ealert(1)%3C/script%3E", b"q=%FF%FE%00drop", b"q=%00", b"q=" + b"x" * 9000,
    b"q=NEAR(%22drop%22+out)", b"q=*", b"q=%22", b"q=onerror", b"q=img+src",
])
def test_hostile_queries_on_the_live_page_are_escaped(seeded: Newsletter, client: FlaskClient,
                                                      raw: bytes) -> None:
    response = client.get("/archive/search/?" + raw.decode("ascii"))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "\x00" not in page
    for mark in re.findall(r"<mark>(.*?)</mark>", page):
        assert "<" not in mark and ">" not in mark


def test_hostile_content_is_escaped_in_results(seeded: Newsletter, client: FlaskClient) -> None:
    page = client.get("/archive/search/?q=onerror").get_data(as_text=True)
    assert "&lt;img src=x <mark>onerror</mark>=alert(1)&gt;" in page
    body = client.get("/archive/search/?q=script").get_data(as_text=True)
    assert "&lt;<mark>script</mark>&gt;alert" in body and "<script>alert" not in body


def test_citation_year_is_an_integer_or_missing(newsletter: Newsletter) -> None:
    """A summary without a year (n.d.) is indexed too."""
    undated = replace(SUMMARIES[1], source="nd.md", headline="An Undated Chapter",
                      citation=Citation(authors=("Nobody, A.",), year=None, title="Untitled",
                                        source="Somewhere Press"))
    publish_month(newsletter, "2016-03", undated)
    assert headlines(newsletter, "somewhere press") == ["An Undated Chapter"]
